//! A simulated network: the server on one interface, smoltcp clients on
//! another, joined by an in-memory wire, driven by a virtual clock that only
//! advances when no frame is in flight.

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::FaultInjector;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
};

use managed::ManagedSlice;
use multiserve::{
    Config, Echo, Resources, Role, Server, Service, Services, SlotStorage, Status, Watched,
};

use crate::wire::{wire, InFlight, Port};

pub const SERVER_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
/// An address of the client host on another subnet than the server's.
pub const FOREIGN_IP: Ipv4Address = Ipv4Address::new(10, 9, 8, 7);
pub const PORT: u16 = 7000;
/// The port of the echo service run beside the one under test.
pub const ECHO_PORT: u16 = 7007;
/// The port of the status service.
pub const STATUS_PORT: u16 = 7001;
/// The echo service's pool.
pub const ECHO_POOL: usize = 3;
/// The status service's pool.
pub const STATUS_POOL: usize = 2;
/// The most sockets the status service lists.
pub const ROWS: usize = 32;

/// Services beside the one under test, on the same interface and socket
/// set, polled in the same step: an echo service, and the status service
/// watching both.
pub struct Beside {
    pub echo: Server<'static, Echo>,
    /// Taken out only for the duration of a poll.
    pub status: Option<Server<'static, Status<ROWS>>>,
}

/// Sizes and faults of a simulated network.
#[derive(Clone, Copy)]
pub struct Setup {
    pub server_rx: usize,
    pub server_tx: usize,
    pub client_rx: usize,
    pub client_tx: usize,
    /// Percent of frames dropped, each way.
    pub drop_pct: u8,
    /// Percent of frames corrupted, each way.
    pub corrupt_pct: u8,
    pub seed: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            server_rx: 4096,
            server_tx: 4096,
            client_rx: 65536,
            client_tx: 65536,
            drop_pct: 0,
            corrupt_pct: 0,
            seed: 1,
        }
    }
}

pub struct Host {
    pub iface: Interface,
    pub device: FaultInjector<Port>,
    pub sockets: SocketSet<'static>,
}

impl Host {
    fn new(port: Port, mac: [u8; 6], ip: Ipv4Address, setup: &Setup, seed: u32) -> Host {
        let mut device = FaultInjector::new(port, seed);
        device.set_drop_chance(setup.drop_pct);
        device.set_corrupt_chance(setup.corrupt_pct);
        let mut config = IfaceConfig::new(EthernetAddress(mac).into());
        config.random_seed = u64::from(seed) * 7919 + u64::from(mac[5]);
        let mut iface = Interface::new(config, &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).unwrap();
        });
        Host {
            iface,
            device,
            sockets: SocketSet::new(vec![]),
        }
    }
}

pub struct Net<S: Service + 'static, const N: usize> {
    pub now: Instant,
    pub server: Server<'static, S>,
    pub server_host: Host,
    pub client_host: Host,
    pub setup: Setup,
    pub in_flight: InFlight,
    pub beside: Option<Beside>,
    /// Whether client connections opened from now on offer TCP timestamps
    /// (RFC 7323) in their SYN, with [`client_tsval`] as their clock.
    pub client_timestamps: bool,
    /// Whether the server host polls its interface itself and then walks
    /// the server ([`Server::walk`]), as a caller with its own loop does,
    /// instead of [`Services::poll`] (only without services beside).
    pub own_poll: bool,
    next_port: u16,
}

/// The TSval of every client segment unless a test sets another
/// ([`set_client_tsval`]): smoltcp's server side needs no clock that moves
/// (it does not check PAWS), and a fixed value is easy to find echoed.
pub const CLIENT_TSVAL: u32 = 0x5EED_0001;

thread_local! {
    /// The clients' timestamp clock, per test (each test runs on a thread
    /// of its own).
    static CLIENT_CLOCK: std::cell::Cell<u32> = const { std::cell::Cell::new(CLIENT_TSVAL) };
}

/// The clock of client connections with TCP timestamps: the TSval of
/// every client segment sent from now on.
pub fn client_tsval() -> u32 {
    CLIENT_CLOCK.with(|c| c.get())
}

/// Set the TSval of the client segments sent from now on (on this
/// test's thread).
pub fn set_client_tsval(tsval: u32) {
    CLIENT_CLOCK.with(|c| c.set(tsval));
}

fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

/// A server's storage for `n` pool sockets, owned (a `Vec`), as a host
/// sizes it at run time.
pub fn slot_storage<S: Service>(n: usize) -> ManagedSlice<'static, SlotStorage<S>> {
    (0..n)
        .map(|_| SlotStorage::default())
        .collect::<Vec<_>>()
        .into()
}

impl<S: Service + 'static, const N: usize> Net<S, N> {
    pub fn new(config: Config, service: S, setup: Setup) -> Self {
        Self::try_new(config, service, setup).expect("server starts")
    }

    pub fn try_new(config: Config, service: S, setup: Setup) -> Result<Self, multiserve::Error> {
        let (a, b, in_flight) = wire();
        let mut server_host = Host::new(a, [2, 0, 0, 0, 0, 1], SERVER_IP, &setup, setup.seed);
        let client_host = Host::new(
            b,
            [2, 0, 0, 0, 0, 2],
            CLIENT_IP,
            &setup,
            setup.seed.wrapping_mul(31).wrapping_add(17),
        );
        let resources = Resources {
            pool: (0..N).map(|_| socket(setup.server_rx, setup.server_tx)),
            storage: slot_storage(N),
            input: vec![0u8; 4096].leak(),
            output: vec![0u8; 4096].leak(),
        };
        let server = Server::new(config, service, resources, &mut server_host.sockets)?;
        Ok(Net {
            now: Instant::ZERO,
            server,
            server_host,
            client_host,
            setup,
            in_flight,
            beside: None,
            client_timestamps: false,
            own_poll: false,
            next_port: 49152,
        })
    }

    /// The server under test on [`PORT`], and beside it an echo service on
    /// [`ECHO_PORT`] (`echo` configures it) and the status service on
    /// [`STATUS_PORT`] (capacity 1, one spare), all in one socket set.
    pub fn with_services(config: Config, service: S, setup: Setup, echo: Config) -> Self {
        let mut net = Self::new(config, service, setup);
        let sockets = &mut net.server_host.sockets;
        let echo = Server::new(
            Config {
                port: ECHO_PORT,
                ..echo
            },
            Echo,
            Resources {
                pool: (0..ECHO_POOL).map(|_| socket(setup.server_rx, setup.server_tx)),
                storage: slot_storage(ECHO_POOL),
                input: vec![0u8; 4096].leak(),
                output: vec![0u8; 4096].leak(),
            },
            sockets,
        )
        .expect("echo server starts");
        let status = Server::new(
            Config {
                port: STATUS_PORT,
                clients: Some(1),
                spare: Some(1),
                ..Config::default()
            },
            Status::new(),
            Resources {
                pool: (0..STATUS_POOL).map(|_| socket(256, 1024)),
                storage: slot_storage(STATUS_POOL),
                input: vec![0u8; 128].leak(),
                output: vec![0u8; 1024].leak(),
            },
            sockets,
        )
        .expect("status server starts");
        net.beside = Some(Beside {
            echo,
            status: Some(status),
        });
        net
    }

    /// The echo service beside the one under test.
    pub fn echo(&self) -> &Server<'static, Echo> {
        &self.beside.as_ref().expect("services beside").echo
    }

    /// The status server.
    pub fn status(&self) -> &Server<'static, Status<ROWS>> {
        self.beside
            .as_ref()
            .and_then(|b| b.status.as_ref())
            .expect("status server")
    }

    /// Poll both sides once at the current time. Returns whether any frame
    /// is still in flight, and the earliest time either side wants a poll.
    fn poll_once(&mut self) -> (bool, Option<Instant>) {
        let now = self.now;
        let s = &mut self.server_host;
        let server_delay = match &mut self.beside {
            None if self.own_poll => {
                s.iface.poll(now, &mut s.device, &mut s.sockets);
                self.server.walk(now, &s.iface, &mut s.sockets);
                self.server.poll_delay(now, &mut s.iface, &s.sockets)
            }
            None => {
                self.server
                    .poll(now, &mut s.iface, &mut s.device, &mut s.sockets);
                self.server.poll_delay(now, &mut s.iface, &s.sockets)
            }
            Some(beside) => {
                let status = beside.status.take().expect("status server");
                let mut watched = Watched::new((&mut self.server, &mut beside.echo), status);
                watched.poll(now, &mut s.iface, &mut s.device, &mut s.sockets);
                let delay = watched.poll_delay(now, &mut s.iface, &s.sockets);
                beside.status = Some(watched.status);
                delay
            }
        };
        let c = &mut self.client_host;
        c.iface.poll(now, &mut c.device, &mut c.sockets);
        let client_delay = c.iface.poll_delay(now, &c.sockets);
        let in_flight = self.in_flight.count() > 0;
        let next = [server_delay, client_delay]
            .into_iter()
            .flatten()
            .min()
            .map(|d| now + d);
        (in_flight, next)
    }

    /// Run the network until `done` holds or `limit` of virtual time has
    /// passed. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        let mut spins = 0u32;
        loop {
            let (in_flight, next) = self.poll_once();
            if done(self) {
                return true;
            }
            if in_flight {
                spins += 1;
                assert!(spins < 1_000_000, "network never settles");
                continue;
            }
            let at = match next {
                Some(at) if at > self.now => at,
                Some(_) => {
                    spins += 1;
                    assert!(spins < 1_000_000, "a poll delay of zero never ends");
                    continue;
                }
                // Nothing scheduled and the time is up (a zero-length run).
                None if self.now >= end => return done(self),
                None => end,
            };
            spins = 0;
            if at > end {
                self.now = end;
                self.poll_once();
                return done(self);
            }
            self.now = at;
        }
    }

    /// Run for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Give the client host `FOREIGN_IP` too, an address outside the
    /// server's subnet, and the server a default route through the client
    /// host: a peer that reaches the server across a router.
    pub fn add_foreign_address(&mut self) {
        self.client_host.iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(IpAddress::Ipv4(FOREIGN_IP), 24))
                .unwrap();
        });
        self.server_host
            .iface
            .routes_mut()
            .add_default_ipv4_route(CLIENT_IP)
            .expect("a route");
    }

    /// Open a client connection from `FOREIGN_IP` to `port` (not waiting
    /// for the handshake); see [`Net::add_foreign_address`].
    pub fn connect_from_foreign(&mut self, port: u16) -> SocketHandle {
        let (rx, tx) = (self.setup.client_rx, self.setup.client_tx);
        self.open(Some(IpAddress::Ipv4(FOREIGN_IP)), port, rx, tx)
    }

    /// Open a client connection (not waiting for the handshake).
    pub fn connect_with(&mut self, rx: usize, tx: usize) -> SocketHandle {
        self.connect_to(PORT, rx, tx)
    }

    /// Open a client connection to `port` (not waiting for the handshake).
    pub fn connect_to(&mut self, port: u16, rx: usize, tx: usize) -> SocketHandle {
        self.open(None, port, rx, tx)
    }

    /// Open a client connection from `from` (the client host's own
    /// address: `None`) to `port`, with buffers of `rx` and `tx` bytes.
    fn open(&mut self, from: Option<IpAddress>, port: u16, rx: usize, tx: usize) -> SocketHandle {
        let mut sock = socket(rx, tx);
        sock.set_nagle_enabled(false);
        if self.client_timestamps {
            sock.set_tsval_generator(Some(client_tsval));
        }
        let local = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(49152);
        let c = &mut self.client_host;
        sock.connect(
            c.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(SERVER_IP), port),
            IpListenEndpoint {
                addr: from,
                port: local,
            },
        )
        .expect("connect");
        c.sockets.add(sock)
    }

    /// Open a client connection and wait until it is established.
    pub fn connect(&mut self) -> SocketHandle {
        self.connect_port(PORT)
    }

    /// Open a client connection to `port` and wait until it is established.
    pub fn connect_port(&mut self, port: u16) -> SocketHandle {
        let (rx, tx) = (self.setup.client_rx, self.setup.client_tx);
        let h = self.connect_to(port, rx, tx);
        let ok = self.run_until(Duration::from_secs(60), |n| {
            n.client(h).state() == State::Established
        });
        assert!(ok, "client never connected: {}", self.client(h).state());
        h
    }

    pub fn client(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.client_host.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Queue all of `data` on a client (it must fit its transmit buffer).
    pub fn send(&mut self, h: SocketHandle, data: &[u8]) {
        let n = self.client(h).send_slice(data).expect("send");
        assert_eq!(n, data.len(), "client transmit buffer too small");
    }

    /// Take whatever a client has received.
    pub fn take(&mut self, h: SocketHandle) -> Vec<u8> {
        let sock = self.client(h);
        let mut out = vec![0; sock.recv_queue()];
        if !out.is_empty() {
            let n = sock.recv_slice(&mut out).expect("recv");
            out.truncate(n);
        }
        out
    }

    /// Run until a client has received exactly `expected.len()` bytes (or
    /// the limit passes), and return what it received.
    pub fn receive(&mut self, h: SocketHandle, len: usize, limit: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        let end = self.now + limit;
        while got.len() < len && self.now < end {
            let remaining = end - self.now;
            self.run_until(remaining, |n| n.client(h).recv_queue() > 0);
            got.extend(self.take(h));
        }
        got
    }

    /// Send `data` and return the first `expected_len` bytes of the answer.
    pub fn exchange(&mut self, h: SocketHandle, data: &[u8], expected_len: usize) -> Vec<u8> {
        self.send(h, data);
        self.receive(h, expected_len, Duration::from_secs(60))
    }

    /// The phases of the pool slots.
    pub fn phases(&self) -> Vec<Role> {
        self.server.slots().map(|(_, p)| p).collect()
    }

    /// The TCP states of the pool sockets.
    pub fn server_states(&self) -> Vec<State> {
        self.server
            .slots()
            .map(|(h, _)| self.server_host.sockets.get::<tcp::Socket>(h).state())
            .collect()
    }

    /// Whether every listening slot is back in LISTEN.
    pub fn all_listening(&self) -> bool {
        self.server_states()
            .iter()
            .take(self.server.clients() + self.server.spare())
            .all(|s| *s == State::Listen)
    }
}

/// A tiny seeded random number generator (xorshift64*), so that every run
/// of a randomized test is reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with `pct` percent chance.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The reverse of a string by character, with `\n`.
pub fn rev_line(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.chars().rev().collect::<String>().into_bytes();
    v.push(b'\n');
    v
}
