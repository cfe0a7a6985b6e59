//! The socket pool and its select-like poll step.
//!
//! smoltcp has no listening socket: a [`tcp::Socket`] in LISTEN takes the
//! first SYN for its port and from then on serves that one connection, and
//! the interface hands a SYN to the *first* listening socket in the
//! [`SocketSet`]. A [`Server`] therefore owns a fixed pool of `N` sockets
//! that all listen on the service port, plus (for [`FullPolicy::Busy`]) one
//! overflow socket added after them, which only gets a SYN when every pool
//! socket is taken.
//!
//! [`Server::poll`] is the whole loop body: poll the interface, walk every
//! slot once (re-arm, read, answer, close), send what was written, and
//! return how long the caller may sleep.
//!
//! # Memory
//!
//! Everything is fixed when the server is made. Per connection:
//!
//! - the socket's receive and transmit buffers (the caller's, any size at
//!   least the service's windows);
//! - one `tcp::Socket` control block and one `SocketStorage` entry
//!   (smoltcp's);
//! - one [`Slot`] in the server, [`Server::SLOT_SIZE`] bytes.
//!
//! Shared by all connections: the input and output scratch buffers (each at
//! least the service's window, e.g. 1026 bytes for lines of 1024).

use core::fmt;

use smoltcp::iface::{Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

use crate::config::{Config, FullPolicy};
use crate::connection::{Arrival, Peer, Phase, Shared, Slot};
use crate::service::Service;
use crate::stats::Stats;

/// The memory a [`Server`] runs in, all given by the caller.
pub struct Resources<'a, const N: usize> {
    /// The pool: one socket per client, each with its own buffers.
    pub pool: [tcp::Socket<'a>; N],
    /// The overflow socket that answers "busy" when the pool is full.
    /// Needed for [`FullPolicy::Busy`], unused for [`FullPolicy::Reset`].
    /// Its transmit buffer must hold the busy line (80 bytes is enough).
    pub overflow: Option<tcp::Socket<'a>>,
    /// Scratch for received bytes shown to the service; at least
    /// [`Service::input_window`] bytes.
    pub input: &'a mut [u8],
    /// Scratch for the service's answers; at least
    /// [`Service::output_window`] bytes.
    pub output: &'a mut [u8],
}

/// Why a [`Server`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The configured port is 0.
    PortZero,
    /// `clients` is 0 or larger than the pool.
    ClientsOutOfRange {
        /// The configured number of clients.
        requested: usize,
        /// The pool size `N`.
        pool: usize,
    },
    /// [`FullPolicy::Busy`] needs an overflow socket.
    NoOverflowSocket,
    /// A buffer is smaller than the service needs.
    BufferTooSmall {
        /// Which buffer.
        buffer: Buffer,
        /// The smallest size that works, in bytes.
        needed: usize,
        /// The size given, in bytes.
        got: usize,
    },
    /// The socket set put the overflow socket before a pool socket (it had
    /// free entries in the middle), so it would take SYNs meant for the
    /// pool. Give the server a set whose free entries are all at its end.
    SocketOrder,
}

/// A buffer named by [`Error::BufferTooSmall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// [`Resources::input`].
    Input,
    /// [`Resources::output`].
    Output,
    /// The receive buffer of pool socket `n`.
    Receive(usize),
    /// The transmit buffer of pool socket `n`.
    Transmit(usize),
    /// The transmit buffer of the overflow socket.
    Overflow,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PortZero => write!(f, "the service port must not be 0"),
            Error::ClientsOutOfRange { requested, pool } => {
                write!(
                    f,
                    "clients must be between 1 and {pool} (the pool size), not {requested}"
                )
            }
            Error::NoOverflowSocket => write!(f, "the busy policy needs an overflow socket"),
            Error::BufferTooSmall {
                buffer,
                needed,
                got,
            } => {
                let name = match buffer {
                    Buffer::Input => "input scratch buffer",
                    Buffer::Output => "output scratch buffer",
                    Buffer::Receive(_) => "receive buffer of pool socket",
                    Buffer::Transmit(_) => "transmit buffer of pool socket",
                    Buffer::Overflow => "transmit buffer of the overflow socket",
                };
                match buffer {
                    Buffer::Receive(n) | Buffer::Transmit(n) => {
                        write!(f, "{name} {n} is {got} bytes; it needs at least {needed}")
                    }
                    _ => write!(f, "{name} is {got} bytes; it needs at least {needed}"),
                }
            }
            Error::SocketOrder => write!(
                f,
                "the overflow socket landed before a pool socket in the socket set"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// The longest busy line: `busy: all ` + 20 digits + ` slots are in use, try again later\n`.
const BUSY_LINE_CAPACITY: usize = 80;

/// The overflow socket: a slot (index `N`) that answers every client with
/// the busy line and closes.
#[derive(Debug)]
struct Overflow {
    slot: Slot<()>,
    message: heapless::String<BUSY_LINE_CAPACITY>,
}

/// A select-style server over a fixed pool of `N` smoltcp TCP sockets; see
/// the [module docs](self).
pub struct Server<'a, S: Service, const N: usize> {
    config: Config,
    clients: usize,
    service: S,
    slots: [Slot<S::Session>; N],
    overflow: Option<Overflow>,
    input: &'a mut [u8],
    output: &'a mut [u8],
    stats: Stats,
    shutting_down: bool,
}

impl<'a, S: Service, const N: usize> Server<'a, S, N> {
    /// Bytes of server state per pool slot, besides the socket and its
    /// buffers.
    pub const SLOT_SIZE: usize = core::mem::size_of::<Slot<S::Session>>();

    /// Make a server: configure the pool sockets, add them (then the
    /// overflow socket) to `sockets`, and make the first `clients` listen
    /// on the service port.
    ///
    /// # Panics
    ///
    /// As [`SocketSet::add`], if `sockets` has no room for `N` more sockets
    /// (plus one for the overflow socket when the policy is busy).
    pub fn new(
        config: Config,
        service: S,
        resources: Resources<'a, N>,
        sockets: &mut SocketSet<'a>,
    ) -> Result<Self, Error> {
        let Resources {
            pool,
            overflow,
            input,
            output,
        } = resources;
        if config.port == 0 {
            return Err(Error::PortZero);
        }
        let clients = config.clients.unwrap_or(N);
        if clients == 0 || clients > N {
            return Err(Error::ClientsOutOfRange {
                requested: clients,
                pool: N,
            });
        }
        let need_in = service.input_window();
        let need_out = service.output_window();
        check(Buffer::Input, need_in, input.len())?;
        check(Buffer::Output, need_out, output.len())?;
        for (n, socket) in pool.iter().enumerate() {
            check(Buffer::Receive(n), need_in, socket.recv_capacity())?;
            check(Buffer::Transmit(n), need_out, socket.send_capacity())?;
        }
        let overflow = match (config.when_full, overflow) {
            (FullPolicy::Reset, _) => None,
            (FullPolicy::Busy, None) => return Err(Error::NoOverflowSocket),
            (FullPolicy::Busy, Some(socket)) => {
                let mut message = heapless::String::new();
                // Cannot fail: the capacity holds the longest number.
                let _ = fmt::Write::write_fmt(
                    &mut message,
                    format_args!("busy: all {clients} slots are in use, try again later\n"),
                );
                check(Buffer::Overflow, message.len(), socket.send_capacity())?;
                Some((socket, message))
            }
        };

        let mut index = 0;
        let slots = pool.map(|mut socket| {
            configure(&mut socket, &config);
            let mut slot = Slot::new(index, sockets.add(socket));
            if index < clients {
                slot.arm(sockets.get_mut::<tcp::Socket>(slot.handle), config.port);
            }
            index += 1;
            slot
        });
        let overflow = match overflow {
            None => None,
            Some((mut socket, message)) => {
                configure(&mut socket, &config);
                let handle = sockets.add(socket);
                if slots.iter().any(|slot| slot.handle > handle) {
                    return Err(Error::SocketOrder);
                }
                let mut slot = Slot::new(N, handle);
                slot.arm(sockets.get_mut::<tcp::Socket>(handle), config.port);
                Some(Overflow { slot, message })
            }
        };
        log::debug!(
            "pool of {} sockets, {} listening on port {}, {} bytes per slot",
            N,
            clients,
            config.port,
            Self::SLOT_SIZE
        );
        Ok(Server {
            config,
            clients,
            service,
            slots,
            overflow,
            input,
            output,
            stats: Stats::default(),
            shutting_down: false,
        })
    }

    /// One turn of the loop: poll the interface, serve every slot, send
    /// what was written. Returns how long the caller may sleep before the
    /// next call (`None`: until the device has a frame), as
    /// [`Interface::poll_delay`] does, taking the server's own timers into
    /// account.
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'a>,
    ) -> Option<Duration> {
        // Ingress, then the pool walk, then egress: a slot that a duplicate
        // SYN reached is re-armed by `serve` before it can send a SYN-ACK.
        iface.poll_maintenance(now);
        // smoltcp gives a SYN to the first listening socket in the set, so
        // only that slot can start a handshake with each frame. Watch it
        // between frames: a retransmitted SYN from a client that another
        // slot already holds is dropped at once, before a later frame of the
        // same batch (the client's ACK to the other slot) reaches it and is
        // answered with a reset. One socket state read per frame.
        let mut watch = self.first_listening(0, sockets);
        while !matches!(
            iface.poll_ingress_single(now, device, sockets),
            PollIngressSingleResult::None
        ) {
            let Some((i, handle)) = watch else { continue };
            if sockets.get::<tcp::Socket>(handle).state() == State::Listen {
                continue;
            }
            if !self.drop_if_held_elsewhere(i, handle, sockets) {
                watch = self.first_listening(i.saturating_add(1), sockets);
            }
        }
        let deadline = self.serve(now, sockets);
        while !matches!(iface.poll_egress(now, device, sockets), PollResult::None) {}
        let own = deadline.map(|at| if at > now { at - now } else { Duration::ZERO });
        match (iface.poll_delay(now, sockets), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Walk every slot once: re-arm free sockets, hand received bytes to
    /// the service, queue its answers, close what is finished. For callers
    /// that drive the interface themselves; [`Server::poll`] calls it.
    /// Returns when the server's own timers next need a call.
    pub fn serve(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        let mut cx = Shared {
            service: &mut self.service,
            input: &mut *self.input,
            output: &mut *self.output,
            stats: &mut self.stats,
            config: &self.config,
            now,
            shutting_down: self.shutting_down,
        };
        let mut next = None;
        for slot in self.slots.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            next = earliest(next, slot.step(socket, &mut cx));
        }
        if let Some(overflow) = self.overflow.as_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(overflow.slot.handle);
            next = earliest(next, overflow.step(socket, &mut cx));
        }
        self.drop_duplicate_handshakes(sockets);
        next
    }

    /// A client whose SYN-ACK was lost retransmits its SYN; if that SYN
    /// reaches another listening slot (one freed since the first SYN, and
    /// before it in the socket set), two slots hold one connection. The
    /// client's ACK then goes to the first of them in the set, whichever
    /// SYN-ACK it answers, and the wrong one answers it with a reset. So the
    /// newer handshake is dropped at once, silently, before it sends its
    /// SYN-ACK ([`Server::poll`] walks the pool between ingress and egress):
    /// the client only ever sees one server sequence number. A handshake is
    /// newer than one that started earlier (or at the same time in an
    /// earlier slot) and than a connection already serving that client.
    /// The first slot from index `from` on whose socket listens, with its
    /// handle.
    fn first_listening(
        &self,
        from: usize,
        sockets: &SocketSet<'a>,
    ) -> Option<(usize, SocketHandle)> {
        self.slots
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, slot)| {
                slot.phase == Phase::Listening
                    && sockets.get::<tcp::Socket>(slot.handle).state() == State::Listen
            })
            .map(|(i, slot)| (i, slot.handle))
    }

    /// Slot `i` just took a SYN. If another slot already holds that client
    /// (in a handshake or connected), this SYN was a retransmission: drop
    /// the new handshake silently and say so.
    fn drop_if_held_elsewhere(
        &mut self,
        i: usize,
        handle: SocketHandle,
        sockets: &mut SocketSet<'a>,
    ) -> bool {
        let socket = sockets.get::<tcp::Socket>(handle);
        let (State::SynReceived, Some(remote)) = (socket.state(), socket.remote_endpoint()) else {
            return false;
        };
        let held = self.slots.iter().enumerate().any(|(j, other)| {
            let other = sockets.get::<tcp::Socket>(other.handle);
            j != i && other.is_active() && other.remote_endpoint() == Some(remote)
        });
        if held {
            if let Some(slot) = self.slots.get_mut(i) {
                log::debug!(
                    "slot {}: retransmitted SYN from a client already in a slot, dropped",
                    i
                );
                self.stats.half_open_dropped = self.stats.half_open_dropped.saturating_add(1);
                slot.arm(sockets.get_mut::<tcp::Socket>(handle), self.config.port);
            }
        }
        held
    }

    fn drop_duplicate_handshakes(&mut self, sockets: &mut SocketSet<'a>) {
        for i in 0..self.slots.len() {
            let Some(slot) = self.slots.get(i) else { break };
            let Phase::Handshake { since } = slot.phase else {
                continue;
            };
            let socket = sockets.get::<tcp::Socket>(slot.handle);
            if socket.state() != State::SynReceived {
                continue;
            }
            let Some(remote) = socket.remote_endpoint() else {
                continue;
            };
            let duplicate = self
                .slots
                .iter()
                .enumerate()
                .any(|(j, other)| match other.phase {
                    Phase::Serving { remote: r, .. } => r == remote,
                    Phase::Handshake { since: s } if (s, j) < (since, i) => {
                        let other = sockets.get::<tcp::Socket>(other.handle);
                        other.state() == State::SynReceived
                            && other.remote_endpoint() == Some(remote)
                    }
                    _ => false,
                });
            if let (true, Some(slot)) = (duplicate, self.slots.get_mut(i)) {
                log::debug!(
                    "slot {}: duplicate SYN from a client already in a slot, dropped",
                    i
                );
                self.stats.half_open_dropped = self.stats.half_open_dropped.saturating_add(1);
                slot.arm(
                    sockets.get_mut::<tcp::Socket>(slot.handle),
                    self.config.port,
                );
            }
        }
    }

    /// Stop accepting clients; answer what connected clients have already
    /// sent, then close their connections. Poll until
    /// [`Server::is_shut_down`].
    pub fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        self.shutting_down = true;
        for slot in self.slots.iter_mut() {
            slot.disarm(sockets.get_mut::<tcp::Socket>(slot.handle));
        }
        if let Some(overflow) = self.overflow.as_mut() {
            let slot = &mut overflow.slot;
            slot.disarm(sockets.get_mut::<tcp::Socket>(slot.handle));
        }
    }

    /// Whether a shutdown has finished: every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down
            && self.slots.iter().all(|s| s.phase == Phase::Off)
            && self
                .overflow
                .as_ref()
                .is_none_or(|o| o.slot.phase == Phase::Off)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many pool slots listen.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The pool slots, in socket-set order.
    pub fn slots(&self) -> impl Iterator<Item = (SocketHandle, Phase)> + '_ {
        self.slots.iter().map(|s| (s.handle, s.phase))
    }

    /// The overflow socket, if the policy is busy.
    pub fn overflow_handle(&self) -> Option<SocketHandle> {
        self.overflow.as_ref().map(|o| o.slot.handle)
    }
}

impl Overflow {
    /// Like a pool slot while waiting for a client and while closing; a
    /// client that arrives gets the busy line and our FIN at once.
    fn step<S: Service>(
        &mut self,
        socket: &mut tcp::Socket<'_>,
        cx: &mut Shared<'_, S>,
    ) -> Option<Instant> {
        let now = cx.now;
        match self.slot.phase {
            Phase::Listening | Phase::Handshake { .. } => {
                match self.slot.await_client(socket, now, cx.config, cx.stats) {
                    Arrival::Waiting(next) => next,
                    Arrival::Connected(remote) => {
                        // Fits: checked against the transmit buffer at
                        // start, and nothing else is ever queued here.
                        let _ = socket.send_slice(self.message.as_bytes());
                        socket.close();
                        cx.stats.refused_busy = cx.stats.refused_busy.saturating_add(1);
                        log::info!("busy: refused {}, all slots in use", Peer(remote));
                        let deadline = now + cx.config.close_timeout;
                        self.slot.phase = Phase::Closing { deadline };
                        Some(deadline)
                    }
                }
            }
            Phase::Closing { deadline } => self.slot.finish_close(
                socket,
                deadline,
                now,
                cx.config.port,
                cx.shutting_down,
                cx.stats,
            ),
            Phase::Off | Phase::Serving { .. } => None,
        }
    }
}

/// Settings every socket of the server gets.
fn configure(socket: &mut tcp::Socket<'_>, config: &Config) {
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(config.ack_delay);
    socket.set_keep_alive(config.keep_alive);
    socket.set_timeout(None);
}

fn check(buffer: Buffer, needed: usize, got: usize) -> Result<(), Error> {
    if got < needed {
        Err(Error::BufferTooSmall {
            buffer,
            needed,
            got,
        })
    } else {
        Ok(())
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
