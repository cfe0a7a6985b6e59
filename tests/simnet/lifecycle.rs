//! How connections end, and that every slot comes back.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

use multiserve::Role;
use multiserve::{Config, Reverse};

use crate::net::{Net, Setup};

type TestNet = Net<Reverse, 2>;

fn check_slot_serves_again(net: &mut TestNet) {
    assert!(
        net.run_until(Duration::from_secs(30), |n| n.all_listening()),
        "slots did not return to LISTEN: {:?}",
        net.server_states()
    );
    let c = net.connect();
    assert_eq!(net.exchange(c, b"again\n", 6), b"niaga\n");
}

#[test]
fn peer_half_close_gets_answers_then_fin() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let c = net.connect();
    net.send(c, b"first\nsecond\n");
    net.client(c).close(); // FIN right behind the data
    let got = net.receive(c, 13, Duration::from_secs(10));
    assert_eq!(got, b"tsrif\ndnoces\n");
    // The server closes its side once everything is answered: no slot
    // stuck in CLOSE-WAIT.
    assert!(net.run_until(Duration::from_secs(10), |n| {
        matches!(n.client(c).state(), State::TimeWait | State::Closed)
    }));
    let stats = *net.server.stats();
    assert_eq!((stats.closed_by_peer, stats.active), (1, 0));
    check_slot_serves_again(&mut net);
}

#[test]
fn peer_reset_frees_the_slot() {
    let mut net: TestNet = Net::new(Config::default(), Reverse::default(), Setup::default());
    let c = net.connect();
    assert_eq!(net.exchange(c, b"ab\n", 3), b"ba\n");
    net.client(c).abort();
    assert!(net.run_until(Duration::from_secs(5), |n| n.server.stats().reset == 1));
    assert_eq!(net.server.stats().active, 0);
    assert_eq!(net.phases()[0], Role::Listening);
    check_slot_serves_again(&mut net);
}

/// A server that closes a connection after 2 s of nothing.
fn closing_after_two_idle_seconds() -> TestNet {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(2)),
        ..Config::default()
    };
    Net::new(config, Reverse::default(), Setup::default())
}

/// A client served one line and then left idle until the server's FIN is
/// in (CLOSE-WAIT): the client, and how long after its answer that took.
fn served_until_the_server_closes(net: &mut TestNet) -> (SocketHandle, Duration) {
    let c = net.connect();
    assert_eq!(net.exchange(c, b"x\n", 2), b"x\n");
    let start = net.now;
    assert!(
        net.run_until(Duration::from_secs(10), |n| n.client(c).state()
            == State::CloseWait)
    );
    (c, net.now - start)
}

#[test]
fn idle_connection_is_closed_after_the_timeout() {
    let mut net = closing_after_two_idle_seconds();
    // The server sends FIN after 2 s of nothing.
    let (c, waited) = served_until_the_server_closes(&mut net);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "closed after {waited}"
    );
    assert_eq!(net.server.stats().timed_out, 1);
    net.client(c).close();
    check_slot_serves_again(&mut net);
}

#[test]
fn vanished_peer_frees_the_slot_after_idle_and_close_timeouts() {
    let config = Config {
        idle_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut net: TestNet = Net::new(config, Reverse::default(), Setup::default());
    let c = net.connect();
    assert_eq!(net.exchange(c, b"bye\n", 4), b"eyb\n");
    // The client's host disappears without a word: nothing reaches it,
    // nothing leaves it.
    net.client_host.device.set_drop_chance(100);
    let start = net.now;
    assert!(net.run_until(Duration::from_secs(60), |n| n.phases()[0]
        == Role::Listening));
    let waited = net.now - start;
    // idle timeout + close timeout (the FIN is never acknowledged).
    assert!(waited <= Duration::from_secs(5 + 5 + 1), "took {waited}");
    let stats = *net.server.stats();
    assert_eq!(
        (stats.timed_out, stats.close_aborted, stats.active),
        (1, 1, 0)
    );
    net.client_host.device.set_drop_chance(0);
    check_slot_serves_again(&mut net);
}

/// A connection the server closes first (here by the idle timeout) ends in
/// order when the client closes too: the server's socket in TIME-WAIT
/// acknowledges the client's FIN before it listens again, so the client
/// is closed within a round trip and never sees a reset.
#[test]
fn a_connection_the_server_closed_first_ends_in_order() {
    let mut net = closing_after_two_idle_seconds();
    let resets = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let seen = resets.clone();
    net.in_flight.set_filter(move |_, frame| {
        if crate::wire::tcp_segment(frame).is_some_and(|s| s.rst) {
            seen.set(seen.get() + 1);
        }
        true
    });
    let (c, _) = served_until_the_server_closes(&mut net);
    net.client(c).close();
    // The client's FIN and the server's ACK: one round trip on this wire,
    // plus the server's delayed-ACK time.
    let limit = Duration::from_millis(100);
    assert!(
        net.run_until(limit, |n| n.client(c).state() == State::Closed),
        "the client is still in {} {limit} after its FIN",
        net.client(c).state()
    );
    assert_eq!(resets.get(), 0, "a reset ended the connection");
    assert_eq!(net.server.stats().close_aborted, 0);
    check_slot_serves_again(&mut net);
}

/// A caller that polls the interface itself and then walks the server
/// (`Server::walk`), as one with its own loop does: a burst of SYNs taken
/// by many listening sockets in one poll of the interface, each noted
/// before the walk, so every client is served and answered.
#[test]
fn a_caller_polling_the_interface_itself_serves_a_burst() {
    let mut net: Net<Reverse, 24> = Net::new(
        Config {
            clients: Some(16),
            ..Config::default()
        },
        Reverse::default(),
        Setup::default(),
    );
    net.own_poll = true;
    let (rx, tx) = (net.setup.client_rx, net.setup.client_tx);
    // Every SYN is on the wire before the server's next poll.
    let clients: Vec<SocketHandle> = (0..12)
        .map(|_| net.connect_to(crate::net::PORT, rx, tx))
        .collect();
    assert!(
        net.run_until(Duration::from_secs(10), |n| clients
            .iter()
            .all(|&c| n.client(c).state() == State::Established)),
        "every client connects at its first SYN"
    );
    for (i, &c) in clients.iter().enumerate() {
        let line = format!("client {i}\n");
        let answer: Vec<u8> = line.trim_end().bytes().rev().chain(*b"\n").collect();
        assert_eq!(
            net.exchange(c, line.as_bytes(), answer.len()),
            answer,
            "client {i}"
        );
    }
    let stats = *net.server.stats();
    assert_eq!(
        (stats.answered, stats.peak_active, stats.refused_busy),
        (12, 12, 0)
    );
}
