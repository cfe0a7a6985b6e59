//! Counters of a [`Server`](crate::Server).

/// What the server has done since it started. Read it at any time with
/// [`Server::stats`](crate::Server::stats); it is a plain `Copy` value.
///
/// Every accepted connection is, at any moment, in exactly one of these:
/// `accepted == active + closed_by_peer + closed_by_server + reset + timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections accepted into a pool slot (handshake completed).
    pub accepted: u64,
    /// Connections being served now.
    pub active: u32,
    /// The largest `active` seen.
    pub peak_active: u32,
    /// Clients told "busy" because every slot was taken.
    pub refused_busy: u64,
    /// Connections that ended because the peer closed its side (FIN) and
    /// everything it had sent was answered.
    pub closed_by_peer: u64,
    /// Connections ended by this side: the service asked to close, or the
    /// server shut down.
    pub closed_by_server: u64,
    /// Connections reset by the peer (or lost to a reset of the stack).
    pub reset: u64,
    /// Connections closed after the idle timeout.
    pub timed_out: u64,
    /// Half-open handshakes dropped: a SYN that never completed within the
    /// handshake timeout, or a retransmitted SYN that a second slot took
    /// while the first already served that client.
    pub half_open_dropped: u64,
    /// Closing handshakes that did not finish in time and were aborted.
    pub close_aborted: u64,
    /// Answers written by the service (one per line for the line framing).
    pub answered: u64,
    /// Requests rejected by the service (lines longer than the maximum).
    pub rejected: u64,
    /// Bytes received from clients and handed to the service.
    pub bytes_in: u64,
    /// Bytes the service wrote to clients.
    pub bytes_out: u64,
}

impl Stats {
    /// Connections that are over, for any reason.
    pub fn ended(&self) -> u64 {
        self.closed_by_peer
            .saturating_add(self.closed_by_server)
            .saturating_add(self.reset)
            .saturating_add(self.timed_out)
    }
}

impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "active {} (peak {}), accepted {}, busy {}, closed {}/{} (peer/server), reset {}, \
             idle {}, half-open {}, answered {}, rejected {}, in {} B, out {} B",
            self.active,
            self.peak_active,
            self.accepted,
            self.refused_busy,
            self.closed_by_peer,
            self.closed_by_server,
            self.reset,
            self.timed_out,
            self.half_open_dropped,
            self.answered,
            self.rejected,
            self.bytes_in,
            self.bytes_out
        )
    }
}
