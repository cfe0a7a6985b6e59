//! The server on an embassy-net-driver `Driver`, through `DriverDevice`:
//! a test driver over the simulated wire, with a link that can go down and
//! an "interrupt" that wakes whatever waker the driver was given.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use multiserve::embassy_net_driver::{Capabilities, Checksum, Driver, HardwareAddress, LinkState};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};

use multiserve::{woken, Config, DriverDevice, Resources, Reverse, Role, Server};

use crate::net::{CLIENT_IP, PORT, SERVER_IP};
use crate::wire::{self, wire, InFlight, Port};

const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// What the test (the "hardware") shares with the driver.
#[derive(Clone)]
struct Hardware {
    link: Rc<Cell<LinkState>>,
    /// The waker of the last driver call that found nothing to give.
    waker: Rc<RefCell<Option<Waker>>>,
    /// Frames that the link, being down, lost (either way).
    lost: Rc<Cell<usize>>,
    /// Whether the driver refuses to transmit while the link is down (its
    /// queue does not drain) instead of losing what is sent.
    refuse_while_down: Rc<Cell<bool>>,
    /// An interrupt not yet seen by the serving loop (a link change).
    pending: Rc<Cell<bool>>,
}

impl Hardware {
    fn new() -> Self {
        Hardware {
            link: Rc::new(Cell::new(LinkState::Up)),
            waker: Rc::default(),
            lost: Rc::default(),
            refuse_while_down: Rc::default(),
            pending: Rc::default(),
        }
    }

    /// The interrupt: wake the waker the driver holds, if any.
    fn interrupt(&self) -> bool {
        match self.waker.borrow_mut().take() {
            Some(waker) => {
                waker.wake();
                true
            }
            None => false,
        }
    }

    fn set_link(&self, state: LinkState) {
        self.link.set(state);
        self.pending.set(true);
        self.interrupt();
    }
}

/// A `Driver` over the wire's server port. While the link is down nothing
/// arrives (what the other end sends is lost) and what is sent is lost.
struct WireDriver {
    port: Port,
    hw: Hardware,
    caps: Capabilities,
}

impl WireDriver {
    fn register(&self, cx: &Context<'_>) {
        *self.hw.waker.borrow_mut() = Some(cx.waker().clone());
    }
}

struct Rx(wire::RxToken);

impl multiserve::embassy_net_driver::RxToken for Rx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        phy::RxToken::consume(self.0, |frame| f(&mut frame.to_vec()))
    }
}

enum Tx {
    Wire(wire::TxToken),
    Lost(Rc<Cell<usize>>),
}

impl multiserve::embassy_net_driver::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            Tx::Wire(token) => phy::TxToken::consume(token, len, f),
            Tx::Lost(lost) => {
                lost.set(lost.get() + 1);
                f(&mut vec![0; len])
            }
        }
    }
}

impl Driver for WireDriver {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx, Tx)> {
        let now = Instant::ZERO; // the wire has no clock
        if self.hw.link.get() == LinkState::Down {
            while let Some((rx, _)) = self.port.receive(now) {
                phy::RxToken::consume(rx, |_| ());
                self.hw.lost.set(self.hw.lost.get() + 1);
            }
            self.register(cx);
            return None;
        }
        match self.port.receive(now) {
            Some((rx, tx)) => Some((Rx(rx), Tx::Wire(tx))),
            None => {
                self.register(cx);
                None
            }
        }
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Tx> {
        if self.hw.link.get() == LinkState::Down {
            if self.hw.refuse_while_down.get() {
                self.register(cx);
                return None;
            }
            return Some(Tx::Lost(self.hw.lost.clone()));
        }
        self.port.transmit(Instant::ZERO).map(Tx::Wire)
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.register(cx);
        self.hw.link.get()
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(SERVER_MAC)
    }
}

fn ethernet_caps() -> Capabilities {
    let mut caps = Capabilities::default();
    caps.max_transmission_unit = 1514;
    caps
}

fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

fn interface(device: &mut impl Device, mac: [u8; 6], ip: IpAddress) -> Interface {
    let mut iface = Interface::new(
        IfaceConfig::new(EthernetAddress(mac).into()),
        device,
        Instant::ZERO,
    );
    iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(ip, 24)).unwrap());
    iface
}

/// The server's side: everything the serving loop owns.
struct ServerSide {
    server: Server<'static, Reverse>,
    iface: Interface,
    device: DriverDevice<WireDriver>,
    sockets: SocketSet<'static>,
}

/// The client's side: a smoltcp host on the wire's other port.
struct ClientSide {
    iface: Interface,
    port: Port,
    sockets: SocketSet<'static>,
}

impl ClientSide {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll(now, &mut self.port, &mut self.sockets);
        self.iface
            .poll_delay(now, &self.sockets)
            .map(|delay| now + delay)
    }

    fn connect(&mut self) -> SocketHandle {
        let mut sock = socket(4096, 4096);
        sock.set_nagle_enabled(false);
        sock.connect(
            self.iface.context(),
            IpEndpoint::new(IpAddress::Ipv4(SERVER_IP), PORT),
            49152,
        )
        .unwrap();
        self.sockets.add(sock)
    }

    fn socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    fn take(&mut self, h: SocketHandle) -> Vec<u8> {
        let sock = self.socket(h);
        let mut out = vec![0; sock.recv_queue()];
        if !out.is_empty() {
            let n = sock.recv_slice(&mut out).unwrap();
            out.truncate(n);
        }
        out
    }
}

fn sides(caps: Capabilities) -> (ServerSide, ClientSide, Hardware, InFlight) {
    let (server_port, mut client_port, in_flight) = wire();
    let hw = Hardware::new();
    let mut device = DriverDevice::new(WireDriver {
        port: server_port,
        hw: hw.clone(),
        caps,
    });
    let mac = device.hardware_address().expect("an Ethernet driver");
    let mut iface = Interface::new(IfaceConfig::new(mac), &mut device, Instant::ZERO);
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::Ipv4(SERVER_IP), 24))
            .unwrap()
    });
    let mut sockets = SocketSet::new(vec![]);
    let resources = Resources {
        pool: (0..4).map(|_| socket(4096, 4096)),
        storage: crate::net::slot_storage(4),
        input: vec![0u8; 4096].leak(),
        output: vec![0u8; 4096].leak(),
    };
    let server = Server::new(
        Config::default(),
        Reverse::default(),
        resources,
        &mut sockets,
    )
    .unwrap();
    let client = ClientSide {
        iface: interface(&mut client_port, CLIENT_MAC, IpAddress::Ipv4(CLIENT_IP)),
        port: client_port,
        sockets: SocketSet::new(vec![]),
    };
    let server = ServerSide {
        server,
        iface,
        device,
        sockets,
    };
    (server, client, hw, in_flight)
}

/// The loop without an executor (the adapter keeps its no-op waker), on a
/// virtual clock that jumps to the next deadline once no frame is in
/// flight. The server is polled as the documented loop polls it: when its
/// deadline comes (none while the driver's transmit queue is full) or an
/// interrupt (a frame for it, a link change) wakes it.
struct Net {
    now: Instant,
    /// When the server's loop wakes by itself.
    server_wake: Option<Instant>,
    server: ServerSide,
    client: ClientSide,
    hw: Hardware,
    in_flight: InFlight,
}

impl Net {
    fn new() -> Self {
        let (server, client, hw, in_flight) = sides(ethernet_caps());
        Net {
            now: Instant::ZERO,
            server_wake: Some(Instant::ZERO),
            server,
            client,
            hw,
            in_flight,
        }
    }

    /// Run until `done` holds or `limit` has passed; whether `done` held.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        let mut spins = 0u32;
        loop {
            let interrupt = self.in_flight.to_server() > 0 || self.hw.pending.replace(false);
            if interrupt || self.server_wake.is_some_and(|at| at <= self.now) {
                let s = &mut self.server;
                s.server
                    .poll(self.now, &mut s.iface, &mut s.device, &mut s.sockets);
                let next = s.server.poll_at(self.now, &mut s.iface, &s.sockets);
                // A full transmit queue frees up with an interrupt, not a time.
                self.server_wake = if s.device.tx_exhausted() { None } else { next };
            }
            let client_at = self.client.poll(self.now);
            if done(self) {
                return true;
            }
            spins += 1;
            assert!(spins < 100_000, "the network never settles");
            if self.in_flight.count() > 0 {
                continue;
            }
            let next = [self.server_wake, client_at].into_iter().flatten().min();
            match next {
                Some(at) if at <= self.now => continue,
                Some(at) if at < end => self.now = at,
                _ if self.now < end => self.now = end,
                _ => return false,
            }
            spins = 0;
        }
    }

    fn connect(&mut self) -> SocketHandle {
        let h = self.client.connect();
        let up = self.run_until(Duration::from_secs(10), |n| {
            n.client.socket(h).state() == State::Established
        });
        assert!(up, "the client never connected");
        h
    }

    /// Run until the client has `len` bytes (or `limit` passes).
    fn receive(&mut self, h: SocketHandle, len: usize, limit: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        self.run_until(limit, |n| {
            got.extend(n.client.take(h));
            got.len() >= len
        });
        got
    }
}

#[test]
fn the_adapter_gives_smoltcp_the_drivers_capabilities_and_address() {
    let mut caps = Capabilities::default();
    caps.max_transmission_unit = 1500;
    caps.max_burst_size = Some(3);
    caps.checksum.ipv4 = Checksum::Both;
    caps.checksum.udp = Checksum::None;
    caps.checksum.tcp = Checksum::Tx;
    caps.checksum.icmpv4 = Checksum::Rx;
    caps.checksum.icmpv6 = Checksum::None;
    let (mut server, ..) = sides(caps);
    let smol = server.device.capabilities();
    assert_eq!(smol.medium, phy::Medium::Ethernet);
    assert_eq!(smol.max_transmission_unit, 1500);
    assert_eq!(smol.max_burst_size, Some(3));
    assert!(matches!(smol.checksum.ipv4, phy::Checksum::Both));
    assert!(matches!(smol.checksum.udp, phy::Checksum::None));
    assert!(matches!(smol.checksum.tcp, phy::Checksum::Tx));
    assert!(matches!(smol.checksum.icmpv4, phy::Checksum::Rx));
    assert!(matches!(smol.checksum.icmpv6, phy::Checksum::None));
    assert_eq!(
        server.device.hardware_address(),
        Some(EthernetAddress(SERVER_MAC).into())
    );
    assert!(server.device.is_link_up());
}

#[test]
fn a_client_is_answered_through_a_driver_without_an_executor() {
    let mut net = Net::new();
    let c = net.connect();
    net.client.socket(c).send_slice(b"hello\n").unwrap();
    assert_eq!(net.receive(c, 6, Duration::from_secs(10)), b"olleh\n");
    assert_eq!(net.server.server.stats().answered, 1);
}

/// While the driver reports the link down, the adapter passes frames on as
/// ever and the driver loses them; the server keeps its connections, and
/// TCP delivers what waited once the link is back.
#[test]
fn a_connection_outlives_a_link_that_goes_down_and_up() {
    let mut net = Net::new();
    let c = net.connect();
    net.client.socket(c).send_slice(b"hello\n").unwrap();
    assert_eq!(net.receive(c, 6, Duration::from_secs(10)), b"olleh\n");

    net.hw.set_link(LinkState::Down);
    assert!(net.server.device.link_state() == LinkState::Down);
    assert!(!net.server.device.is_link_up());
    net.client.socket(c).send_slice(b"abc\n").unwrap();
    let answered = net.run_until(Duration::from_secs(5), |n| {
        n.client.socket(c).recv_queue() > 0
    });
    assert!(!answered, "an answer crossed a link that is down");
    assert!(net.hw.lost.get() > 0, "the client's line was not lost");
    assert_eq!(net.client.socket(c).state(), State::Established);
    let slot = net.server.server.slots().next().unwrap().1;
    assert!(matches!(slot, Role::Serving), "slot 0 is {slot:?}");

    net.hw.set_link(LinkState::Up);
    assert!(net.server.device.is_link_up());
    // The client retransmits on its own backoff (after 5 s down, within
    // the next 10 s).
    assert_eq!(net.receive(c, 4, Duration::from_secs(10)), b"cba\n");
    let stats = net.server.server.stats();
    assert_eq!((stats.accepted, stats.answered, stats.reset), (1, 2, 0));
}

/// A driver that refuses every transmit while its link is down: the flag
/// says so while it does, and not after the link is back. The served
/// client is closed at its idle timeout by the documented loop, with no
/// frame to wake it.
#[test]
fn a_deadline_outlives_a_link_down_period_of_refused_transmits() {
    let mut net = Net::new();
    net.hw.refuse_while_down.set(true);
    let c = net.connect();
    net.client.socket(c).send_slice(b"hello\n").unwrap();
    assert_eq!(net.receive(c, 6, Duration::from_secs(10)), b"olleh\n");
    // The client's (delayed) ACK is in: the server has nothing left to send.
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.server.sockets.iter().all(
            |(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.send_queue() == 0)
        ))
    );

    // A second client whose handshake never finishes: its ACKs are lost.
    let port = 49153;
    net.in_flight.set_filter(move |dir, frame| {
        !matches!(crate::wire::tcp_segment(frame), Some(s)
            if dir == crate::wire::Dir::ToServer && s.src_port == port && s.ack && !s.syn)
    });
    let mut sock = socket(4096, 4096);
    sock.connect(
        net.client.iface.context(),
        IpEndpoint::new(IpAddress::Ipv4(SERVER_IP), PORT),
        port,
    )
    .unwrap();
    net.client.sockets.add(sock);
    assert!(net.run_until(Duration::from_millis(100), |n| n
        .server
        .server
        .slots()
        .any(|(_, p)| matches!(p, Role::HalfOpen))));

    // The link goes down: the server's SYN-ACK retransmission is refused.
    net.hw.set_link(LinkState::Down);
    net.run_until(Duration::from_secs(5), |n| n.server.device.tx_exhausted());
    assert!(net.server.device.tx_exhausted(), "no transmit was refused");

    // Up again after the handshake timeout (10 s): the poll the link change
    // wakes drops the handshake, and sends nothing.
    net.now = Instant::from_secs(15);
    net.hw.set_link(LinkState::Up);
    net.run_until(Duration::ZERO, |_| true);
    assert!(!net
        .server
        .server
        .slots()
        .any(|(_, p)| matches!(p, Role::HalfOpen)));
    assert!(!net.server.device.tx_exhausted(), "a stale full queue");

    // The served client's idle timeout (300 s) still closes it.
    let idle = Config::default().idle_timeout.unwrap();
    let closed = net.run_until(idle, |n| !n.client.socket(c).may_recv());
    assert!(
        closed,
        "the idle timeout was dropped: {:?}",
        net.server_wake
    );
    assert_eq!(net.server.server.stats().timed_out, 1);
}

/// Counts its wakes.
struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The loop as an async task: the task gives the adapter its waker, so a
/// frame for the server wakes it through the driver at once, with no timer.
#[test]
fn a_driver_wakes_the_serving_task_through_the_adapter() {
    let (server, mut client, hw, in_flight) = sides(ethernet_caps());
    let clock = Rc::new(Cell::new(Instant::ZERO));
    // The executor's one timer: when the task wants to be woken.
    let timer: Rc<Cell<Option<Instant>>> = Rc::default();

    let task = {
        let (clock, timer) = (clock.clone(), timer.clone());
        let mut s = server;
        async move {
            loop {
                std::future::poll_fn(|cx| {
                    s.device.set_waker(cx.waker());
                    Poll::Ready(())
                })
                .await;
                let now = clock.get();
                s.server
                    .poll(now, &mut s.iface, &mut s.device, &mut s.sockets);
                let next = s.server.poll_at(now, &mut s.iface, &s.sockets);
                timer.set(if s.device.tx_exhausted() { None } else { next });
                // The timer below, or the driver, ends this.
                woken().await;
                timer.set(None);
            }
        }
    };
    let mut task = pin!(task);
    let flag = Arc::new(Flag(AtomicUsize::new(1)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);

    let mut driver_wakes = 0;
    let mut c = None;
    let mut sent_at = None;
    let mut got = Vec::new();
    let mut answered_at = None;
    for _ in 0..100_000 {
        let now = clock.get();
        if flag.0.swap(0, Ordering::SeqCst) > 0 {
            assert!(task.as_mut().poll(&mut cx).is_pending());
        }
        match c {
            Some(h) if sent_at.is_none() && client.socket(h).state() == State::Established => {
                client.socket(h).send_slice(b"hello\n").unwrap();
                sent_at = Some(now);
            }
            Some(_) => {}
            None => c = Some(client.connect()),
        }
        let client_at = client.poll(now);
        if let Some(h) = c {
            got.extend(client.take(h));
            if got.len() >= 6 {
                answered_at = Some(now);
                break;
            }
        }
        // The NIC's interrupt: a frame has arrived.
        if in_flight.to_server() > 0 && hw.interrupt() {
            driver_wakes += 1;
        }
        if flag.0.load(Ordering::SeqCst) > 0 || in_flight.count() > 0 {
            continue;
        }
        let next = [timer.get(), client_at].into_iter().flatten().min();
        let next = next.expect("nothing left to wake anyone");
        if next > now {
            clock.set(next);
        }
        if timer.get().is_some_and(|at| at <= clock.get()) {
            timer.set(None);
            waker.wake_by_ref();
        }
    }
    assert_eq!(got, b"olleh\n");
    assert!(driver_wakes > 0, "the driver never woke the task");
    assert!(sent_at.is_some());
    assert_eq!(
        answered_at, sent_at,
        "the answer waited for a timer instead of the driver's wake"
    );
}
