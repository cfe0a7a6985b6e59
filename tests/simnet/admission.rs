//! Admission: N clients means N clients. Closing and half-open connections
//! never cost a client its place, sockets are taken back for newcomers in
//! lwIP's order, and a SYN flood leaves the service standing.

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

use multiserve::Role;
use multiserve::{Config, Reverse};

use crate::net::{rev_line, Net, Rng, Setup, PORT, SERVER_IP};
use crate::wire::{tcp_segment, Dir};

/// An address on the server's subnet that nobody answers for.
const SPOOFED: Ipv4Address = Ipv4Address::new(192, 168, 69, 200);

/// A SYN from `SPOOFED:port`, as a flood sends it: it is never followed up.
pub fn spoofed_syn(port: u16, seq: u32) -> Vec<u8> {
    spoofed_syn_to(PORT, port, seq)
}

/// The server's MAC address.
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

/// A SYN from `SPOOFED:port` to the server's port `to`.
pub fn spoofed_syn_to(to: u16, port: u16, seq: u32) -> Vec<u8> {
    syn_frame(SERVER_MAC, SERVER_IP, to, port, seq)
}

/// A SYN from `SPOOFED:port` to port `to` of `dst` at `mac`.
fn syn_frame(mac: EthernetAddress, dst: Ipv4Address, to: u16, port: u16, seq: u32) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: port,
        dst_port: to,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 64240,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: SPOOFED,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.header_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 0x99]),
        dst_addr: mac,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut packet, &caps);
    let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
    tcp.emit(
        &mut segment,
        &IpAddress::Ipv4(SPOOFED),
        &IpAddress::Ipv4(dst),
        &caps,
    );
    buf
}

fn roles<const N: usize>(net: &Net<Reverse, N>) -> Vec<Role> {
    net.phases()
}

fn local_port<const N: usize>(net: &mut Net<Reverse, N>, h: SocketHandle) -> u16 {
    net.client(h).local_endpoint().expect("connecting").port
}

/// Connect, exchange one line, and return the client.
fn served<const N: usize>(net: &mut Net<Reverse, N>, line: &str) -> SocketHandle {
    let c = net.connect();
    assert_eq!(
        net.exchange(c, format!("{line}\n").as_bytes(), line.len() + 1),
        rev_line(line)
    );
    c
}

/// A client that exchanges a line and closes, whose last ACK (for the
/// server's FIN) never arrives: the server's socket stays in LAST-ACK with
/// only its FIN unacknowledged.
fn leave_fin_unacknowledged<const N: usize>(net: &mut Net<Reverse, N>, line: &str) {
    let c = served(net, line);
    let port = local_port(net, c);
    net.in_flight
        .set_filter(move |dir, frame| match tcp_segment(frame) {
            Some(s) if dir == Dir::ToServer && s.src_port == port => {
                let pure_ack = s.ack && !s.fin && !s.syn && s.payload_len == 0;
                !pure_ack
            }
            _ => true,
        });
    net.client(c).close();
    assert!(net.run_until(Duration::from_millis(100), |n| n
        .server_states()
        .contains(&State::LastAck)));
}

/// Give the server a moment of virtual time between steps, so that each
/// half-open handshake below is older than the next.
fn tick<const N: usize>(net: &mut Net<Reverse, N>) {
    net.run_for(Duration::from_millis(10));
}

/// Sockets are taken back only when a SYN finds none listening, and then
/// in this order: a closing socket with nothing unacknowledged left
/// (FIN-WAIT-2), one with only its FIN unacknowledged (LAST-ACK), then the
/// oldest half-open handshake, again and again under a flood.
#[test]
fn reclaims_finished_closes_first_then_the_oldest_half_open() {
    let config = Config {
        clients: Some(2),
        spare: Some(3),
        queue_wait: Duration::ZERO,
        ..Config::default()
    };
    let mut net: Net<Reverse, 5> = Net::new(config, Reverse::default(), Setup::default());
    leave_fin_unacknowledged(&mut net, "leaves");
    let _a = served(&mut net, "first");
    let _b = served(&mut net, "second");
    // A third client is told busy; it reads the line and the FIN (its
    // stack acknowledges both) but keeps its side open: FIN-WAIT-2.
    let extra = net.connect_with(1024, 1024);
    let busy = b"busy: all 2 slots are in use, try again later\n";
    assert_eq!(net.receive(extra, busy.len(), Duration::from_secs(1)), busy);
    assert!(net.run_until(Duration::from_millis(100), |n| n
        .server_states()
        .contains(&State::FinWait2)));
    assert_eq!(
        roles(&net),
        [
            Role::Lingering,
            Role::Serving,
            Role::Serving,
            Role::Busy,
            Role::Listening
        ]
    );
    assert_eq!(net.server_states()[0], State::LastAck);
    assert_eq!(net.server_states()[3], State::FinWait2);

    // The last listener takes a SYN; nothing is taken back yet.
    net.in_flight.inject(Dir::ToServer, spoofed_syn(40001, 1));
    tick(&mut net);
    assert_eq!(roles(&net)[4], Role::HalfOpen);
    let s = *net.server.stats();
    assert_eq!((s.reclaimed_lingering, s.reclaimed_half_open), (0, 0));

    // The next SYN takes the finished close (FIN-WAIT-2) first...
    net.in_flight.inject(Dir::ToServer, spoofed_syn(40002, 2));
    tick(&mut net);
    assert_eq!(roles(&net)[3], Role::HalfOpen);
    assert_eq!(net.server.stats().reclaimed_lingering, 1);

    // ...then the one with only its FIN unacknowledged (LAST-ACK)...
    net.in_flight.inject(Dir::ToServer, spoofed_syn(40003, 3));
    tick(&mut net);
    assert_eq!(roles(&net)[0], Role::HalfOpen);
    assert_eq!(net.server.stats().reclaimed_lingering, 2);
    assert_eq!(net.server.stats().reclaimed_half_open, 0);

    // ...then the oldest half-open handshake, again and again.
    for (n, (port, socket)) in [(40004, 4), (40005, 3), (40006, 0), (40007, 4)]
        .into_iter()
        .enumerate()
    {
        net.in_flight.inject(Dir::ToServer, spoofed_syn(port, 4));
        tick(&mut net);
        assert_eq!(roles(&net)[socket], Role::HalfOpen, "SYN from port {port}");
        assert_eq!(net.server.stats().reclaimed_half_open, n as u64 + 1);
    }
    assert_eq!(net.server.stats().active, 2);
}

/// A closing socket whose answer bytes the peer has not acknowledged is
/// never taken back, nor is a served connection; one with only its FIN
/// left is, when nothing else can go. With nothing to take back, the SYN
/// is dropped, and the client's retransmission finds the socket that
/// comes free.
#[test]
fn never_takes_back_unacknowledged_answers_or_served_connections() {
    let config = Config {
        clients: Some(2),
        spare: Some(1),
        queue_wait: Duration::ZERO,
        ..Config::default()
    };
    let mut net: Net<Reverse, 3> = Net::new(config, Reverse::default(), Setup::default());
    // A client whose answers never reach it: the server's socket lingers
    // in LAST-ACK with the answer unacknowledged.
    let unreached = net.connect();
    let port = local_port(&mut net, unreached);
    net.in_flight.set_filter(move |dir, frame| {
        !(dir == Dir::ToClient && tcp_segment(frame).is_some_and(|s| s.dst_port == port))
    });
    net.send(unreached, b"never delivered\n");
    net.client(unreached).close();
    assert!(
        net.run_until(Duration::from_millis(100), |n| n.server_states()[0]
            == State::LastAck)
    );
    let blocked = net.in_flight.take_filter().expect("the filter");

    leave_fin_unacknowledged(&mut net, "fin only");
    let fin_only = net.in_flight.take_filter().expect("the filter");
    let mut blocked = blocked;
    let mut fin_only = fin_only;
    net.in_flight
        .set_filter(move |dir, frame| blocked(dir, frame) && fin_only(dir, frame));
    let a = served(&mut net, "served");
    assert_eq!(
        roles(&net),
        [Role::Lingering, Role::Lingering, Role::Serving]
    );

    // A newcomer: the socket with only its FIN unacknowledged is taken,
    // never the one whose answer is unacknowledged.
    let c = served(&mut net, "newcomer");
    assert_eq!(net.server.stats().reclaimed_lingering, 1);
    assert_eq!(roles(&net), [Role::Lingering, Role::Serving, Role::Serving]);

    // Another one: nothing can be taken back, so its SYN is dropped.
    let d = net.connect_with(1024, 1024);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.client(d).state(), State::SynSent);
    assert!(net.server.stats().syn_dropped >= 1);
    assert_eq!(net.server_states()[0], State::LastAck);
    for (h, line) in [(a, "still a"), (c, "still c")] {
        assert_eq!(
            net.exchange(h, format!("{line}\n").as_bytes(), line.len() + 1),
            rev_line(line)
        );
    }

    // Once the answer gets through, that socket comes free, and the
    // waiting client's next SYN gets it: it waits for a place (both are
    // taken) and is told busy.
    net.in_flight.clear_filter();
    assert!(net.run_until(Duration::from_secs(10), |n| n.take(unreached)
        == rev_line("never delivered")));
    let busy = b"busy: all 2 slots are in use, try again later\n";
    assert_eq!(net.receive(d, busy.len(), Duration::from_secs(30)), busy);
}

/// One churning client: connect, one line, read the answer, close, and
/// connect again at once.
struct Churner {
    handle: SocketHandle,
    line: String,
    got: Vec<u8>,
    sent: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct ChurnTally {
    cycles: u64,
    busy: u64,
    refused: u64,
}

/// Runs `clients` churning clients until `cycles` cycles are done, while
/// `between` is called at every millisecond of virtual time.
fn churn<const N: usize>(
    net: &mut Net<Reverse, N>,
    clients: usize,
    cycles: u64,
    mut between: impl FnMut(&mut Net<Reverse, N>),
) -> ChurnTally {
    let busy = format!(
        "busy: all {} slots are in use, try again later\n",
        net.server.clients()
    );
    let mut tally = ChurnTally::default();
    let mut n = 0u64;
    let start = |net: &mut Net<Reverse, N>, n: &mut u64| {
        *n += 1;
        Churner {
            handle: net.connect_with(1024, 1024),
            line: format!("cycle {n}\n"),
            got: Vec::new(),
            sent: false,
        }
    };
    let mut churners: Vec<Churner> = (0..clients).map(|_| start(net, &mut n)).collect();
    let mut closing: Vec<SocketHandle> = Vec::new();
    let end = net.now + Duration::from_secs(600);
    while tally.cycles + tally.busy + tally.refused < cycles {
        assert!(net.now < end, "churn stalled: {tally:?}");
        net.run_for(Duration::from_millis(1));
        between(net);
        for c in churners.iter_mut() {
            let state = net.client(c.handle).state();
            if state == State::Established && !c.sent {
                net.send(c.handle, c.line.as_bytes());
                c.sent = true;
            }
            c.got.extend(net.take(c.handle));
            let expected = rev_line(c.line.trim_end());
            let done = if c.got == expected {
                tally.cycles += 1;
                true
            } else if c.got == busy.as_bytes() {
                tally.busy += 1;
                true
            } else if state == State::Closed {
                assert!(c.got.is_empty(), "reset after {:?}", c.got);
                eprintln!(
                    "refused: {} at {} sent {}",
                    c.line.trim_end(),
                    net.now,
                    c.sent
                );
                tally.refused += 1;
                true
            } else {
                assert!(expected.starts_with(&c.got) || busy.as_bytes().starts_with(&c.got));
                false
            };
            if done {
                net.client(c.handle).close();
                closing.push(c.handle);
                *c = start(net, &mut n);
            }
        }
        closing.retain(|&h| {
            let done = matches!(net.client(h).state(), State::Closed | State::TimeWait);
            if done {
                net.client_host.sockets.remove(h);
            }
            !done
        });
    }
    tally
}

/// As many churning clients as places, each closing right after its
/// answer and connecting again at once: never told busy, never refused.
#[test]
fn churn_of_as_many_clients_as_places_is_never_refused() {
    let mut net: Net<Reverse, 12> =
        Net::new(Config::default(), Reverse::default(), Setup::default());
    assert_eq!(net.server.clients(), 8);
    let tally = churn(&mut net, 8, 4000, |_| {});
    println!("churn: {tally:?}, {}", net.server.stats());
    assert_eq!((tally.busy, tally.refused), (0, 0), "{tally:?}");
    assert_eq!(net.server.stats().refused_busy, 0);
}

/// The same over a link that loses 5% of the frames each way. A client
/// whose FIN is lost still holds its place until the FIN is resent; its
/// next connection waits for that place (up to the queue wait) instead of
/// being told busy: none is. With only 4 spare sockets for 8 clients, all
/// of them can hold waiting or closing connections at once; a new SYN then
/// takes a half-open handshake, which resets a client whose last ACK and
/// first request were both lost (0.05², while no other socket can go):
/// at most 1 in 100.
#[test]
fn churn_over_a_lossy_link_waits_instead_of_being_refused() {
    let setup = Setup {
        drop_pct: 5,
        seed: 3,
        ..Setup::default()
    };
    let config = Config {
        queue_wait: Duration::from_secs(10),
        ..Config::default()
    };
    let mut net: Net<Reverse, 12> = Net::new(config, Reverse::default(), setup);
    let tally = churn(&mut net, 8, 1000, |_| {});
    let s = *net.server.stats();
    println!("lossy churn: {tally:?}, {s}");
    assert_eq!(tally.busy, 0, "{tally:?}");
    assert!(tally.refused * 100 <= tally.cycles, "{tally:?}");
}

/// A client whose FIN is lost, and who connects again at once: the new
/// connection waits for the old one's place, and is served once the
/// retransmitted FIN arrives.
#[test]
fn a_lost_fin_costs_the_next_connection_a_wait_not_a_refusal() {
    let config = Config {
        clients: Some(1),
        ..Config::default()
    };
    let mut net: Net<Reverse, 2> = Net::new(config, Reverse::default(), Setup::default());
    let first = served(&mut net, "first");
    let port = local_port(&mut net, first);
    let mut dropped = false;
    net.in_flight
        .set_filter(move |dir, frame| match tcp_segment(frame) {
            Some(s) if dir == Dir::ToServer && s.src_port == port && s.fin && !dropped => {
                dropped = true;
                false
            }
            _ => true,
        });
    net.client(first).close();
    let next = net.connect();
    net.send(next, b"second\n");
    assert!(net.run_until(Duration::from_millis(100), |n| roles(n)
        .contains(&Role::Queued)));
    assert_eq!(net.receive(next, 7, Duration::from_secs(2)), b"dnoces\n");
    let s = *net.server.stats();
    assert_eq!((s.refused_busy, s.queued_then_served), (0, 1), "{s}");
}

/// A SYN flood from an address that never answers, 10,000 SYNs per second
/// of simulated time, while 12 clients stay connected and 4 churn: every
/// churn cycle is served, the held clients keep getting answers, and the
/// flood's handshakes are what is taken back.
#[test]
fn syn_flood_leaves_the_service_standing() {
    let config = Config {
        clients: Some(16),
        ..Config::default()
    };
    let mut net: Net<Reverse, 24> = Net::new(config, Reverse::default(), Setup::default());
    let held: Vec<_> = (0..12)
        .map(|i| served(&mut net, &format!("held {i}")))
        .collect();
    let mut rng = Rng::new(11);
    let mut floods = 0u64;
    let mut round = 0u64;
    let mut expected = vec![Vec::new(); held.len()];
    let tally = churn(&mut net, 4, 2000, |net| {
        for _ in 0..10 {
            let port = 1024 + rng.below(60000) as u16;
            net.in_flight
                .inject(Dir::ToServer, spoofed_syn(port, rng.next() as u32));
            floods += 1;
        }
        round += 1;
        if round.is_multiple_of(50) {
            let i = (round / 50) as usize % held.len();
            let line = format!("held {i} round {round}");
            net.send(held[i], format!("{line}\n").as_bytes());
            expected[i].extend(rev_line(&line));
        }
    });
    let s = *net.server.stats();
    println!("flood: {floods} SYNs, churn {tally:?}, {s}");
    assert_eq!((tally.busy, tally.refused), (0, 0), "{tally:?}");
    assert!(s.reclaimed_half_open > floods / 2, "{s}");
    for (i, &h) in held.iter().enumerate() {
        let got = net.receive(h, expected[i].len(), Duration::from_secs(10));
        assert_eq!(got, expected[i], "held client {i} during the flood");
        let line = format!("held {i} still");
        assert_eq!(
            net.exchange(h, format!("{line}\n").as_bytes(), line.len() + 1),
            rev_line(&line)
        );
    }
}

/// A connection that waits for a place and is reset by its peer gives its
/// socket back at the next walk (it listens again), and is counted as
/// reset while queued, not as refused busy: nothing was sent to it.
#[test]
fn a_queued_connection_reset_by_its_peer_frees_its_socket_at_once() {
    let config = Config {
        clients: Some(1),
        spare: Some(1),
        queue_wait: Duration::from_secs(10),
        ..Config::default()
    };
    let mut net: Net<Reverse, 2> = Net::new(config, Reverse::default(), Setup::default());
    let _served = served(&mut net, "first");
    let waiting = net.connect();
    assert!(net.run_until(Duration::from_millis(100), |n| roles(n)
        == [Role::Serving, Role::Queued]));

    net.client(waiting).abort();
    // The reset crosses the wire and the next walk sees it: well within
    // one poll step of virtual time.
    net.run_for(Duration::from_millis(10));
    assert_eq!(roles(&net), [Role::Serving, Role::Listening]);
    assert_eq!(net.server_states()[1], State::Listen);
    let s = *net.server.stats();
    assert_eq!((s.queued, s.queued_reset, s.refused_busy), (0, 1, 0), "{s}");

    // The socket serves the next waiting client; past the queue wait it is
    // told busy, and only it.
    let next = net.connect();
    assert!(net.run_until(Duration::from_millis(100), |n| roles(n)
        == [Role::Serving, Role::Queued]));
    let busy = b"busy: all 1 slots are in use, try again later\n";
    assert_eq!(net.receive(next, busy.len(), Duration::from_secs(11)), busy);
    let s = *net.server.stats();
    assert_eq!(
        (s.queued_reset, s.refused_busy, s.accepted),
        (1, 1, 1),
        "{s}"
    );
}

/// Only a SYN the stack itself would take may take a socket back: one with
/// a bad TCP checksum, one for another address on the subnet and one for
/// another MAC address, each sent while no socket listens, take nothing
/// back and leave the half-open handshake that holds the last socket as it
/// was; a valid SYN then takes it back.
#[test]
fn only_a_syn_the_stack_would_take_takes_a_socket_back() {
    let config = Config {
        clients: Some(2),
        spare: Some(1),
        queue_wait: Duration::ZERO,
        ..Config::default()
    };
    let mut net: Net<Reverse, 3> = Net::new(config, Reverse::default(), Setup::default());
    let _a = served(&mut net, "first");
    let _b = served(&mut net, "second");
    net.in_flight.inject(Dir::ToServer, spoofed_syn(40001, 1));
    tick(&mut net);
    assert_eq!(roles(&net), [Role::Serving, Role::Serving, Role::HalfOpen]);
    let peer = |net: &Net<Reverse, 3>| {
        let (handle, _) = net.server.slots().nth(2).expect("three slots");
        net.server_host
            .sockets
            .get::<smoltcp::socket::tcp::Socket>(handle)
            .remote_endpoint()
    };
    let held = peer(&net);
    assert_eq!(held.map(|e| e.port), Some(40001));

    let mut bad_checksum = spoofed_syn(40002, 2);
    // The TCP checksum: after the Ethernet (14) and IPv4 (20) headers, at
    // offset 16 of the TCP header.
    bad_checksum[14 + 20 + 16] ^= 0xff;
    let foreign_ip = syn_frame(
        SERVER_MAC,
        Ipv4Address::new(192, 168, 69, 2),
        PORT,
        40003,
        3,
    );
    let foreign_mac = syn_frame(
        EthernetAddress([0x02, 0, 0, 0, 0, 0x33]),
        SERVER_IP,
        PORT,
        40004,
        4,
    );
    for (what, frame) in [
        ("a bad TCP checksum", bad_checksum),
        ("another IP address", foreign_ip),
        ("another MAC address", foreign_mac),
    ] {
        net.in_flight.inject(Dir::ToServer, frame);
        tick(&mut net);
        let s = *net.server.stats();
        assert_eq!(
            (s.reclaimed_half_open, s.reclaimed_lingering, s.syn_dropped),
            (0, 0, 0),
            "a SYN with {what}: {s}"
        );
        assert_eq!(
            roles(&net),
            [Role::Serving, Role::Serving, Role::HalfOpen],
            "a SYN with {what}"
        );
        assert_eq!(peer(&net), held, "a SYN with {what}");
    }

    net.in_flight.inject(Dir::ToServer, spoofed_syn(40005, 5));
    tick(&mut net);
    assert_eq!(net.server.stats().reclaimed_half_open, 1);
    assert_eq!(peer(&net).map(|e| e.port), Some(40005));
}
