//! Run-time settings of a [`Server`](crate::Server).

use smoltcp::time::Duration;

/// What a client gets when every pool slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// One extra socket, placed after the pool, takes the connection, sends
    /// `busy: all N slots are in use, try again later\n` and closes. The
    /// client learns at once why it is not served. While that socket is busy
    /// with one refused client, a further one gets a reset.
    #[default]
    Busy,
    /// No socket listens, so smoltcp answers the SYN with a reset: the client
    /// sees "connection refused" at once. This is smoltcp's own behaviour.
    Reset,
}

/// Settings of a [`Server`](crate::Server). Build one with
/// [`Config::default`] and change what you need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The TCP port every pool socket listens on. Must not be 0.
    pub port: u16,
    /// How many pool slots listen; `None` means the whole pool. Must be
    /// between 1 and the pool size `N`.
    pub clients: Option<usize>,
    /// What a client gets when all listening slots are taken.
    pub when_full: FullPolicy,
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
    /// Delay before a pure ACK is sent. An answer produced in the same poll
    /// step carries the ACK for free, so a small delay saves a segment per
    /// request; `None` acknowledges at once.
    pub ack_delay: Option<Duration>,
}

impl Config {
    /// The defaults, as a `const`: port 7000, the whole pool, busy answer,
    /// 300 s idle timeout, 60 s keep-alive, 10 s handshake and 5 s close
    /// bounds, 1 ms ACK delay.
    pub const DEFAULT: Config = Config {
        port: 7000,
        clients: None,
        when_full: FullPolicy::Busy,
        idle_timeout: Some(Duration::from_secs(300)),
        keep_alive: Some(Duration::from_secs(60)),
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        ack_delay: Some(Duration::from_millis(1)),
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}
