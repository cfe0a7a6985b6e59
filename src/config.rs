//! Run-time settings of a [`Server`](crate::Server).

use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpCidr};

/// What a client gets when every client place is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FullPolicy {
    /// Its connection is accepted by a spare socket, which sends
    /// `busy: all N slots are in use, try again later\n` and closes. The
    /// client learns why it is not served.
    #[default]
    Busy,
    /// Its connection is refused with a reset. With
    /// [`Config::queue_wait`] zero no socket listens while every place is
    /// taken, so the SYN itself is answered with a reset (smoltcp's own
    /// behaviour): the client sees "connection refused" at once.
    Reset,
}

/// Which peers a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Peers {
    /// Only peers on the interface's own subnets: an address inside one of
    /// its IPv4 or IPv6 prefixes, or a link-local address (IPv4
    /// `169.254.0.0/16`, IPv6 `fe80::/10`). A peer that comes across a
    /// router is refused with a reset when its SYN arrives, before any
    /// SYN-ACK, and counted ([`Stats::refused_foreign`](crate::Stats)).
    LocalSubnets,
    /// Every peer that can reach the port.
    Any,
}

impl Peers {
    /// Whether a peer at `peer` is answered by an interface with the
    /// addresses `local`.
    pub fn admits(self, peer: IpAddress, local: &[IpCidr]) -> bool {
        match self {
            Peers::Any => true,
            Peers::LocalSubnets => {
                link_local(peer) || local.iter().any(|cidr| cidr.contains_addr(&peer))
            }
        }
    }
}

/// Whether `addr` is link-local: on the link whatever the prefixes.
fn link_local(addr: IpAddress) -> bool {
    match addr {
        #[cfg(feature = "ipv4")]
        IpAddress::Ipv4(addr) => addr.is_link_local(),
        #[cfg(feature = "ipv6")]
        IpAddress::Ipv6(addr) => addr.is_unicast_link_local(),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Settings of a [`Server`](crate::Server). Build one with
/// [`Config::default`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The TCP port every pool socket listens on. Must not be 0.
    pub port: u16,
    /// The capacity: how many clients are served at once. `None`: the
    /// pool size `N` (its storage's entries) less the spare sockets
    /// (`N - N / 3` when `spare` is `None` too). At least 1;
    /// `clients + spare` must not exceed `N`.
    pub clients: Option<usize>,
    /// Sockets beyond the capacity. They keep a socket listening while
    /// others finish their closing handshake or sit half-open, and give
    /// the full-server answer. `None`: half the capacity (rounded up),
    /// as far as the pool has room (`N / 3` when `clients` is `None`).
    /// Pool sockets beyond `clients + spare` are never used.
    pub spare: Option<usize>,
    /// What a client gets when every client place is taken.
    pub when_full: FullPolicy,
    /// How long a connection whose handshake finished while every place
    /// was taken waits for one before it gets the full-server answer. A
    /// client that closed and connects again at once holds its old place
    /// until its FIN arrives; when that FIN was lost, the client's TCP
    /// resends it after 200 ms, then 400 ms, 800 ms, 1.6 s. Zero answers at
    /// once.
    pub queue_wait: Duration,
    /// A connection on which nothing moves (no byte received and answered,
    /// no byte of its answers taken by the peer) for this long is closed.
    /// `None` keeps idle connections forever, which lets a vanished peer
    /// hold a slot: only use it where keep-alive alone is enough.
    pub idle_timeout: Option<Duration>,
    /// Interval of TCP keep-alive probes on an idle connection. A peer
    /// whose host has rebooted answers a probe with a reset, which frees
    /// the slot long before the idle timeout.
    pub keep_alive: Option<Duration>,
    /// How long a slot may sit in SYN-RECEIVED (a SYN arrived, the
    /// handshake did not finish) before the half-open connection is dropped
    /// and the slot listens again.
    pub handshake_timeout: Duration,
    /// How long the closing handshake (our FIN until the socket is closed)
    /// may take before the connection is aborted with a reset.
    pub close_timeout: Duration,
    /// Which peers are answered. `None`: the service's own choice,
    /// [`Service::peers`](crate::Service::peers): every peer for the
    /// reverse and echo services, only the local subnets for the status
    /// service (its snapshots list every client's address and port).
    pub peers: Option<Peers>,
    /// Delay before a pure ACK is sent. An answer produced in the same poll
    /// step carries the ACK for free, so a small delay saves a segment per
    /// request; `None` acknowledges at once.
    pub ack_delay: Option<Duration>,
    /// Whether connections use TCP timestamps (RFC 7323) when the client
    /// offers them. A Linux client may reuse a local port whose previous
    /// connection still sits in TIME-WAIT only when that connection used
    /// timestamps, and only where `net.ipv4.tcp_tw_reuse` allows it: `1`
    /// for every connection, the default `2` for loopback ones only, so
    /// over a real link (a TAP, a board) the client needs `1`. Without
    /// them a client that closes and connects again at once runs out of
    /// ports after some 30,000 connections and waits for TIME-WAITs to end
    /// (60 s each).
    /// The option costs 12 bytes in every segment (the largest segment
    /// carries 12 bytes less payload), and the time to write and read it
    /// at both ends: on the host's TAP, 16 connections exchanging 64-byte
    /// lines made about 4 % fewer round trips per second with them than
    /// with `serve --no-timestamps` (`host/bench/compare.sh`). smoltcp's round-trip estimate does
    /// not use them: it times one segment at a time by its own send and
    /// acknowledgement instants. A connection whose client sent no
    /// timestamp option in its SYN goes without them; the socket offers
    /// them again once it listens again. The clock is the `now` of the
    /// latest poll step, in milliseconds.
    pub timestamps: bool,
}

impl Config {
    /// The defaults, as a `const`: port 7000, two thirds of the pool as
    /// clients and a third as spare sockets, busy answer after at most 2 s
    /// of waiting, 300 s idle timeout, 60 s keep-alive, 10 s handshake and
    /// 5 s close bounds, the service's own choice of peers, 1 ms ACK
    /// delay, TCP timestamps on.
    pub const DEFAULT: Config = Config {
        port: 7000,
        clients: None,
        spare: None,
        when_full: FullPolicy::Busy,
        queue_wait: Duration::from_secs(2),
        idle_timeout: Some(Duration::from_secs(300)),
        keep_alive: Some(Duration::from_secs(60)),
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        peers: None,
        ack_delay: Some(Duration::from_millis(1)),
        timestamps: true,
    };
}

impl Config {
    /// How a pool of `pool` sockets is split into `(clients, spare)`, or
    /// `None` when this configuration does not fit it. The one place that
    /// applies the defaults of [`Config::clients`] and [`Config::spare`].
    pub fn split(&self, pool: usize) -> Option<(usize, usize)> {
        let (clients, spare) = match (self.clients, self.spare) {
            (Some(c), Some(s)) => (c, s),
            (Some(c), None) => (c, c.div_ceil(2).min(pool.saturating_sub(c))),
            (None, Some(s)) => (pool.checked_sub(s)?, s),
            (None, None) => (pool - pool / 3, pool / 3),
        };
        (clients >= 1 && clients.checked_add(spare)? <= pool).then_some((clients, spare))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}
