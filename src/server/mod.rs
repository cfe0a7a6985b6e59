//! The socket pool, its select-like poll step, and admission.

mod admission;
mod error;
mod ingress;
mod report;
mod services;
mod storage;

pub use error::{Buffer, Error};
pub use report::{ServiceView, SocketView, View, MAX_SERVICES};
pub(crate) use services::sealed::Steps;
pub use services::Services;
pub(crate) use services::Syn;
pub use storage::SlotStorage;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use crate::config::Config;
use crate::connection::{self, holds_place, Phase, Role, Shared, Slot};
use crate::service::Service;
use crate::stats::Stats;
use admission::{serving_count, Admission};
use storage::{Slots, Storage};

/// The memory a [`Server`] runs in, all given by the caller.
///
/// `P` is the pool: anything that yields its sockets, an array
/// (`[tcp::Socket; N]`), a `Vec`, or an iterator that makes them.
pub struct Resources<'a, S: Service, P> {
    /// The pool: every socket with its own buffers, as many as
    /// [`storage`](Resources::storage) has entries. The first
    /// `clients + spare` are used (see [`Config::clients`],
    /// [`Config::spare`]); each of those needs buffers for one client.
    pub pool: P,
    /// The server's state per pool socket, one entry for each: a slice
    /// (`&mut [SlotStorage::EMPTY; N][..]`, e.g. a `static` on a board) or
    /// a `Vec` sized at run time, given with `.into()`, as smoltcp's
    /// `SocketSet` takes its entries. Its length is the pool's size.
    pub storage: managed::ManagedSlice<'a, SlotStorage<S>>,
    /// Scratch for received bytes shown to the service; at least
    /// [`Service::input_window`] bytes.
    pub input: &'a mut [u8],
    /// Scratch for the service's answers; at least
    /// [`Service::output_window`] bytes.
    pub output: &'a mut [u8],
}

/// A select-style server over a fixed pool of smoltcp TCP sockets, sized
/// by the caller's [`SlotStorage`]; see the docs below.
///
/// smoltcp has no listening socket: a [`tcp::Socket`] in LISTEN takes the
/// first SYN for its port and from then on serves that one connection, and
/// the interface hands a SYN to the *first* listening socket in the
/// [`SocketSet`]. A [`Server`] therefore owns a fixed pool of sockets
/// on the service port. Its capacity ([`Config::clients`]) is the number of
/// connections served at once; the pool holds that many sockets plus
/// spare ones ([`Config::spare`]), and roles rotate among them (see
/// [`Role`]):
///
/// - a connection holds a client place only while it is served; once the
///   server is done with it, its socket lingers in the closing handshake
///   without one;
/// - every free socket listens; when a SYN arrives and none does, one is
///   taken back for it (closed, then closing with nothing or only our FIN
///   unacknowledged, then a done connection, then a half-open handshake
///   from the address holding the most), never a served connection and
///   never unacknowledged answer bytes; with nothing to take back, the
///   SYN is dropped, as a full SYN queue drops it, and the client's TCP
///   sends it again after its retransmission timeout (1 s, then 2 s, …:
///   RFC 6298) and finds a socket then;
/// - a handshake that finishes while every place is taken waits for one
///   up to [`Config::queue_wait`], then gets the full-server answer.
/// - a SYN from a peer the server does not answer ([`Config::peers`]:
///   not on the interface's own subnets) gets a reset instead of a
///   SYN-ACK.
///
/// [`Server::poll`] is the whole loop body: receive each frame (looking
/// at it first while no socket listens), walk every socket once (read,
/// answer, close, give waiting connections the free places), send what was
/// written, and return how long the caller may sleep.
///
/// # Time per poll step, as the pool grows
///
/// The server watches one listening socket between frames (the one
/// smoltcp gives the next SYN to), so its walk passes every other idle
/// socket by at the cost of a look at its phase, and settles the pool in
/// one more pass per step. smoltcp itself still looks at every socket of
/// the set in each egress and for each deadline. Over the simulated wire,
/// 64 clients' round trips cost 1.0× the instructions with 96 sockets,
/// about 12× with 6,144 (`host/bench/core.sh`); on a host, where the
/// kernel's share of each frame dominates, rr at 64 connections loses
/// far less: BENCHMARKS.md has both.
///
/// # Memory
///
/// Everything is fixed when the server is made, all of it the caller's
/// (a board's statics, or a host's `Vec`s sized at run time; the server
/// never allocates). Per pool socket, client place or spare alike:
///
/// - its receive and transmit buffers (the caller's: at least the
///   service's [`input_window`](Service::input_window) and
///   [`output_window`](Service::output_window) bytes, 1026 each for
///   [`Reverse`](crate::Reverse) with lines of 1024);
/// - one smoltcp `SocketStorage` entry in the [`SocketSet`], which holds
///   the socket's [`tcp::Socket`];
/// - one [`SlotStorage`] entry: its slot (handle, role and counts) and its
///   service session, [`Server::SLOT_SIZE`] bytes.
///
/// A socket therefore costs, in bytes,
/// `receive + transmit + size_of::<SocketStorage>() + SLOT_SIZE`. Every
/// socket needs a client's buffers, because the roles rotate (see
/// [`Role`]): the socket listening now serves the next client. The pool
/// holds `clients + spare` sockets; with the default spare sockets
/// (half the capacity, rounded up: [`Config::spare`]) one more client
/// costs one and a half sockets. `spare: Some(0)` saves the spare sockets,
/// at the price of SYNs dropped while connections close (their clients
/// send them again, see above).
///
/// The fixed parts, in bytes, depend on the target and on smoltcp's
/// features:
///
/// | | x86-64, IPv4 and IPv6, smoltcp `std` | 32-bit (Cortex-M3, RV32IMAC), IPv4 only |
/// | --- | ---: | ---: |
/// | `Server::<Reverse>::SLOT_SIZE` ([`SlotStorage`]) | 96 | 80 |
/// | `tcp::Socket` | 448 | 312 |
/// | `SocketStorage` entry, the `tcp::Socket` included | 488 | 336 |
///
/// The first column is the host program's build (and the tests'), the
/// second the boards' (smoltcp with `proto-ipv4`, `socket-tcp` and
/// `socket-dhcpv4`); `core::mem::size_of` gives them for another. With
/// the host's 64 KiB receive and transmit buffers a socket is about
/// 129 KiB.
///
/// Shared by all connections: the input and output scratch buffers (each
/// at least the service's window, e.g. 1026 bytes for lines of 1024).
pub struct Server<'a, S: Service> {
    /// Everything that is the same whatever the service and pool size.
    core: Admission,
    /// What the last walk returned: when the slots' timers next need one.
    next_walk: Option<Instant>,
    /// Each pool socket's slot and service session, in pool order.
    storage: Storage<'a, S>,
    service: S,
    input: &'a mut [u8],
    output: &'a mut [u8],
}

impl<'a, S: Service> Server<'a, S> {
    /// Bytes of server state per pool socket, besides the socket and its
    /// buffers: its slot and its service session. For [`Reverse`](crate::Reverse)
    /// 96 bytes on x86-64 (IPv4 and IPv6) and 80 on 32-bit targets (IPv4
    /// only); see [Memory](Server#memory).
    pub const SLOT_SIZE: usize = SlotStorage::<S>::SIZE;

    /// Make a server: configure the pool sockets, add them to `sockets`,
    /// and make the ones in use listen on the service port.
    ///
    /// # Socket-set order
    ///
    /// smoltcp hands a SYN to the first socket in the set that listens on
    /// its port, and the server keeps that one its first listening pool
    /// socket: the pool's sockets must sit in the set in pool order, and
    /// stay so. They are added to the first free entries, so the set must
    /// have no free entry before its end ([`Error::SocketOrder`]
    /// otherwise); and a pool socket is sometimes put back into the set
    /// (after a dropped handshake), into its first free entry, so never
    /// remove a socket that sits before the pool while the server runs.
    /// Add your other sockets (such as the DHCP socket of
    /// `Addressing::new`, feature `dhcpv4`) before the server's when they
    /// stay for good, and after them when you remove them again.
    ///
    /// # Example
    ///
    /// A server on your [`Device`] and interface (here
    /// smoltcp's in-memory loopback), and a client on the same interface:
    ///
    /// ```
    /// use multiserve::{Config, Resources, Reverse, Server, SlotStorage};
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
    /// // Three sockets: two clients at once and one spare (the defaults).
    /// let mut storage = [SlotStorage::EMPTY; 3];
    /// let resources = Resources {
    ///     pool: [socket(), socket(), socket()],
    ///     storage: (&mut storage[..]).into(),
    ///     input: &mut input,
    ///     output: &mut output,
    /// };
    /// let mut server = Server::new(Config::default(), Reverse::default(), resources, &mut sockets)?;
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
    ///     server.poll(now, &mut iface, &mut device, &mut sockets);
    ///     let delay = server.poll_delay(now, &mut iface, &sockets);
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
    /// # Errors
    ///
    /// Besides the configuration's and the buffers' errors,
    /// [`Error::PoolMismatch`] when the pool yields more or fewer sockets
    /// than `storage` has entries. On an error, the pool's sockets added
    /// so far stay in `sockets`.
    ///
    /// # Panics
    ///
    /// As [`SocketSet::add`], if `sockets` is a fixed slice with no room
    /// for the pool.
    pub fn new<P>(
        config: Config,
        service: S,
        resources: Resources<'a, S, P>,
        sockets: &mut SocketSet<'a>,
    ) -> Result<Self, Error>
    where
        P: IntoIterator<Item = tcp::Socket<'a>>,
    {
        let Resources {
            pool,
            mut storage,
            input,
            output,
        } = resources;
        let core = Admission::new(
            config,
            service.input_window(),
            service.output_window(),
            service.peers(),
            storage.len(),
            input.len(),
            output.len(),
        )?;
        core.add_pool(
            &mut pool.into_iter(),
            &mut storage,
            sockets,
            Self::SLOT_SIZE,
        )?;
        Ok(Server {
            core,
            next_walk: None,
            storage,
            service,
            input,
            output,
        })
    }

    /// One turn of the loop: receive each frame, walk every socket once,
    /// send what was written; [`Services::poll`] over this one server.
    /// Then [`Server::poll_delay`] says how long the caller may sleep.
    ///
    /// The answers written in the walk leave in the same poll step, with
    /// the ACK for their request on them ([`Config::ack_delay`] delays only
    /// a pure ACK). A served socket whose queues did not change since its
    /// last exchange (nothing received, nothing acknowledged, the peer did
    /// not close) and whose service has no output pending
    /// ([`Service::wants_output`]) is not offered to the service again:
    /// the service made no progress on exactly that input and room.
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'a>,
    ) {
        Services::poll(self, now, iface, device, sockets)
    }

    /// When [`Server::poll`] is next needed (`None`: when the device has a
    /// frame): [`Services::poll_at`] over this one server.
    pub fn poll_at(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'a>,
    ) -> Option<Instant> {
        Services::poll_at(self, now, iface, sockets)
    }

    /// How long the caller may sleep before [`Server::poll`] is next
    /// needed (`None`: until the device has a frame):
    /// [`Services::poll_delay`] over this one server.
    ///
    /// On a board, sleep until then or the NIC's interrupt, with
    /// interrupts masked around the check for work (the NIC's flag, the
    /// deadline) and the `wfi`: an interrupt arriving between the check
    /// and the `wfi` then still ends the sleep (`wfi` wakes on a pending
    /// interrupt even while masked), and its handler runs once they are
    /// unmasked.
    pub fn poll_delay(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'a>,
    ) -> Option<Duration> {
        Services::poll_delay(self, now, iface, sockets)
    }

    /// Walk every socket once: admit or drop new handshakes, hand received
    /// bytes to the service, queue its answers, close what is finished,
    /// give waiting connections a free place or the full-server answer,
    /// and keep a socket listening. For callers that drive the interface
    /// themselves, between its ingress and egress; [`Server::poll`] does
    /// all three. `iface` is the interface the sockets are served on: its
    /// addresses say which peers are local ([`Config::peers`]). `now` is
    /// also the clock of TCP timestamps ([`Config::timestamps`]) until the
    /// next walk or poll. Returns when the server's own timers next need a
    /// walk.
    pub fn walk(
        &mut self,
        now: Instant,
        iface: &Interface,
        sockets: &mut SocketSet<'a>,
    ) -> Option<Instant> {
        // Segments sent from here to the next step carry `now` as their
        // timestamp, also where the caller polls the interface itself.
        crate::connection::set_clock(now);
        // A SYN taken since the last look: the caller polled the interface
        // itself (`poll` looks after every frame, and walks with
        // `walk_pool`).
        self.core
            .syns_taken(&mut self.storage, now, iface.ip_addrs(), sockets);
        self.walk_pool(now, sockets)
    }

    /// The walk of [`Server::walk`], once every SYN taken is known.
    fn walk_pool(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        let Server {
            core,
            next_walk,
            storage,
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
            for entry in storage.iter_mut().take(in_use) {
                let Some(entry) = entry.entry_mut() else {
                    continue;
                };
                if entry.slot.at_rest() {
                    // Nothing to step, nothing to count (see `at_rest`).
                    continue;
                }
                let (slot, session) = (&mut entry.slot, &mut entry.session);
                let next = connection::step(slot, session, sockets, &mut cx, &mut shared);
                tally.add(next, slot, sockets);
            }
        }
        let mut next = tally.next;
        if tally.queued {
            // Give queued connections the free places, oldest first.
            let mut serving = tally.serving;
            while let Some(i) = core.next_admitted(&*storage, serving) {
                let Some(entry) = storage.get_mut(i).and_then(SlotStorage::entry_mut) else {
                    break;
                };
                let socket = sockets.get_mut::<tcp::Socket<'a>>(entry.slot.handle);
                let mut cx = core.cx(now);
                next = earliest(
                    next,
                    connection::admit(
                        &mut entry.slot,
                        &mut entry.session,
                        socket,
                        &mut cx,
                        &mut shared,
                    ),
                );
                serving = serving_count(&*storage, sockets);
            }
            next = earliest(next, core.refuse_waiting(&mut *storage, now, sockets));
        }
        core.end_walk(&mut *storage, now, sockets);
        *next_walk = next;
        next
    }

    /// Stop accepting clients; answer what connected clients have already
    /// sent, then close their connections. Poll until
    /// [`Server::is_shut_down`].
    pub fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        self.core.shutdown(&mut self.storage, sockets);
    }

    /// Whether a shutdown has finished: every connection is closed.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down(&self.storage)
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

    /// The pool's sockets, in socket-set order, with their roles (those
    /// beyond the sockets in use are always [`Role::Off`]).
    pub fn slots(&self) -> impl Iterator<Item = (SocketHandle, Role)> + '_ {
        self.slots_view().iter().map(|s| (s.handle, s.phase.role()))
    }

    /// The pool socket count: the storage's entries.
    pub fn pool_size(&self) -> usize {
        self.storage.len()
    }

    /// The slots, as admission sees them.
    fn slots_view(&self) -> &dyn Slots {
        &self.storage
    }

    /// The service, to hand it the server's own report (the status
    /// service's view of itself); see [`Watched`](crate::Watched).
    pub(crate) fn report_into<const R: usize>(
        &mut self,
        now: Instant,
        sockets: &SocketSet<'a>,
        view: impl FnOnce(&mut S) -> &mut View<R>,
    ) {
        let name = self.service.name();
        let view = view(&mut self.service);
        self.core.describe(name, &self.storage, now, sockets, view);
    }

    /// The service, to change it between poll steps.
    pub(crate) fn service_mut(&mut self) -> &mut S {
        &mut self.service
    }
}

impl<'a, S: Service> Steps<'a> for Server<'a, S> {
    fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool {
        self.core.prepare(&mut self.storage, sockets)
    }

    fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn {
        self.core.syn(&mut self.storage, port, now, sockets)
    }

    fn frame_done(&mut self, now: Instant, iface: &Interface, sockets: &mut SocketSet<'a>) -> bool {
        self.core
            .frame_done(&mut self.storage, now, iface.ip_addrs(), sockets)
    }

    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        self.walk_pool(now, sockets)
    }

    fn next_walk(&self) -> Option<Instant> {
        self.next_walk
    }

    fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>) {
        self.core
            .describe(self.service.name(), &self.storage, now, sockets, view);
    }

    fn stop(&mut self, sockets: &mut SocketSet<'a>) {
        self.core.shutdown(&mut self.storage, sockets);
    }

    fn stopped(&self) -> bool {
        self.core.is_shut_down(&self.storage)
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

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
