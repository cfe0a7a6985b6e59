//! The state machine of one pool slot: one socket, one client at a time.
//!
//! ```text
//!            listen()                 SYN            handshake done
//!   Off ─────────────► Listening ─────────► Handshake ───────────► Serving
//!                        ▲   ▲  handshake_timeout │                  │
//!                        │   └────────────────────┘ (dropped,        │ peer FIN and all answered,
//!                        │                           listen again)   │ idle timeout, service close
//!                        │                                           ▼
//!                        └───── socket closed ◄──────────────── Closing ──► abort after close_timeout
//!                        └───── peer reset (from Serving) ◄──────────┘
//! ```
//!
//! A slot owns no buffers: the socket's buffers are the caller's, and the
//! exchange borrows the server's shared input and output buffers for the
//! duration of one call.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{Socket, State};
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use crate::config::Config;
use crate::service::{Output, Service};
use crate::stats::Stats;

/// Where a slot is in its life; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The socket is closed and does not listen: the slot is beyond the
    /// configured number of clients, or the server is shutting down.
    Off,
    /// The socket listens for a SYN.
    Listening,
    /// A SYN arrived at `since`; the handshake has not finished.
    Handshake {
        /// When the SYN was first seen.
        since: Instant,
    },
    /// A client is connected and being served.
    Serving {
        /// The client's address and port.
        remote: IpEndpoint,
        /// Last time a byte was consumed or an answer byte acknowledged.
        last_activity: Instant,
        /// Bytes in the transmit buffer after the last exchange, to notice
        /// the peer taking some of them.
        unacked: usize,
    },
    /// This side closed (FIN sent or queued); waiting for the socket to
    /// finish the closing handshake.
    Closing {
        /// When to give up and abort with a reset.
        deadline: Instant,
    },
}

/// Why a served connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side and every request was answered.
    PeerClosed,
    /// The peer reset the connection.
    PeerReset,
    /// Nothing moved for the idle timeout.
    IdleTimeout,
    /// The service asked to close, or the server is shutting down.
    ServerClosed,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "closed by peer",
            CloseReason::PeerReset => "reset by peer",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::ServerClosed => "closed by server",
        }
    }
}

/// What a slot's step borrows from the server.
pub(crate) struct Shared<'b, S: Service> {
    pub service: &'b mut S,
    pub input: &'b mut [u8],
    pub output: &'b mut [u8],
    pub stats: &'b mut Stats,
    pub config: &'b Config,
    pub now: Instant,
    pub shutting_down: bool,
}

/// One pool slot: its phase and its service session.
#[derive(Debug)]
pub struct Slot<T> {
    pub(crate) handle: SocketHandle,
    pub(crate) index: usize,
    pub(crate) phase: Phase,
    pub(crate) session: T,
}

/// What a listening slot saw in one step.
pub(crate) enum Arrival {
    /// No client yet; call again by this time, if any (handshake timer).
    Waiting(Option<Instant>),
    /// A client completed its handshake.
    Connected(IpEndpoint),
}

impl<T> Slot<T> {
    /// Make the socket listen on `port`, dropping whatever it held without
    /// sending anything.
    pub(crate) fn arm(&mut self, socket: &mut Socket<'_>, port: u16) {
        if socket.is_open() && !socket.is_listening() {
            socket.abort();
        }
        // A closed socket always accepts `listen` on a non-zero port; the
        // port was checked when the server was made.
        match socket.listen(port) {
            Ok(()) => self.phase = Phase::Listening,
            Err(e) => {
                log::warn!("slot {}: cannot listen on port {}: {}", self.index, port, e);
                self.phase = Phase::Off;
            }
        }
    }

    /// Listening, or in a handshake: see whether a client has arrived,
    /// drop a handshake that outlived its timeout, re-arm after a failed
    /// one.
    pub(crate) fn await_client(
        &mut self,
        socket: &mut Socket<'_>,
        now: Instant,
        config: &Config,
        stats: &mut Stats,
    ) -> Arrival {
        match socket.state() {
            State::Listen => {
                self.phase = Phase::Listening;
                Arrival::Waiting(None)
            }
            State::SynReceived => {
                let since = match self.phase {
                    Phase::Handshake { since } => since,
                    _ => now,
                };
                let deadline = since + config.handshake_timeout;
                if now >= deadline {
                    log::debug!("slot {}: handshake timed out, listening again", self.index);
                    stats.half_open_dropped = stats.half_open_dropped.saturating_add(1);
                    self.arm(socket, config.port);
                    return Arrival::Waiting(None);
                }
                self.phase = Phase::Handshake { since };
                Arrival::Waiting(Some(deadline))
            }
            State::Established | State::CloseWait => match socket.remote_endpoint() {
                Some(remote) => Arrival::Connected(remote),
                None => {
                    self.arm(socket, config.port);
                    Arrival::Waiting(None)
                }
            },
            _ => {
                // The handshake failed (reset, or the stack gave up).
                self.arm(socket, config.port);
                Arrival::Waiting(None)
            }
        }
    }

    /// Closing: once the socket is closed, listen again (or stay off while
    /// shutting down); past `deadline`, abort with a reset.
    pub(crate) fn finish_close(
        &mut self,
        socket: &mut Socket<'_>,
        deadline: Instant,
        now: Instant,
        port: u16,
        shutting_down: bool,
        stats: &mut Stats,
    ) -> Option<Instant> {
        if !socket.is_open() {
            if shutting_down {
                self.phase = Phase::Off;
            } else {
                self.arm(socket, port);
            }
            None
        } else if now >= deadline {
            log::warn!("slot {}: closing handshake timed out, aborting", self.index);
            stats.close_aborted = stats.close_aborted.saturating_add(1);
            socket.abort();
            // Let the reset go out; the next step sees CLOSED.
            Some(now)
        } else {
            Some(deadline)
        }
    }

    /// Stop listening (shutdown, or a slot beyond the configured clients).
    pub(crate) fn disarm(&mut self, socket: &mut Socket<'_>) {
        if matches!(self.phase, Phase::Listening | Phase::Handshake { .. }) {
            socket.abort();
            self.phase = Phase::Off;
        }
    }

    /// The slot's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
}

impl<T: Default> Slot<T> {
    pub(crate) fn new(index: usize, handle: SocketHandle) -> Self {
        Slot {
            handle,
            index,
            phase: Phase::Off,
            session: T::default(),
        }
    }

    /// Advance the slot by one poll step. Returns when it next needs a
    /// step because of its own timers (`None`: only when the network says).
    pub(crate) fn step<S>(
        &mut self,
        socket: &mut Socket<'_>,
        cx: &mut Shared<'_, S>,
    ) -> Option<Instant>
    where
        S: Service<Session = T>,
    {
        match self.phase {
            Phase::Off => None,
            Phase::Listening | Phase::Handshake { .. } => {
                match self.await_client(socket, cx.now, cx.config, cx.stats) {
                    Arrival::Waiting(next) => next,
                    Arrival::Connected(remote) => {
                        self.accept(remote, socket, cx);
                        self.serve(socket, cx)
                    }
                }
            }
            Phase::Serving { .. } => self.serve(socket, cx),
            Phase::Closing { deadline } => self.finish_close(
                socket,
                deadline,
                cx.now,
                cx.config.port,
                cx.shutting_down,
                cx.stats,
            ),
        }
    }

    fn accept<S>(&mut self, remote: IpEndpoint, socket: &mut Socket<'_>, cx: &mut Shared<'_, S>)
    where
        S: Service<Session = T>,
    {
        let stats = &mut *cx.stats;
        stats.accepted = stats.accepted.saturating_add(1);
        stats.active = stats.active.saturating_add(1);
        stats.peak_active = stats.peak_active.max(stats.active);
        log::info!("slot {}: {} connected", self.index, Peer(remote));
        self.session = T::default();
        self.phase = Phase::Serving {
            remote,
            last_activity: cx.now,
            unacked: socket.send_queue(),
        };
    }

    fn end<S: Service>(&mut self, reason: CloseReason, cx: &mut Shared<'_, S>) {
        let stats = &mut *cx.stats;
        stats.active = stats.active.saturating_sub(1);
        let counter = match reason {
            CloseReason::PeerClosed => &mut stats.closed_by_peer,
            CloseReason::PeerReset => &mut stats.reset,
            CloseReason::IdleTimeout => &mut stats.timed_out,
            CloseReason::ServerClosed => &mut stats.closed_by_server,
        };
        *counter = counter.saturating_add(1);
        if let Phase::Serving { remote, .. } = self.phase {
            log::info!("slot {}: {} {}", self.index, Peer(remote), reason.as_str());
        }
        self.phase = Phase::Closing {
            deadline: cx.now + cx.config.close_timeout,
        };
    }

    fn serve<S>(&mut self, socket: &mut Socket<'_>, cx: &mut Shared<'_, S>) -> Option<Instant>
    where
        S: Service<Session = T>,
    {
        let Phase::Serving {
            remote,
            mut last_activity,
            unacked,
        } = self.phase
        else {
            return None;
        };
        let now = cx.now;
        if !socket.is_active() {
            // CLOSED with no close of ours: the peer reset the connection.
            self.end(CloseReason::PeerReset, cx);
            self.arm(socket, cx.config.port);
            return None;
        }
        let exchange = exchange(socket, &mut self.session, cx);
        let queued = socket.send_queue();
        if exchange.moved || queued < unacked {
            last_activity = now;
        }
        self.phase = Phase::Serving {
            remote,
            last_activity,
            unacked: queued,
        };

        let peer_done = socket.state() == State::CloseWait && socket.recv_queue() == 0;
        let idle_deadline = cx.config.idle_timeout.map(|t| last_activity + t);
        let reason = if exchange.close || cx.shutting_down {
            Some(CloseReason::ServerClosed)
        } else if peer_done {
            Some(CloseReason::PeerClosed)
        } else if idle_deadline.is_some_and(|d| now >= d) {
            Some(CloseReason::IdleTimeout)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                // FIN goes out after everything already queued.
                socket.close();
                self.end(reason, cx);
                Some(now + cx.config.close_timeout)
            }
            None => idle_deadline,
        }
    }
}

/// What one exchange on a connection did.
struct Exchange {
    /// Some input was consumed or some output written.
    moved: bool,
    /// The service asked to close.
    close: bool,
}

/// Offer the connection's received bytes to the service and send its
/// answers, until the service makes no more progress.
fn exchange<S: Service>(
    socket: &mut Socket<'_>,
    session: &mut S::Session,
    cx: &mut Shared<'_, S>,
) -> Exchange {
    let mut result = Exchange {
        moved: false,
        close: false,
    };
    let window = cx.service.input_window();
    loop {
        let queued = socket.recv_queue();
        if queued == 0 || !socket.may_send() {
            break;
        }
        let room = socket
            .send_capacity()
            .saturating_sub(socket.send_queue())
            .min(cx.output.len());
        // Show the service what it can answer now: as much as fits the
        // room for answers, but never less than its window (so a request
        // can always be seen whole). Copying more would be copied again.
        let limit = room.max(window).min(cx.input.len());
        let Some(view) = cx.input.get_mut(..limit) else {
            break;
        };
        let Ok(shown) = socket.peek_slice(view) else {
            break;
        };
        let finished = socket.state() == State::CloseWait && shown == queued;
        let (Some(input), Some(output)) = (cx.input.get(..shown), cx.output.get_mut(..room)) else {
            break;
        };
        let mut output = Output::new(output);
        let progress = cx.service.receive(session, input, finished, &mut output);
        let consumed = progress.consumed.min(shown);
        let written = output.len();
        if written > 0 {
            match socket.send_slice(output.written()) {
                Ok(sent) if sent == written => {}
                // Cannot happen: `room` is free space. Do not lose the
                // request: keep it unconsumed and stop here.
                _ => {
                    log::warn!("transmit buffer refused an answer that fit");
                    break;
                }
            }
        }
        discard(socket, consumed);
        let stats = &mut *cx.stats;
        stats.bytes_in = stats.bytes_in.saturating_add(consumed as u64);
        stats.bytes_out = stats.bytes_out.saturating_add(written as u64);
        stats.answered = stats.answered.saturating_add(u64::from(progress.answered));
        stats.rejected = stats.rejected.saturating_add(u64::from(progress.rejected));
        if consumed == 0 && written == 0 {
            break;
        }
        result.moved = true;
        if progress.close {
            result.close = true;
            break;
        }
    }
    result
}

/// Remove `count` bytes (already handled) from the socket's receive buffer.
fn discard(socket: &mut Socket<'_>, mut count: usize) {
    // The ring buffer hands out at most two contiguous pieces.
    for _ in 0..2 {
        if count == 0 {
            break;
        }
        let taken = socket.recv(|buf| {
            let n = buf.len().min(count);
            (n, n)
        });
        match taken {
            Ok(n) if n > 0 => count = count.saturating_sub(n),
            _ => break,
        }
    }
}

/// A peer's address as people write it: `192.0.2.1:7000`, `[2001:db8::1]:7000`.
pub struct Peer(pub IpEndpoint);

impl core::fmt::Display for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.addr {
            #[cfg(feature = "ipv6")]
            smoltcp::wire::IpAddress::Ipv6(addr) => write!(f, "[{}]:{}", addr, self.0.port),
            #[allow(unreachable_patterns)]
            _ => write!(f, "{}", self.0),
        }
    }
}
