//! Lost SYN-ACKs, duplicate SYNs and half-open connections: every slot
//! comes back, and no client is hurt by what the server drops.

use std::cell::RefCell;
use std::rc::Rc;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::time::{Duration, Instant};

use multiserve::Role;
use multiserve::{Config, Reverse};

use crate::net::{Net, Setup};
use crate::wire::{tcp_segment, Dir};

type TestNet = Net<Reverse, 4>;

/// What the wire saw going to one client port.
#[derive(Default, Debug)]
struct Seen {
    syn_acks: Vec<u32>,
    syn_acks_dropped: usize,
    resets: usize,
}

fn local_port(net: &mut TestNet, h: SocketHandle) -> u16 {
    net.client(h).local_endpoint().expect("connecting").port
}

/// Drop SYN-ACKs to `port` while `drop(n, isn, first_isn)` says so (`n`:
/// how many SYN-ACKs to that port were seen before this one), and count
/// resets to it.
fn watch(
    net: &TestNet,
    port: u16,
    mut drop: impl FnMut(usize, u32, u32) -> bool + 'static,
) -> Rc<RefCell<Seen>> {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let s = seen.clone();
    net.in_flight.set_filter(move |dir, frame| {
        let Some(seg) = tcp_segment(frame) else {
            return true;
        };
        if dir != Dir::ToClient || seg.dst_port != port {
            return true;
        }
        let mut s = s.borrow_mut();
        if seg.rst {
            s.resets += 1;
        }
        if seg.syn && seg.ack {
            let n = s.syn_acks.len();
            let first = s.syn_acks.first().copied().unwrap_or(seg.seq);
            s.syn_acks.push(seg.seq);
            if drop(n, seg.seq, first) {
                s.syn_acks_dropped += 1;
                return false;
            }
        }
        true
    });
    seen
}

fn count_state(net: &TestNet, state: State) -> usize {
    net.server_states().iter().filter(|s| **s == state).count()
}

fn serving(net: &TestNet) -> usize {
    net.phases()
        .iter()
        .filter(|p| matches!(p, Role::Serving))
        .count()
}

/// Run until `h` is established, noting the most slots ever in
/// SYN-RECEIVED at once.
fn establish(net: &mut TestNet, h: SocketHandle, limit: Duration) -> (bool, usize) {
    let mut most = 0;
    let ok = net.run_until(limit, |n| {
        most = most.max(count_state(n, State::SynReceived));
        n.client(h).state() == State::Established
    });
    (ok, most)
}

/// The first SYN-ACK is lost. The client's retransmitted SYN reaches the
/// socket that already holds its handshake (smoltcp gives a segment to the
/// first socket whose 4-tuple matches) and is ignored there; the server's
/// own SYN-ACK retransmission completes the handshake. One slot, no reset.
#[test]
fn lost_first_syn_ack_costs_one_retransmission_and_no_second_slot() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let c = net.connect_with(4096, 4096);
    let port = local_port(&mut net, c);
    let seen = watch(&net, port, |n, _, _| n == 0);
    let start = net.now;
    let (ok, most_syn_received) = establish(&mut net, c, Duration::from_secs(10));
    assert!(ok, "client never connected: {}", net.client(c).state());
    let took = net.now - start;
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_millis(1100),
        "connected after {took}: one retransmission timeout expected"
    );
    assert!(net.run_until(Duration::from_secs(1), |n| serving(n) == 1));
    assert_eq!(most_syn_received, 1, "a second slot took the handshake");
    assert_eq!(net.exchange(c, b"lost syn-ack\n", 13), b"kca-nys tsol\n");
    assert!(matches!(net.phases()[0], Role::Serving));
    assert_eq!(&net.phases()[1..], &[Role::Listening; 3]);
    assert_eq!(&net.server_states()[1..], &[State::Listen; 3]);
    let stats = *net.server.stats();
    assert_eq!((stats.accepted, stats.half_open_dropped), (1, 0));
    let seen = seen.borrow();
    assert_eq!((seen.syn_acks.len(), seen.syn_acks_dropped), (2, 1));
    assert_eq!(
        seen.syn_acks[0], seen.syn_acks[1],
        "a different socket answered"
    );
    assert_eq!(seen.resets, 0);
}

/// Client A holds slot 0; client B's SYN lands on slot 1 and both its
/// SYN-ACKs (the first and the retransmission) are lost. Meanwhile A leaves,
/// so slot 0 listens again, and B's retransmitted SYN reaches slot 0: two
/// slots hold B's handshake. The newer one (slot 0) is dropped in the same
/// poll, before it sends a SYN-ACK, and B connects to slot 1 when that
/// slot's next SYN-ACK gets through.
#[test]
fn duplicate_syn_on_a_freed_slot_is_dropped_before_it_answers() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let a = net.connect();
    assert_eq!(net.exchange(a, b"a\n", 2), b"a\n");
    let b = net.connect_with(4096, 4096);
    let port = local_port(&mut net, b);
    let seen = watch(&net, port, |n, _, _| n < 2);
    net.run_for(Duration::from_millis(100));
    assert!(matches!(net.phases()[1], Role::HalfOpen));
    net.client(a).abort();
    assert!(net.run_until(Duration::from_millis(500), |n| n.phases()[0]
        == Role::Listening));

    let (ok, most_syn_received) = establish(&mut net, b, Duration::from_secs(10));
    assert!(ok, "client never connected: {}", net.client(b).state());
    // Between polls no second slot is ever seen in SYN-RECEIVED...
    assert_eq!(most_syn_received, 1);
    // ...but the duplicate did reach slot 0, and was dropped.
    assert_eq!(net.server.stats().half_open_dropped, 1);
    assert!(net.run_until(Duration::from_millis(10), |n| serving(n) == 1));
    assert!(matches!(net.phases()[1], Role::Serving));
    assert_eq!(net.phases()[0], Role::Listening);
    assert_eq!(&net.server_states()[2..], &[State::Listen; 2]);
    assert_eq!(net.server_states()[0], State::Listen);

    assert_eq!(net.exchange(b, b"twice\n", 6), b"eciwt\n");
    // Long after any handshake timeout: still served, never reset.
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.exchange(b, b"later\n", 6), b"retal\n");
    let stats = *net.server.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.reset,
            stats.half_open_dropped,
            stats.active
        ),
        (2, 1, 1, 1)
    );
    let seen = seen.borrow();
    assert_eq!(seen.resets, 0, "the dropped duplicate reset the client");
    assert_eq!(seen.syn_acks_dropped, 2);
    // Only slot 1 ever answered B: one server sequence number.
    assert!(
        seen.syn_acks.iter().all(|&isn| isn == seen.syn_acks[0]),
        "{:?}",
        seen.syn_acks
    );
    assert_eq!(net.client(b).state(), State::Established);
}

/// A client sends its SYN and its host vanishes: nothing more comes from
/// it. The slot returns to LISTEN after the handshake timeout.
#[test]
fn syn_and_nothing_more_frees_the_slot_after_the_handshake_timeout() {
    let config = Config {
        handshake_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut net: TestNet = Net::new(config, Reverse::default(), Setup::default());
    let c = net.connect_with(4096, 4096);
    let port = local_port(&mut net, c);
    let mut syn_passed = false;
    net.in_flight.set_filter(move |dir, frame| {
        match tcp_segment(frame) {
            Some(seg) if dir == Dir::ToServer && seg.src_port == port => {
                // The first SYN passes, nothing after it.
                let pass = !syn_passed && seg.syn;
                syn_passed |= pass;
                pass
            }
            _ => true,
        }
    });
    let start = net.now;
    assert!(net.run_until(Duration::from_millis(10), |n| matches!(
        n.phases()[0],
        Role::HalfOpen
    )));
    assert!(
        net.run_until(Duration::from_secs(30), |n| n.phases()[0]
            == Role::Listening),
        "slot stuck: {:?}",
        net.server_states()
    );
    let waited = net.now - start;
    assert!(
        waited >= Duration::from_secs(3) && waited <= Duration::from_millis(3010),
        "freed after {waited}"
    );
    assert!(net.all_listening());
    let stats = *net.server.stats();
    assert_eq!(
        (stats.accepted, stats.half_open_dropped, stats.active),
        (0, 1, 0)
    );
    // The slot serves the next client.
    net.client(c).abort();
    net.in_flight.clear_filter();
    let d = net.connect();
    assert_eq!(net.exchange(d, b"next\n", 5), b"txen\n");
}

/// A client vanishes in the middle of a connection, in each of three
/// moments: with nothing pending, with half a line sent, with an answer
/// unacknowledged. The slot comes back within idle + close timeout.
#[test]
fn client_vanishing_mid_connection_frees_the_slot_within_the_bound() {
    let idle = Duration::from_secs(4);
    let close = Duration::from_secs(2);
    let config = Config {
        idle_timeout: Some(idle),
        close_timeout: close,
        ..Config::default()
    };
    for moment in 0..3 {
        let mut net: TestNet = Net::new(config, Reverse::default(), Setup::default());
        let c = net.connect();
        assert_eq!(net.exchange(c, b"hi\n", 3), b"ih\n");
        let port = local_port(&mut net, c);
        match moment {
            0 => {}
            1 => {
                net.send(c, b"half a li");
                net.run_for(Duration::from_millis(50));
            }
            _ => {}
        }
        // From now on, nothing reaches the client and nothing leaves it.
        let answer_unacked = moment == 2;
        net.in_flight.set_filter(move |_, frame| {
            tcp_segment(frame).is_none_or(|s| s.src_port != port && s.dst_port != port)
        });
        if answer_unacked {
            net.send(c, b"lost answer\n");
        }
        let start: Instant = net.now;
        assert!(
            net.run_until(Duration::from_secs(60), |n| n.phases()[0]
                == Role::Listening),
            "moment {moment}: slot stuck: {:?}",
            net.server_states()
        );
        let waited = net.now - start;
        assert!(
            waited <= idle + close + Duration::from_millis(10),
            "moment {moment}: freed after {waited}"
        );
        assert!(net.all_listening());
        let stats = *net.server.stats();
        assert_eq!(
            (stats.timed_out, stats.close_aborted, stats.active),
            (1, 1, 0),
            "moment {moment}"
        );
    }
}
/// As above, but this time every SYN-ACK of the second slot to take the
/// SYN is lost, so the client completes the handshake with the *first*
/// slot's SYN-ACK. Its ACK must reach that slot and not be answered with a
/// reset by the newer duplicate.
#[test]
fn duplicate_syn_never_resets_a_client_that_synchronised_with_the_first_slot() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let a = net.connect();
    let b = net.connect_with(4096, 4096);
    let port = local_port(&mut net, b);
    // The first two SYN-ACKs (slot 1's) lost, then any from another socket.
    let seen = watch(&net, port, |n, isn, first| n < 2 || isn != first);
    net.run_for(Duration::from_millis(100));
    net.client(a).abort();
    assert!(net.run_until(Duration::from_millis(500), |n| n.phases()[0]
        == Role::Listening));

    let (ok, _) = establish(&mut net, b, Duration::from_secs(20));
    assert!(ok, "client never connected: {}", net.client(b).state());
    assert!(net.run_until(Duration::from_secs(1), |n| serving(n) == 1
        && count_state(n, State::Listen) == 3));
    assert_eq!(net.exchange(b, b"first\n", 6), b"tsrif\n");
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.exchange(b, b"still\n", 6), b"llits\n");
    assert_eq!(seen.borrow().resets, 0, "the client was reset");
    assert_eq!(net.client(b).state(), State::Established);
    let stats = *net.server.stats();
    assert_eq!((stats.accepted, stats.active), (2, 1));
}

/// The hardest order: the client's retransmitted SYN reaches a freed lower
/// slot, and in the same batch of frames comes the client's ACK to the
/// first slot's (retransmitted) SYN-ACK. smoltcp hands that ACK to the
/// first socket whose 4-tuple matches, the lower slot, which would answer
/// it with a reset before any walk of the pool. The server watches the
/// first listening slot between frames and drops the duplicate at once.
#[test]
fn retransmitted_syn_and_ack_in_one_batch_never_reset_the_client() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let a = net.connect();
    let b = net.connect_with(4096, 4096);
    let port = local_port(&mut net, b);
    // The first two SYN-ACKs lost: the client retransmits its SYN in between.
    let seen = watch(&net, port, |n, _, _| n < 2);
    // Hold the client's retransmitted SYN back, and put it on the wire
    // right before the client's next pure ACK: both reach the server in
    // one batch, SYN first.
    let held: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let injected = Rc::new(RefCell::new(false));
    let wire = net.in_flight.clone();
    let (h, inj) = (held.clone(), injected.clone());
    let watcher = net.in_flight.take_filter();
    let mut watcher = watcher.expect("the SYN-ACK watcher");
    let mut syns = 0;
    net.in_flight.set_filter(move |dir, frame| {
        if let (Dir::ToServer, Some(seg)) = (dir, tcp_segment(frame)) {
            if seg.src_port == port && seg.syn {
                syns += 1;
            }
            if seg.src_port == port && seg.syn && syns > 1 && !*inj.borrow() {
                *h.borrow_mut() = Some(frame.to_vec());
                return false;
            }
            if seg.src_port == port && seg.ack && !seg.syn {
                if let Some(syn) = h.borrow_mut().take() {
                    wire.inject(Dir::ToServer, syn);
                    *inj.borrow_mut() = true;
                }
            }
        }
        watcher(dir, frame)
    });
    net.run_for(Duration::from_millis(100));
    net.client(a).abort();
    assert!(net.run_until(Duration::from_millis(500), |n| n.phases()[0]
        == Role::Listening));

    let (ok, _) = establish(&mut net, b, Duration::from_secs(20));
    assert!(
        *injected.borrow(),
        "premise: the held SYN went out with the ACK"
    );
    assert!(ok, "client never connected: {}", net.client(b).state());
    assert_eq!(net.exchange(b, b"one batch\n", 10), b"hctab eno\n");
    net.run_for(Duration::from_secs(15));
    assert_eq!(seen.borrow().resets, 0, "the client was reset");
    assert_eq!(net.client(b).state(), State::Established);
    assert_eq!(net.server.stats().half_open_dropped, 1);
    assert!(net.run_until(Duration::from_secs(1), |n| serving(n) == 1
        && count_state(n, State::Listen) == 3));
}
