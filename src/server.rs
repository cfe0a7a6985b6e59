//! The socket pool, its select-like poll step, and admission.
//!
//! smoltcp has no listening socket: a [`tcp::Socket`] in LISTEN takes the
//! first SYN for its port and from then on serves that one connection, and
//! the interface hands a SYN to the *first* listening socket in the
//! [`SocketSet`]. A [`Server`] therefore owns a fixed pool of `N` sockets
//! on the service port. Its capacity ([`Config::clients`]) is the number of
//! connections served at once; the pool holds that many sockets plus
//! spare ones ([`Config::spare`]), and roles rotate among them (see
//! [`connection`]):
//!
//! - a connection holds a client place only while it is served; once the
//!   server is done with it, its socket lingers in the closing handshake
//!   without one;
//! - every free socket listens; when a SYN arrives and none does, one is
//!   taken back for it (closed, then closing with nothing or only our FIN
//!   unacknowledged, then a done connection, then a half-open handshake
//!   from the address holding the most), never a served connection and
//!   never unacknowledged answer bytes; with nothing to take back, the
//!   SYN is dropped and the client sends it again;
//! - a handshake that finishes while every place is taken waits for one
//!   up to [`Config::queue_wait`], then gets the full-server answer.
//! - a SYN from a peer the server does not answer ([`Config::peers`]:
//!   not on the interface's own subnets) gets a reset instead of a
//!   SYN-ACK.
//!
//! [`Server::poll`] is the whole loop body: receive each frame (looking
//! at it first while no socket listens), walk every socket once (read,
//! answer, close, give waiting connections the free places), send what was
//! written, and return how long the caller may sleep.
//!
//! # Memory
//!
//! Everything is fixed when the server is made. Per socket, client place
//! or spare alike:
//!
//! - the socket's receive and transmit buffers (the caller's, any size at
//!   least the service's windows);
//! - one `tcp::Socket` control block and one `SocketStorage` entry
//!   (smoltcp's);
//! - one [`Slot`] and one service session in the server,
//!   [`Server::SLOT_SIZE`] bytes together.
//!
//! Shared by all connections: the input and output scratch buffers (each at
//! least the service's window, e.g. 1026 bytes for lines of 1024).

use core::cmp::Reverse;
use core::fmt;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

use crate::config::{Config, FullPolicy, Peers};
use crate::connection::{self, holds_place, CloseReason, Cx, Phase, Reclaim, Shared, Slot};
use crate::service::Service;
use crate::services::{Services, Syn};
use crate::stats::Stats;
use crate::status::{ServiceView, SocketView, Status, View};

/// The memory a [`Server`] runs in, all given by the caller.
pub struct Resources<'a, const N: usize> {
    /// The pool: every socket with its own buffers. The first
    /// `clients + spare` are used (see [`Config::clients`],
    /// [`Config::spare`]); each of those needs buffers for one client.
    pub pool: [tcp::Socket<'a>; N],
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
    /// The capacity is 0, or capacity and spare sockets do not fit the
    /// pool.
    PoolTooSmall {
        /// The configured capacity (`None`: the default).
        clients: Option<usize>,
        /// The configured spare sockets (`None`: the default).
        spare: Option<usize>,
        /// The pool size `N`.
        pool: usize,
    },
    /// A buffer is smaller than the service needs.
    BufferTooSmall {
        /// Which buffer.
        buffer: Buffer,
        /// The smallest size that works, in bytes.
        needed: usize,
        /// The size given, in bytes.
        got: usize,
    },
    /// The socket set did not add the pool's sockets in order (it had free
    /// entries in the middle), so the first listening socket in the set
    /// would not be the first in the pool. Give the server a set whose
    /// free entries are all at its end.
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PortZero => write!(f, "the service port must not be 0"),
            Error::PoolTooSmall {
                clients,
                spare,
                pool,
            } => {
                let show = |v: &Option<usize>| match v {
                    Some(n) => Count::Given(*n),
                    None => Count::Default,
                };
                write!(
                    f,
                    "{} clients and {} spare sockets do not fit a pool of {pool} \
                     (at least 1 client; clients + spare at most {pool})",
                    show(clients),
                    show(spare)
                )
            }
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
                "the socket set did not add the pool's sockets in order; give the server a \
                 set with no free entries before its end"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// A count in an error message: given, or the default.
enum Count {
    Given(usize),
    Default,
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Given(n) => write!(f, "{n}"),
            Count::Default => write!(f, "(default)"),
        }
    }
}

/// The longest busy line: `busy: all ` + 20 digits + ` slots are in use, try again later\n`.
const BUSY_LINE_CAPACITY: usize = 80;

/// A select-style server over a fixed pool of `N` smoltcp TCP sockets; see
/// the [module docs](self).
pub struct Server<'a, S: Service, const N: usize> {
    /// Everything that is the same whatever the service and pool size.
    core: Core,
    slots: [Slot; N],
    /// The service session of each slot, in the same order.
    sessions: [S::Session; N],
    service: S,
    input: &'a mut [u8],
    output: &'a mut [u8],
}

/// A server's state besides its service, sessions, slots and scratch
/// buffers. What the server does without its service (admission,
/// listening, reclaiming, SYNs, the queue, counting, describing) is
/// written once, here, over the slots as a slice: the same code for every
/// service and pool size.
struct Core {
    config: Config,
    /// The peers answered: [`Config::peers`], or the service's choice.
    peers: Peers,
    /// The capacity: connections served at once.
    clients: usize,
    /// Sockets used: the capacity plus the spare sockets.
    in_use: usize,
    busy_line: heapless::String<BUSY_LINE_CAPACITY>,
    stats: Stats,
    shutting_down: bool,
    /// The first listening socket, watched between frames for a SYN.
    watch: Option<usize>,
    /// Whether sockets may listen now (see `may_listen`).
    may_listen: bool,
}

impl<'a, S: Service, const N: usize> Server<'a, S, N> {
    /// Bytes of server state per pool socket, besides the socket and its
    /// buffers: its slot and its service session.
    pub const SLOT_SIZE: usize = core::mem::size_of::<Slot>() + core::mem::size_of::<S::Session>();

    /// Make a server: configure the pool sockets, add them to `sockets`,
    /// and make the ones in use listen on the service port.
    ///
    /// # Example
    ///
    /// A server on your [`Device`] and interface (here
    /// smoltcp's in-memory loopback), and a client on the same interface:
    ///
    /// ```
    /// use multiserve::{Config, Resources, Reverse, Server};
    /// use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
    /// use smoltcp::phy::{Loopback, Medium};
    /// use smoltcp::socket::tcp;
    /// use smoltcp::time::{Duration, Instant};
    /// use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut device = Loopback::new(Medium::Ethernet);
    /// let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
    /// let mut iface = Interface::new(IfaceConfig::new(mac.into()), &mut device, Instant::ZERO);
    /// let address = IpAddress::v4(10, 0, 0, 1);
    /// iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(address, 24)).unwrap());
    /// let mut sockets = SocketSet::new(vec![]);
    ///
    /// // Every socket gets buffers that hold a line and its answer.
    /// let socket = || {
    ///     let buffer = || tcp::SocketBuffer::new(vec![0; 2048]);
    ///     tcp::Socket::new(buffer(), buffer())
    /// };
    /// let (mut input, mut output) = ([0; 1026], [0; 1026]);
    /// let resources = Resources {
    ///     pool: [socket(), socket(), socket()],
    ///     input: &mut input,
    ///     output: &mut output,
    /// };
    /// // Three sockets: two clients at once and one spare (the defaults).
    /// let mut server: Server<_, 3> =
    ///     Server::new(Config::default(), Reverse::default(), resources, &mut sockets)?;
    ///
    /// let client = sockets.add(socket());
    /// let port = server.config().port;
    /// sockets
    ///     .get_mut::<tcp::Socket>(client)
    ///     .connect(iface.context(), (address, port), 49152)?;
    ///
    /// let mut now = Instant::ZERO;
    /// let mut sent = false;
    /// let mut answer = Vec::new();
    /// while !answer.ends_with(b"\n") {
    ///     // The whole loop body; a board then sleeps until `delay` passes
    ///     // or its NIC interrupts.
    ///     let delay = server.poll(now, &mut iface, &mut device, &mut sockets);
    ///     let c = sockets.get_mut::<tcp::Socket>(client);
    ///     if c.may_send() && !sent {
    ///         c.send_slice(b"hello\n")?;
    ///         sent = true;
    ///     }
    ///     if c.can_recv() {
    ///         c.recv(|data| (data.len(), answer.extend_from_slice(data)))?;
    ///     }
    ///     now += delay.map_or(Duration::from_millis(1), |d| d.min(Duration::from_millis(1)));
    ///     assert!(now < Instant::from_secs(1), "no answer");
    /// }
    /// assert_eq!(answer, b"olleh\n");
    /// # Ok(())
    /// # }
    /// ```
    ///
    ///
    /// # Panics
    ///
    /// As [`SocketSet::add`], if `sockets` has no room for `N` more sockets.
    pub fn new(
        config: Config,
        service: S,
        resources: Resources<'a, N>,
        sockets: &mut SocketSet<'a>,
    ) -> Result<Self, Error> {
        let Resources {
            pool,
            input,
            output,
        } = resources;
        let core = Core::new(
            config,
            service.input_window(),
            service.output_window(),
            service.peers(),
            &pool,
            input.len(),
            output.len(),
        )?;
        let mut index = 0;
        let mut slots = pool.map(|socket| {
            let slot = core.add(index, socket, sockets);
            index += 1;
            slot
        });
        core.arm_pool(&mut slots, sockets, Self::SLOT_SIZE)?;
        Ok(Server {
            core,
            slots,
            sessions: core::array::from_fn(|_| S::Session::default()),
            service,
            input,
            output,
        })
    }

    /// One turn of the loop: poll the interface, serve every socket, send
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
        crate::services::poll(now, iface, device, sockets, self)
    }

    /// Walk every socket once: admit or drop new handshakes, hand received
    /// bytes to the service, queue its answers, close what is finished,
    /// give waiting connections a free place or the full-server answer,
    /// and keep a socket listening. For callers that drive the interface
    /// themselves; [`Server::poll`] calls it between ingress and egress.
    /// `iface` is the interface the sockets are served on: its addresses
    /// say which peers are local ([`Config::peers`]). Returns when the
    /// server's own timers next need a call.
    pub fn serve(
        &mut self,
        now: Instant,
        iface: &Interface,
        sockets: &mut SocketSet<'a>,
    ) -> Option<Instant> {
        // A SYN taken since the last look: the caller polled the interface
        // itself (`poll` looks after every frame, and walks with `walk`).
        self.core
            .syns_taken(&mut self.slots, now, iface.ip_addrs(), sockets);
        self.walk(now, sockets)
    }

    /// The walk of [`Server::serve`], once every SYN taken is known.
    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        let Server {
            core,
            slots,
            sessions,
            service,
            input,
            output,
        } = self;
        let mut shared = Shared {
            service,
            input,
            output,
        };
        let mut tally = Tally::default();
        {
            let in_use = core.in_use;
            let mut cx = core.cx(now);
            for (slot, session) in slots.iter_mut().zip(sessions.iter_mut()).take(in_use) {
                let next = connection::step(slot, session, sockets, &mut cx, &mut shared);
                tally.add(next, slot, sockets);
            }
        }
        let mut next = tally.next;
        if tally.queued {
            // Give queued connections the free places, oldest first.
            let mut serving = tally.serving;
            while let Some(i) = core.next_admitted(slots, serving) {
                let (Some(slot), Some(session)) = (slots.get_mut(i), sessions.get_mut(i)) else {
                    break;
                };
                let socket = sockets.get_mut::<tcp::Socket<'a>>(slot.handle);
                let mut cx = core.cx(now);
                next = earliest(
                    next,
                    connection::admit(slot, session, socket, &mut cx, &mut shared),
                );
                serving = serving_count(slots, sockets);
            }
            next = earliest(next, core.refuse_waiting(slots, now, sockets));
        }
        core.end_walk(slots, now, sockets);
        next
    }

    /// Stop accepting clients; answer what connected clients have already
    /// sent, then close their connections. Poll until
    /// [`Server::is_shut_down`].
    pub fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        self.core.shutdown(&mut self.slots, sockets);
    }

    /// Whether a shutdown has finished: every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down(&self.slots)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// The capacity: how many clients are served at once.
    pub fn clients(&self) -> usize {
        self.core.clients
    }

    /// The spare sockets: those in use beyond the capacity.
    pub fn spare(&self) -> usize {
        self.core.spare()
    }

    /// The service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The pool's sockets, in socket-set order, with their phases (those
    /// beyond the sockets in use are always [`Phase::Off`]).
    pub fn slots(&self) -> impl Iterator<Item = (SocketHandle, Phase)> + '_ {
        self.slots.iter().map(|s| (s.handle, s.phase))
    }
}

impl<'a, S: Service, const N: usize> Services<'a> for Server<'a, S, N> {
    fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool {
        self.core.listener(&mut self.slots, sockets)
    }

    fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn {
        self.core.syn(&mut self.slots, port, now, sockets)
    }

    fn frame_done(&mut self, now: Instant, iface: &Interface, sockets: &mut SocketSet<'a>) -> bool {
        self.core
            .frame_done(&mut self.slots, now, iface.ip_addrs(), sockets)
    }

    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        Server::walk(self, now, sockets)
    }

    fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>) {
        self.core
            .describe(self.service.name(), &self.slots, now, sockets, view);
    }

    fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        Server::shutdown(self, sockets)
    }

    fn is_shut_down(&self) -> bool {
        Server::is_shut_down(self)
    }
}

impl<'a, const R: usize, const M: usize> Server<'a, Status<R>, M> {
    /// Describe `watched`, then this server, into the status view.
    pub(crate) fn describe_into_view<P: Services<'a>>(
        &mut self,
        watched: &P,
        now: Instant,
        sockets: &SocketSet<'a>,
    ) {
        let name = self.service.name();
        let view = self.service.describe();
        view.clear(now);
        watched.report(now, sockets, view);
        self.core.describe(name, &self.slots, now, sockets, view);
    }

    /// Count the uptime from `now`, the first time.
    pub(crate) fn start_clock(&mut self, now: Instant) {
        self.service.start_clock(now);
    }

    /// The poll step is over (see [`Status`]).
    pub(crate) fn settle(&mut self) {
        self.service.settle();
    }
}

/// What a walk saw of the slots it stepped.
#[derive(Default)]
struct Tally {
    /// When the slots next need a step because of their own timers.
    next: Option<Instant>,
    /// Connections holding a client place.
    serving: usize,
    /// Whether a connection waits for a place.
    queued: bool,
}

impl Tally {
    /// `slot` was stepped, and next needs a step at `next`.
    fn add(&mut self, next: Option<Instant>, slot: &Slot, sockets: &SocketSet<'_>) {
        self.next = earliest(self.next, next);
        self.queued |= matches!(slot.phase, Phase::Queued { .. });
        self.serving += usize::from(holds_place(
            slot.phase,
            sockets.get::<tcp::Socket>(slot.handle),
        ));
    }
}

impl Core {
    /// Check the configuration, and the buffers for a service with these
    /// windows and the `pool`.
    fn new(
        config: Config,
        input_window: usize,
        output_window: usize,
        peers: Peers,
        pool: &[tcp::Socket<'_>],
        input: usize,
        output: usize,
    ) -> Result<Core, Error> {
        if config.port == 0 {
            return Err(Error::PortZero);
        }
        let (clients, spare) = config.split(pool.len()).ok_or(Error::PoolTooSmall {
            clients: config.clients,
            spare: config.spare,
            pool: pool.len(),
        })?;
        let in_use = clients + spare;
        let mut busy_line = heapless::String::new();
        // Cannot fail: the capacity holds the longest number.
        let _ = fmt::Write::write_fmt(
            &mut busy_line,
            format_args!("busy: all {clients} slots are in use, try again later\n"),
        );
        let need_out = output_window.max(busy_line.len());
        check(Buffer::Input, input_window, input)?;
        check(Buffer::Output, output_window, output)?;
        for (n, socket) in pool.iter().enumerate().take(in_use) {
            check(Buffer::Receive(n), input_window, socket.recv_capacity())?;
            check(Buffer::Transmit(n), need_out, socket.send_capacity())?;
        }
        Ok(Core {
            config,
            peers: config.peers.unwrap_or(peers),
            clients,
            in_use,
            busy_line,
            stats: Stats::default(),
            shutting_down: false,
            watch: None,
            may_listen: true,
        })
    }

    /// Configure pool socket `index` and add it to `sockets`.
    fn add<'a>(
        &self,
        index: usize,
        mut socket: tcp::Socket<'a>,
        sockets: &mut SocketSet<'a>,
    ) -> Slot {
        configure(&mut socket, &self.config);
        Slot::new(index, sockets.add(socket))
    }

    /// The pool was added: check its order, and make the sockets in use
    /// listen.
    fn arm_pool(
        &self,
        slots: &mut [Slot],
        sockets: &mut SocketSet<'_>,
        slot_size: usize,
    ) -> Result<(), Error> {
        let in_order = slots
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if a.handle < b.handle));
        if !in_order {
            return Err(Error::SocketOrder);
        }
        for slot in slots.iter_mut().take(self.in_use) {
            slot.arm(
                sockets.get_mut::<tcp::Socket>(slot.handle),
                self.config.port,
            );
        }
        log::debug!(
            "pool of {} sockets: {} clients, {} spare, listening on port {}, {} bytes per slot",
            slots.len(),
            self.clients,
            self.spare(),
            self.config.port,
            slot_size
        );
        Ok(())
    }

    /// The spare sockets: those in use beyond the capacity.
    fn spare(&self) -> usize {
        self.in_use - self.clients
    }

    /// What a slot's step borrows.
    fn cx(&mut self, now: Instant) -> Cx<'_> {
        Cx {
            stats: &mut self.stats,
            config: &self.config,
            now,
            shutting_down: self.shutting_down,
        }
    }

    /// Note every SYN a listening socket took since the last look.
    fn syns_taken(
        &mut self,
        slots: &mut [Slot],
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) {
        for i in 0..self.in_use {
            if phase(slots, i) == Some(Phase::Listening)
                && socket_state(slots, i, sockets) != Some(State::Listen)
            {
                self.syn_arrived(slots, i, now, local, sockets);
            }
        }
    }

    /// The queued connection to give a place to next, if a place is free
    /// (`serving` are taken): the one that has waited longest.
    fn next_admitted(&self, slots: &[Slot], serving: usize) -> Option<usize> {
        if serving < self.clients && !self.shutting_down {
            oldest_queued(slots, self.in_use)
        } else {
            None
        }
    }

    /// Answer the queued connections that waited too long (or all of them,
    /// when shutting down). Returns when the next wait is over.
    fn refuse_waiting(
        &mut self,
        slots: &mut [Slot],
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<Instant> {
        let mut next = None;
        for i in 0..self.in_use {
            let Some(Phase::Queued { since }) = phase(slots, i) else {
                continue;
            };
            let until = since + self.config.queue_wait;
            if now >= until || self.shutting_down {
                next = earliest(next, self.refuse(slots, i, now, sockets));
            } else {
                next = earliest(next, Some(until));
            }
        }
        next
    }

    /// Give queued connection `i` the full-server answer (see
    /// [`Slot::refuse`]).
    fn refuse(
        &mut self,
        slots: &mut [Slot],
        i: usize,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<Instant> {
        let busy_line = match self.config.when_full {
            FullPolicy::Busy => Some(self.busy_line.as_bytes()),
            FullPolicy::Reset => None,
        };
        match slots.get_mut(i) {
            Some(slot) => {
                let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
                slot.refuse(socket, busy_line, now, &self.config, &mut self.stats)
            }
            None => None,
        }
    }

    /// The walk is over: count the roles, and keep sockets listening.
    fn end_walk(&mut self, slots: &mut [Slot], now: Instant, sockets: &mut SocketSet<'_>) {
        self.count_roles(slots, now);
        self.listener(slots, sockets);
    }

    /// Make every free socket listen (or none, when no socket may listen
    /// now), and watch the first one that listens. Returns whether a frame
    /// must be looked at before the stack: no socket listens, and one may.
    fn listener(&mut self, slots: &mut [Slot], sockets: &mut SocketSet<'_>) -> bool {
        let may_listen = self.may_listen(slots, sockets);
        let port = self.config.port;
        let mut first = None;
        for (i, slot) in slots.iter_mut().enumerate().take(self.in_use) {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            match slot.phase {
                Phase::Off if may_listen => slot.arm(socket, port),
                Phase::Listening if !may_listen => slot.disarm(socket),
                _ => {}
            }
            if first.is_none() && slot.phase == Phase::Listening && socket.state() == State::Listen
            {
                first = Some(i);
            }
        }
        self.watch = first;
        self.may_listen = may_listen;
        first.is_none() && may_listen
    }

    /// A SYN for `port` is about to reach the stack (see [`Services::syn`]).
    fn syn(
        &mut self,
        slots: &mut [Slot],
        port: u16,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Syn {
        if port != self.config.port {
            return Syn::NotOurs;
        }
        if self.watch.is_some() || !self.may_listen {
            return Syn::Pass;
        }
        self.watch = self.reclaim_listener(slots, now, sockets);
        if self.watch.is_some() {
            Syn::Pass
        } else {
            // No socket can be had now: drop the SYN, as a full SYN queue
            // does; the client sends it again (after 1 s, then 2 s, ...)
            // and finds one then.
            self.stats.syn_dropped = self.stats.syn_dropped.saturating_add(1);
            Syn::Drop
        }
    }

    /// A frame went through the stack (see [`Services::frame_done`]).
    fn frame_done(
        &mut self,
        slots: &mut [Slot],
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        if let Some(i) = self.watch {
            if socket_state(slots, i, sockets) == Some(State::Listen) {
                return false;
            }
            self.syn_arrived(slots, i, now, local, sockets);
        }
        self.listener(slots, sockets)
    }

    /// A SYN arrived and no socket listens: take one back for it, in this
    /// order (lwIP's, in `tcp_alloc`): a socket closed since the last walk,
    /// a closing socket with nothing unacknowledged left, a closing socket
    /// with only our FIN unacknowledged, a served connection that is done
    /// but not yet closed, and last a half-open handshake (from the address
    /// with the most of them, the oldest first). Never a connection being served or
    /// waiting for a place, never one with answer bytes the peer has not
    /// acknowledged. Returns the socket that listens, if one could be had.
    fn reclaim_listener(
        &mut self,
        slots: &mut [Slot],
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<usize> {
        let in_use = slots.get(..self.in_use).unwrap_or(&[]);
        // Half-open handshakes from `addr`: of those, the address holding
        // the most gives one up first, so a flood from one address never
        // costs another client its handshake.
        let half_open_from = |addr: IpAddress| {
            in_use
                .iter()
                .filter(|other| {
                    let theirs = sockets.get::<tcp::Socket>(other.handle);
                    matches!(
                        other.reclaim_rank(theirs, now),
                        Some((Reclaim::HalfOpen, _))
                    ) && theirs.remote_endpoint().map(|e| e.addr) == Some(addr)
                })
                .count()
        };
        // The last address counted: a flood's handshakes come from few
        // addresses, so each is counted once, not once per handshake.
        let mut counted: Option<(IpAddress, usize)> = None;
        let mut best: Option<(ReclaimKey, usize)> = None;
        for (i, slot) in in_use.iter().enumerate() {
            let socket = sockets.get::<tcp::Socket>(slot.handle);
            let Some((rank, at)) = slot.reclaim_rank(socket, now) else {
                continue;
            };
            let crowd = match (rank, socket.remote_endpoint()) {
                (Reclaim::HalfOpen, Some(remote)) => match counted {
                    Some((addr, n)) if addr == remote.addr => n,
                    _ => {
                        let n = half_open_from(remote.addr);
                        counted = Some((remote.addr, n));
                        n
                    }
                },
                _ => 0,
            };
            let key = (rank, Reverse(crowd), at);
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, i));
            }
        }
        let ((rank, _, _), i) = best?;
        let slot = slots.get_mut(i)?;
        if let Phase::Serving { .. } = slot.phase {
            slot.end_served(CloseReason::PeerClosed, now, &self.config, &mut self.stats);
        }
        let counter = match rank {
            Reclaim::Free => None,
            Reclaim::HalfOpen => Some(&mut self.stats.reclaimed_half_open),
            Reclaim::Finished | Reclaim::FinOnly | Reclaim::Unclosed => {
                Some(&mut self.stats.reclaimed_lingering)
            }
        };
        if let Some(counter) = counter {
            *counter = counter.saturating_add(1);
        }
        log::debug!("slot {}: reclaimed ({:?}) to listen", i, rank);
        slot.recycle(sockets, self.config.port);
        (slot.phase == Phase::Listening).then_some(i)
    }

    /// Whether sockets should listen now: not while shutting down, and
    /// with the reset policy and no queue wait, not while every place is
    /// taken (the SYN is then refused by the stack).
    fn may_listen(&self, slots: &[Slot], sockets: &SocketSet<'_>) -> bool {
        !self.shutting_down
            && (self.config.when_full == FullPolicy::Busy
                || self.config.queue_wait > Duration::ZERO
                || serving_count(slots, sockets) < self.clients)
    }

    /// Socket `i` (watched as the first listening one) left LISTEN. If it
    /// took a SYN from a client that another socket already holds (a
    /// retransmitted SYN whose first copy was taken, or whose connection
    /// is served), the new handshake is dropped silently before it sends
    /// a SYN-ACK: the client only ever sees one server sequence number,
    /// so its ACK is never answered with a reset by the wrong socket. A
    /// SYN from a peer the server does not answer (not on the `local`
    /// subnets, see [`Config::peers`]) is refused with a reset instead of
    /// the SYN-ACK.
    fn syn_arrived(
        &mut self,
        slots: &mut [Slot],
        i: usize,
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) {
        let Some(slot) = slots.get(i) else {
            return;
        };
        let socket = sockets.get::<tcp::Socket>(slot.handle);
        let (State::SynReceived, Some(remote)) = (socket.state(), socket.remote_endpoint()) else {
            return;
        };
        let held = slots.iter().enumerate().any(|(j, other)| {
            j != i
                && holds_client(other.phase)
                && sockets.get::<tcp::Socket>(other.handle).remote_endpoint() == Some(remote)
        });
        let port = self.config.port;
        let Some(slot) = slots.get_mut(i) else {
            return;
        };
        if held {
            log::debug!(
                "slot {}: retransmitted SYN from a client already in a slot, dropped",
                i
            );
            self.stats.half_open_dropped = self.stats.half_open_dropped.saturating_add(1);
            slot.arm(sockets.get_mut::<tcp::Socket>(slot.handle), port);
        } else if !self.peers.admits(remote.addr, local) {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            slot.refuse_foreign(socket, now, &self.config, &mut self.stats);
        } else {
            slot.phase = Phase::HalfOpen { since: now };
        }
    }

    /// Count the lingering and queued sockets, and note every role.
    fn count_roles(&mut self, slots: &mut [Slot], now: Instant) {
        let (mut lingering, mut queued) = (0u32, 0u32);
        for slot in slots.iter_mut() {
            slot.note_role(now);
            match slot.phase {
                Phase::Busy { .. } | Phase::Lingering { .. } => lingering += 1,
                Phase::Queued { .. } => queued += 1,
                _ => {}
            }
        }
        self.stats.lingering = lingering;
        self.stats.queued = queued;
    }

    /// Stop accepting clients (see [`Server::shutdown`]).
    fn shutdown(&mut self, slots: &mut [Slot], sockets: &mut SocketSet<'_>) {
        self.shutting_down = true;
        for slot in slots.iter_mut() {
            slot.disarm(sockets.get_mut::<tcp::Socket>(slot.handle));
        }
    }

    /// Whether a shutdown has finished: every connection is closed.
    fn is_shut_down(&self, slots: &[Slot]) -> bool {
        self.shutting_down && slots.iter().all(|s| s.phase == Phase::Off)
    }

    /// Describe the service `name` and the sockets in use of its pool.
    fn describe<const R: usize>(
        &self,
        name: &'static str,
        slots: &[Slot],
        now: Instant,
        sockets: &SocketSet<'_>,
        view: &mut View<R>,
    ) {
        let service = ServiceView {
            port: self.config.port,
            name,
            clients: self.clients,
            spare: self.spare(),
            stats: self.stats,
        };
        view.push_service(service);
        for slot in slots.iter().take(self.in_use) {
            let socket = sockets.get::<tcp::Socket>(slot.handle);
            view.push_socket(SocketView {
                index: 0,
                port: service.port,
                role: slot.phase.role(),
                state: socket.state(),
                peer: socket.remote_endpoint(),
                bytes_in: slot.bytes_in,
                bytes_out: slot.bytes_out,
                idle: slot.idle(now),
            });
        }
    }
}

/// The queued connection among the first `in_use` slots that has waited
/// longest.
fn oldest_queued(slots: &[Slot], in_use: usize) -> Option<usize> {
    slots
        .iter()
        .enumerate()
        .take(in_use)
        .filter_map(|(i, slot)| match slot.phase {
            Phase::Queued { since } => Some((since, i)),
            _ => None,
        })
        .min()
        .map(|(_, i)| i)
}

/// Connections holding a client place.
fn serving_count(slots: &[Slot], sockets: &SocketSet<'_>) -> usize {
    slots
        .iter()
        .filter(|s| holds_place(s.phase, sockets.get::<tcp::Socket>(s.handle)))
        .count()
}

fn phase(slots: &[Slot], i: usize) -> Option<Phase> {
    slots.get(i).map(|s| s.phase)
}

fn socket_state(slots: &[Slot], i: usize, sockets: &SocketSet<'_>) -> Option<State> {
    slots
        .get(i)
        .map(|s| sockets.get::<tcp::Socket>(s.handle).state())
}

/// The order in which sockets are taken back: by rank, then (half-open
/// ones) the address with the most handshakes first, then the oldest.
type ReclaimKey = (Reclaim, Reverse<usize>, Instant);

/// Whether a socket in this phase holds a client: one whose new SYN is a
/// retransmission, not a new connection.
fn holds_client(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::HalfOpen { .. } | Phase::Queued { .. } | Phase::Serving { .. }
    )
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

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
