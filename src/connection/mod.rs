//! The state machine of one pool socket: one connection at a time, in one
//! of seven phases.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{Socket, State};
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, TcpTimestampGenerator};

mod exchange;
mod timestamps;

use crate::config::Config;
use crate::service::Service;
use crate::stats::Stats;
use exchange::{exchange, Exchange};
pub(crate) use timestamps::set_clock;

/// Where a pool socket is in its life; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The socket is closed and does not listen.
    Off,
    /// The socket listens for a SYN.
    Listening,
    /// A SYN arrived at `since`; the handshake has not finished
    /// (SYN-RECEIVED). Holds no client place.
    HalfOpen {
        /// When the SYN was first seen.
        since: Instant,
    },
    /// The handshake finished at `since` while every client place was
    /// taken: the connection waits for one, at most
    /// [`Config::queue_wait`], then gets the full-server answer.
    Queued {
        /// When the handshake finished.
        since: Instant,
    },
    /// A client is connected and being served: it holds a client place.
    Serving {
        /// The client's address and port.
        remote: IpEndpoint,
        /// Last time a byte was consumed or an answer byte acknowledged.
        last_activity: Instant,
        /// The socket and the service as the last exchange left them.
        seen: Seen,
    },
    /// The full-server answer (the busy line, or a reset) was given, or a
    /// peer the server does not answer was sent a reset; the socket
    /// finishes closing. Holds no client place.
    Busy {
        /// When to give up and abort with a reset.
        deadline: Instant,
    },
    /// The server is done with the connection (FIN sent or queued) and
    /// waits for the closing handshake to end. Holds no client place.
    Lingering {
        /// When to give up and abort with a reset.
        deadline: Instant,
    },
}

/// What a pool socket is doing, in one word; see the
/// docs below for how a socket moves between roles.
///
/// A socket's phase says what the server does with it, and whether its
/// connection holds one of the server's client places (only `Serving`
/// does). The sockets of a pool are alike: which of them listens, serves
/// or lingers changes from one connection to the next.
///
/// ```text
///                 SYN              handshake done            a place is free
///   Listening ──────────► HalfOpen ───────────────► Queued ─────────────────► Serving
///     ▲  ▲  ▲               │  timeout, reset,        │ wait over, or            │ peer FIN and all answered,
///     │  │  │               │  duplicate, reclaimed   │ socket needed            │ idle timeout, service close
///     │  │  └───────────────┘                         ▼                          ▼
///     │  │                                          Busy ──────────┐        Lingering
///     │  │    closed, or reclaimed once nothing      (full-server   │            │
///     │  └─── unacknowledged but a FIN is left ◄────  answer sent)  └───────────►│
///     │                                                                         │
///     └────────── peer reset (from Serving, Queued) · abort after close_timeout ┘
///
///   Off: not listening (beyond the sockets in use, shutting down, or the
///   reset policy with every place taken); armed again into Listening.
/// ```
///
/// A socket whose connection the server closed first (idle timeout,
/// service close, full-server answer) ends in TIME-WAIT, still
/// [`Lingering`](Role::Lingering) or [`Busy`](Role::Busy): smoltcp keeps
/// it 10 s to acknowledge the peer's FIN again if the peer resends it, so
/// the peer's close is orderly, never a reset. A SYN that needs a socket
/// takes it back before then.
///
/// A slot owns no buffers: the socket's buffers are the caller's, and the
/// exchange borrows the server's shared input and output buffers for the
/// duration of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Not listening: beyond the sockets in use, shutting down, or the
    /// reset policy with every place taken.
    Off,
    /// Listening for a SYN.
    Listening,
    /// A handshake under way: SYN received, not yet acknowledged.
    HalfOpen,
    /// Connected, waiting for a client place.
    Queued,
    /// Connected and holding a client place: served.
    Serving,
    /// Sending the full-server answer, then closing.
    Busy,
    /// Served and done with: finishing its closing handshake without a
    /// place.
    Lingering,
}

impl Role {
    /// The role as a word: `off`, `listening`, `half-open`, `queued`,
    /// `serving`, `busy`, `lingering`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Off => "off",
            Role::Listening => "listening",
            Role::HalfOpen => "half-open",
            Role::Queued => "queued",
            Role::Serving => "serving",
            Role::Busy => "busy",
            Role::Lingering => "lingering",
        }
    }
}

impl Phase {
    /// The phase's [`Role`].
    pub fn role(&self) -> Role {
        match self {
            Phase::Off => Role::Off,
            Phase::Listening => Role::Listening,
            Phase::HalfOpen { .. } => Role::HalfOpen,
            Phase::Queued { .. } => Role::Queued,
            Phase::Serving { .. } => Role::Serving,
            Phase::Busy { .. } => Role::Busy,
            Phase::Lingering { .. } => Role::Lingering,
        }
    }
}

/// A served socket's queues as the last exchange left them, and whether
/// the service still had output for it. While the queues are unchanged and
/// the service has no output pending there is nothing new to offer it (it
/// made no progress on exactly this input and room), so the exchange is
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Bytes received and not yet consumed (saturating at `u32::MAX`).
    pub recv_queue: u32,
    /// Answer bytes queued and not yet acknowledged by the peer
    /// (saturating at `u32::MAX`).
    pub send_queue: u32,
    /// Whether the peer had closed its side (CLOSE-WAIT).
    pub peer_closed: bool,
    /// Whether the service still had output for the connection
    /// ([`Service::wants_output`]): the rest of an answer that did not
    /// fit. The connection is not done before it is written, whatever the
    /// peer did.
    pub pending_output: bool,
}

/// Whether a socket in `phase` holds a client place: it is served, and not
/// done (see [`peer_done`]: the next walk closes it). The one rule for
/// counting against the capacity.
pub(crate) fn holds_place(phase: Phase, socket: &Socket<'_>) -> bool {
    match phase {
        Phase::Serving { seen, .. } => !peer_done(socket, seen.pending_output),
        _ => false,
    }
}

/// Whether a served connection is done with: the peer's FIN is in, every
/// request it sent is consumed (so answered), and the service has no
/// output left for it (`pending_output`, [`Service::wants_output`]). The
/// one rule for "done", for closing, counting and reclaiming alike.
fn peer_done(socket: &Socket<'_>, pending_output: bool) -> bool {
    socket.state() == State::CloseWait && socket.recv_queue() == 0 && !pending_output
}

impl Seen {
    /// The socket's queues now, with the service's `pending_output`.
    fn of(socket: &Socket<'_>, pending_output: bool) -> Seen {
        Seen {
            recv_queue: saturate(socket.recv_queue()),
            send_queue: saturate(socket.send_queue()),
            peer_closed: socket.state() == State::CloseWait,
            pending_output,
        }
    }
}

/// Whether the socket was aborted and its reset has not gone out yet:
/// CLOSED with a peer still known (smoltcp forgets the peer once the reset
/// is sent).
fn reset_pending(socket: &Socket<'_>) -> bool {
    socket.state() == State::Closed && socket.remote_endpoint().is_some()
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Why a served connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
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

/// What a slot's step borrows from the server, whatever its service.
pub(crate) struct Cx<'b> {
    pub stats: &'b mut Stats,
    pub config: &'b Config,
    pub now: Instant,
    pub shutting_down: bool,
}

/// What an exchange with the service borrows from the server.
pub(crate) struct Shared<'b, S: Service> {
    pub service: &'b mut S,
    pub input: &'b mut [u8],
    pub output: &'b mut [u8],
}

/// One pool socket's server-side state, but for its service session: its
/// handle, phase and counts.
///
/// The server keeps the sessions in an array of their own, beside its
/// slots, so that everything a slot does without the service is the same
/// code for every service and pool size; only the exchange with the
/// service (its step and its admission) is per service.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) handle: SocketHandle,
    pub(crate) index: usize,
    pub(crate) phase: Phase,
    /// Bytes of the current (or last) connection consumed by the service.
    pub(crate) bytes_in: u64,
    /// Bytes of the current (or last) connection written to it: answers,
    /// or the busy line.
    pub(crate) bytes_out: u64,
    /// The role as the last walk saw it, and since when it has held.
    pub(crate) role: Role,
    pub(crate) role_since: Instant,
}

/// What a closing socket would cost to take back for listening now, if
/// anything: the rank in the reclaim order, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum Reclaim {
    /// Closed since the last walk: free, nothing is taken back.
    Free,
    /// Closing with nothing unacknowledged left (FIN-WAIT-2, TIME-WAIT).
    Finished,
    /// Closing with only our FIN unacknowledged (FIN-WAIT-1, CLOSING,
    /// LAST-ACK with an empty transmit queue): the peer has every answer.
    FinOnly,
    /// Served and done (the peer's FIN is in, the service has nothing more
    /// to write, every answer acknowledged) but not yet closed by a walk:
    /// our FIN is not even sent, so a peer that waits for it sees a reset,
    /// after every answer.
    Unclosed,
    /// A handshake that has not finished (SYN-RECEIVED): possibly a
    /// client whose last ACK was lost, which would see its request reset,
    /// so it goes last.
    HalfOpen,
}

/// What a slot's step left to do.
enum Step {
    /// Nothing: the step is over; when the slot next needs one because of
    /// its own timers.
    Done(Option<Instant>),
    /// The connection is served: exchange with the service.
    Serve,
}

impl Slot {
    pub(crate) fn new(index: usize, handle: SocketHandle) -> Self {
        Slot {
            handle,
            index,
            phase: Phase::Off,
            bytes_in: 0,
            bytes_out: 0,
            role: Role::Off,
            role_since: Instant::ZERO,
        }
    }

    /// Make the socket listen on the configured port with the configured
    /// TCP options ([`configure`]), dropping whatever it held without
    /// sending anything.
    pub(crate) fn arm(&mut self, socket: &mut Socket<'_>, config: &Config) {
        if socket.is_open() && !socket.is_listening() {
            socket.abort();
        }
        self.bytes_in = 0;
        self.bytes_out = 0;
        // smoltcp drops the timestamp generator of a socket whose client
        // offered no timestamps, and keeps it dropped: give it back.
        configure(socket, config);
        // A closed socket always accepts `listen` on a non-zero port; the
        // port was checked when the server was made.
        let port = config.port;
        match socket.listen(port) {
            Ok(()) => self.phase = Phase::Listening,
            Err(e) => {
                warn!("slot {}: cannot listen on port {}: {}", self.index, port, e);
                self.phase = Phase::Off;
            }
        }
    }

    /// Make the socket listen again ([`Slot::arm`]) in a fresh socket-set
    /// entry. smoltcp remembers, per entry, a neighbour it could not reach
    /// (a flood's spoofed address) and keeps that entry silent for up to
    /// 1 s: the next client's SYN-ACK must not wait for it. The entry freed
    /// is the one taken again, so the handle (and the order) stays the
    /// same as long as the set has no free entry before it.
    pub(crate) fn recycle<'a>(&mut self, sockets: &mut SocketSet<'a>, config: &Config) {
        let socket = sockets.remove(self.handle);
        self.handle = sockets.add(socket);
        self.arm(sockets.get_mut::<Socket<'a>>(self.handle), config);
    }

    /// Stop listening (a half-open peer is sent a reset).
    pub(crate) fn disarm(&mut self, socket: &mut Socket<'_>) {
        if matches!(self.phase, Phase::Listening | Phase::HalfOpen { .. }) {
            socket.abort();
            self.phase = Phase::Off;
        }
    }

    /// Whether (and how cheaply) this socket can be taken back to listen
    /// at `now`. Never a connection that holds or waits for a client place,
    /// never one with answer bytes the peer has not acknowledged.
    pub(crate) fn reclaim_rank(
        &self,
        socket: &Socket<'_>,
        now: Instant,
    ) -> Option<(Reclaim, Instant)> {
        match self.phase {
            Phase::HalfOpen { since } if socket.state() == State::SynReceived => {
                Some((Reclaim::HalfOpen, since))
            }
            // Done but not yet closed by a walk (the peer's FIN came in
            // this poll): every answer acknowledged, only our FIN to go.
            Phase::Serving { .. }
                if !holds_place(self.phase, socket) && socket.send_queue() == 0 =>
            {
                Some((Reclaim::Unclosed, now))
            }
            Phase::Busy { deadline } | Phase::Lingering { deadline } => match socket.state() {
                // Closed cleanly (no peer left: no reset to send) since the
                // last walk, which would have made it listen.
                State::Closed if !reset_pending(socket) => Some((Reclaim::Free, deadline)),
                State::FinWait2 | State::TimeWait => Some((Reclaim::Finished, deadline)),
                State::FinWait1 | State::Closing | State::LastAck if socket.send_queue() == 0 => {
                    Some((Reclaim::FinOnly, deadline))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Advance the slot by one poll step, except for the place of a queued
    /// connection (the server decides who gets one; a queued connection
    /// its peer reset is dropped here) and the exchange of a served one. A
    /// handshake dropped (timed out, failed) may have silenced its
    /// socket-set entry for an unreachable peer, so the socket listens
    /// again in a fresh one.
    fn step_unserved<'a>(&mut self, sockets: &mut SocketSet<'a>, cx: &mut Cx<'_>) -> Step {
        let socket = sockets.get_mut::<Socket<'a>>(self.handle);
        match self.phase {
            Phase::Off => Step::Done(None),
            Phase::Queued { .. } => {
                self.queued_peer(socket, cx.config, cx.stats);
                Step::Done(None)
            }
            Phase::Listening | Phase::HalfOpen { .. } => {
                let half_open = matches!(self.phase, Phase::HalfOpen { .. });
                let next = self.await_client(socket, cx.now, cx.config, cx.stats);
                if half_open && self.phase == Phase::Listening {
                    self.recycle(sockets, cx.config);
                }
                Step::Done(next)
            }
            Phase::Serving { .. } => Step::Serve,
            Phase::Busy { deadline } | Phase::Lingering { deadline } => {
                Step::Done(self.finish_close(socket, deadline, cx))
            }
        }
    }

    /// Listening, or in a handshake: see whether the handshake finished,
    /// drop one that outlived its timeout, re-arm after a failed one.
    /// Returns when the handshake timer runs out, if one is running.
    pub(crate) fn await_client(
        &mut self,
        socket: &mut Socket<'_>,
        now: Instant,
        config: &Config,
        stats: &mut Stats,
    ) -> Option<Instant> {
        match socket.state() {
            State::Listen => {
                self.phase = Phase::Listening;
                None
            }
            State::SynReceived => {
                let since = match self.phase {
                    Phase::HalfOpen { since } => since,
                    _ => now,
                };
                let deadline = since + config.handshake_timeout;
                if now >= deadline {
                    debug!("slot {}: handshake timed out, listening again", self.index);
                    stats.half_open_dropped = stats.half_open_dropped.saturating_add(1);
                    self.arm(socket, config);
                    return None;
                }
                self.phase = Phase::HalfOpen { since };
                Some(deadline)
            }
            State::Established | State::CloseWait => {
                self.phase = Phase::Queued { since: now };
                None
            }
            _ => {
                // The handshake failed (reset, or the stack gave up).
                self.arm(socket, config);
                None
            }
        }
    }

    /// Busy or lingering: once the socket is closed (and a reset of ours
    /// has gone out), listen again (or stay off while shutting down); past
    /// `deadline`, abort with a reset.
    ///
    /// TIME-WAIT is the end of a closing handshake the server began: our
    /// FIN is acknowledged and the peer's is in, but its acknowledgment
    /// goes out only after this walk (and after the delayed-ACK time).
    /// smoltcp keeps the socket to send it, and again for a FIN sent
    /// again, and closes it after its TIME-WAIT (10 s); a SYN that finds
    /// no socket listening takes it back before then
    /// ([`Reclaim::Finished`]). Listening at once would drop that ACK: the
    /// peer would send its FIN again and be answered with a reset. Nothing
    /// is aborted then, and when shutting down the socket is simply left
    /// to finish.
    fn finish_close(
        &mut self,
        socket: &mut Socket<'_>,
        deadline: Instant,
        cx: &mut Cx<'_>,
    ) -> Option<Instant> {
        let state = socket.state();
        let closed = state == State::Closed || (state == State::TimeWait && cx.shutting_down);
        if closed && reset_pending(socket) && cx.now < deadline {
            // The interface sends the reset after this walk; listening now
            // would forget it.
            Some(deadline)
        } else if closed {
            if cx.shutting_down {
                self.phase = Phase::Off;
            } else {
                self.arm(socket, cx.config);
            }
            None
        } else if state == State::TimeWait {
            // smoltcp's own timer ends it; the poll's delay includes it.
            None
        } else if cx.now >= deadline {
            warn!("slot {}: closing handshake timed out, aborting", self.index);
            cx.stats.close_aborted = cx.stats.close_aborted.saturating_add(1);
            socket.abort();
            // Let the reset go out; the next step sees CLOSED.
            Some(cx.now)
        } else {
            Some(deadline)
        }
    }

    /// Queued: the peer, while its connection still waits (established,
    /// or the peer closed its side). A connection gone while it waited (the
    /// peer reset it) is dropped here: counted, and the socket listens
    /// again at once, `None`. The one rule for a queued connection that
    /// is gone, wherever the server looks at one.
    fn queued_peer(
        &mut self,
        socket: &mut Socket<'_>,
        config: &Config,
        stats: &mut Stats,
    ) -> Option<IpEndpoint> {
        match (socket.state(), socket.remote_endpoint()) {
            (State::Established | State::CloseWait, Some(remote)) => Some(remote),
            _ => {
                debug!(
                    "slot {}: queued connection reset by its peer, listening again",
                    self.index
                );
                stats.queued_reset = stats.queued_reset.saturating_add(1);
                self.arm(socket, config);
                None
            }
        }
    }

    /// A SYN from a peer the server does not answer
    /// ([`Config::peers`]) was taken: refuse it with a reset, which goes
    /// out instead of the SYN-ACK.
    pub(crate) fn refuse_foreign(
        &mut self,
        socket: &mut Socket<'_>,
        now: Instant,
        config: &Config,
        stats: &mut Stats,
    ) {
        if let Some(remote) = socket.remote_endpoint() {
            info!(
                "port {}: reset {}, not on a local subnet",
                config.port,
                Peer(remote)
            );
        }
        socket.abort();
        stats.refused_foreign = stats.refused_foreign.saturating_add(1);
        self.phase = Phase::Busy {
            deadline: now + config.close_timeout,
        };
    }

    /// Queued: give the full-server answer. With `busy_line`, send it and
    /// close; without, refuse with a reset. Returns when the closing
    /// handshake must be over, or `None` for a connection its peer reset
    /// while it waited: nothing is sent to it, and its socket listens
    /// again.
    pub(crate) fn refuse(
        &mut self,
        socket: &mut Socket<'_>,
        busy_line: Option<&[u8]>,
        now: Instant,
        config: &Config,
        stats: &mut Stats,
    ) -> Option<Instant> {
        let remote = self.queued_peer(socket, config, stats)?;
        match busy_line {
            Some(line) => {
                // Fits: every socket's transmit buffer was checked against
                // the line at start, and nothing else was queued on it.
                let sent = socket.send_slice(line).unwrap_or(0);
                self.bytes_out = self.bytes_out.saturating_add(sent as u64);
                socket.close();
                stats.refused_busy = stats.refused_busy.saturating_add(1);
                info!("busy: refused {}, all places taken", Peer(remote));
            }
            None => {
                socket.abort();
                stats.refused_reset = stats.refused_reset.saturating_add(1);
                info!("full: reset {}, all places taken", Peer(remote));
            }
        }
        let deadline = now + config.close_timeout;
        self.phase = Phase::Busy { deadline };
        Some(deadline)
    }

    /// Note the slot's role at `now`: when it changed since the last
    /// call, it holds from `now`.
    /// Whether a walk may pass the slot by: off, or listening. A listening
    /// socket leaves LISTEN only for a SYN, and the server notes every SYN
    /// taken before it walks (after each frame in `Services::poll`, for
    /// every listening socket in `Server::walk`), so a slot still
    /// `Listening` at the walk has nothing to step. An idle pool socket
    /// then costs the walk one look at its phase, however large the pool.
    pub(crate) fn at_rest(&self) -> bool {
        matches!(self.phase, Phase::Off | Phase::Listening)
    }

    pub(crate) fn note_role(&mut self, now: Instant) {
        let role = self.phase.role();
        if role != self.role {
            self.role = role;
            self.role_since = now;
        }
    }

    /// How long nothing has happened: for a served connection, since a
    /// byte was last consumed or acknowledged; otherwise since the socket
    /// took its role.
    pub(crate) fn idle(&self, now: Instant) -> smoltcp::time::Duration {
        let since = match self.phase {
            Phase::Serving { last_activity, .. } => last_activity,
            _ => self.role_since,
        };
        if now > since {
            now - since
        } else {
            smoltcp::time::Duration::ZERO
        }
    }

    /// Queued: take a client place. A connection the peer reset while it
    /// waited is dropped, and the socket listens again: `None`. Otherwise
    /// whether the connection had waited (since an earlier poll step).
    fn take_place(&mut self, socket: &mut Socket<'_>, cx: &mut Cx<'_>) -> Option<bool> {
        let waited = matches!(self.phase, Phase::Queued { since } if since < cx.now);
        let remote = self.queued_peer(socket, cx.config, cx.stats)?;
        let stats = &mut *cx.stats;
        stats.accepted = stats.accepted.saturating_add(1);
        stats.active = stats.active.saturating_add(1);
        stats.peak_active = stats.peak_active.max(stats.active);
        info!(
            "port {} slot {}: {} connected",
            cx.config.port,
            self.index,
            Peer(remote)
        );
        self.phase = Phase::Serving {
            remote,
            last_activity: cx.now,
            seen: Seen {
                recv_queue: 0,
                send_queue: saturate(socket.send_queue()),
                peer_closed: false,
                // Set by the exchange that follows at once.
                pending_output: false,
            },
        };
        Some(waited)
    }

    /// A connection given a place after it `waited` was served (or
    /// already done with): count it.
    fn count_admitted(&self, waited: bool, stats: &mut Stats) {
        if waited && matches!(self.phase, Phase::Serving { .. } | Phase::Lingering { .. }) {
            stats.queued_then_served = stats.queued_then_served.saturating_add(1);
        }
    }

    /// A served connection is over: count it, and linger.
    pub(crate) fn end_served(
        &mut self,
        reason: CloseReason,
        now: Instant,
        config: &Config,
        stats: &mut Stats,
    ) {
        stats.active = stats.active.saturating_sub(1);
        let counter = match reason {
            CloseReason::PeerClosed => &mut stats.closed_by_peer,
            CloseReason::PeerReset => &mut stats.reset,
            CloseReason::IdleTimeout => &mut stats.timed_out,
            CloseReason::ServerClosed => &mut stats.closed_by_server,
        };
        *counter = counter.saturating_add(1);
        if let Phase::Serving { remote, .. } = self.phase {
            info!(
                "port {} slot {}: {} {}",
                config.port,
                self.index,
                Peer(remote),
                reason.as_str()
            );
        }
        self.phase = Phase::Lingering {
            deadline: now + config.close_timeout,
        };
    }

    /// Served: before the exchange. A connection the peer reset ends here,
    /// and the socket listens again: `None`. Otherwise the socket's queues
    /// as the last exchange left them.
    fn before_exchange(&mut self, socket: &mut Socket<'_>, cx: &mut Cx<'_>) -> Option<Seen> {
        let Phase::Serving { seen, .. } = self.phase else {
            return None;
        };
        if !socket.is_active() {
            // CLOSED with no close of ours: the peer reset the connection.
            self.end_served(CloseReason::PeerReset, cx.now, cx.config, cx.stats);
            self.arm(socket, cx.config);
            return None;
        }
        Some(seen)
    }

    /// Served: after the `exchange` (`wants_output`: whether the service
    /// still has something to write). Note the activity, and close the
    /// connection if it is done. Returns when the slot next needs a step
    /// because of its own timers.
    fn after_exchange(
        &mut self,
        socket: &mut Socket<'_>,
        exchange: Exchange,
        wants_output: bool,
        cx: &mut Cx<'_>,
    ) -> Option<Instant> {
        let Phase::Serving {
            remote,
            mut last_activity,
            seen,
        } = self.phase
        else {
            return None;
        };
        let now = cx.now;
        self.bytes_in = self.bytes_in.saturating_add(exchange.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(exchange.bytes_out);
        let after = Seen::of(socket, wants_output);
        if exchange.moved || after.send_queue < seen.send_queue {
            last_activity = now;
        }
        self.phase = Phase::Serving {
            remote,
            last_activity,
            seen: after,
        };

        let idle_deadline = cx.config.idle_timeout.map(|t| last_activity + t);
        let reason = if exchange.close || cx.shutting_down {
            Some(CloseReason::ServerClosed)
        } else if peer_done(socket, wants_output) {
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
                self.end_served(reason, now, cx.config, cx.stats);
                Some(now + cx.config.close_timeout)
            }
            None => idle_deadline,
        }
    }
}

/// Advance `slot` (with its service `session`) by one poll step, except
/// for a queued connection (the server decides who gets a place). Returns
/// when it next needs a step because of its own timers (`None`: only when
/// the network says).
pub(crate) fn step<'a, S: Service>(
    slot: &mut Slot,
    session: &mut S::Session,
    sockets: &mut SocketSet<'a>,
    cx: &mut Cx<'_>,
    shared: &mut Shared<'_, S>,
) -> Option<Instant> {
    match slot.step_unserved(sockets, cx) {
        Step::Done(next) => next,
        Step::Serve => step_served(
            slot,
            session,
            sockets.get_mut::<Socket<'a>>(slot.handle),
            cx,
            shared,
        ),
    }
}

/// Queued: take a client place, with a fresh session, and serve at once.
/// A connection the peer reset while it waited is dropped, and the socket
/// listens again.
pub(crate) fn admit<S: Service>(
    slot: &mut Slot,
    session: &mut S::Session,
    socket: &mut Socket<'_>,
    cx: &mut Cx<'_>,
    shared: &mut Shared<'_, S>,
) -> Option<Instant> {
    let waited = slot.take_place(socket, cx)?;
    *session = S::Session::default();
    let next = step_served(slot, session, socket, cx, shared);
    slot.count_admitted(waited, cx.stats);
    next
}

/// A connection holding a place: exchange bytes with its service, unless
/// nothing changed since the last exchange.
fn step_served<S: Service>(
    slot: &mut Slot,
    session: &mut S::Session,
    socket: &mut Socket<'_>,
    cx: &mut Cx<'_>,
    shared: &mut Shared<'_, S>,
) -> Option<Instant> {
    let seen = slot.before_exchange(socket, cx)?;
    // Queues as the last exchange left them, and no output pending.
    let unchanged = Seen::of(socket, seen.pending_output) == seen;
    let exchange = if unchanged && !shared.service.wants_output(session) {
        Exchange::default()
    } else {
        exchange(socket, session, cx.stats, shared)
    };
    let wants_output = shared.service.wants_output(session);
    slot.after_exchange(socket, exchange, wants_output, cx)
}

/// A peer's address as people write it: `192.0.2.1:7000`, `[2001:db8::1]:7000`.
pub(crate) struct Peer(pub IpEndpoint);

#[cfg(feature = "defmt")]
impl defmt::Format for Peer {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0.addr {
            #[cfg(feature = "ipv6")]
            smoltcp::wire::IpAddress::Ipv6(addr) => defmt::write!(f, "[{}]:{}", addr, self.0.port),
            #[allow(unreachable_patterns)]
            _ => defmt::write!(f, "{}", self.0),
        }
    }
}

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

/// The TCP options of [`Config`] on a pool socket: no Nagle, the ACK
/// delay, keep-alive, no smoltcp timeout (the server keeps its own), and
/// timestamps ([`Config::timestamps`]). The one place that applies them,
/// when the socket is added and each time it is made to listen.
pub(crate) fn configure(socket: &mut Socket<'_>, config: &Config) {
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(config.ack_delay);
    socket.set_keep_alive(config.keep_alive);
    socket.set_timeout(None);
    socket.set_tsval_generator(
        config
            .timestamps
            .then_some(timestamps::tsval as TcpTimestampGenerator),
    );
}
