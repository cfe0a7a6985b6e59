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
    /// Clients told "busy" because every client place was taken.
    pub refused_busy: u64,
    /// Clients refused with a reset after their handshake because every
    /// place was taken ([`FullPolicy::Reset`](crate::FullPolicy) with a
    /// queue wait).
    pub refused_reset: u64,
    /// SYNs refused with a reset because the peer is not one the server
    /// answers ([`Config::peers`](crate::Config::peers)): not on the
    /// interface's own subnets.
    pub refused_foreign: u64,
    /// Connections that waited for a place and then got one.
    pub queued_then_served: u64,
    /// Connections reset by the peer while they waited for a place: never
    /// served, nothing sent to them; their socket listens again at once.
    pub queued_reset: u64,
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
    /// Half-open handshakes dropped to make a socket listen again (the
    /// oldest first; a SYN flood shows here). A legitimate client among
    /// them does not retry: it had our SYN-ACK, so its `connect()`
    /// succeeded, and its ACK or first request meets a reset.
    pub reclaimed_half_open: u64,
    /// Closing sockets taken back to listen before their closing
    /// handshake ended (nothing but at most our FIN unacknowledged).
    pub reclaimed_lingering: u64,
    /// SYNs dropped because no socket could be had for them: every socket
    /// held a client, a waiting connection or unacknowledged answers (the
    /// client sends its SYN again).
    pub syn_dropped: u64,
    /// Sockets finishing a closing handshake now (busy answers included).
    pub lingering: u32,
    /// Connections waiting for a client place now.
    pub queued: u32,
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

impl Stats {
    /// Every counter with its name, in the order [`Display`] prints them:
    /// each name is the field's, and the key the status service's text and
    /// JSON snapshots give it.
    ///
    /// [`Display`]: core::fmt::Display
    pub fn fields(&self) -> [(&'static str, u64); 23] {
        [
            ("active", u64::from(self.active)),
            ("peak_active", u64::from(self.peak_active)),
            ("accepted", self.accepted),
            ("refused_busy", self.refused_busy),
            ("refused_reset", self.refused_reset),
            ("refused_foreign", self.refused_foreign),
            ("queued", u64::from(self.queued)),
            ("queued_then_served", self.queued_then_served),
            ("queued_reset", self.queued_reset),
            ("closed_by_peer", self.closed_by_peer),
            ("closed_by_server", self.closed_by_server),
            ("reset", self.reset),
            ("timed_out", self.timed_out),
            ("half_open_dropped", self.half_open_dropped),
            ("close_aborted", self.close_aborted),
            ("reclaimed_half_open", self.reclaimed_half_open),
            ("reclaimed_lingering", self.reclaimed_lingering),
            ("syn_dropped", self.syn_dropped),
            ("lingering", u64::from(self.lingering)),
            ("answered", self.answered),
            ("rejected", self.rejected),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
        ]
    }
}

/// Every counter as `name value`, joined by `, `: `active 1,
/// peak_active 2, accepted 5, refused_busy 0, …, bytes_out 512`. Names
/// are the fields' ([`Stats::fields`]); values are decimal integers.
impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (n, (name, value)) in self.fields().iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {value}")?;
        }
        Ok(())
    }
}
