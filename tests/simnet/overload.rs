//! Many more connection attempts than slots, again and again: the served
//! clients keep being served, every extra attempt is told (busy line) or
//! refused (reset), and nothing leaks.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::State;
use smoltcp::time::Duration;

use multiserve::{Config, FullPolicy, Reverse};

use crate::net::{rev_line, Net, Setup};

type TestNet = Net<Reverse, 8>;

const CLIENTS: usize = 4;
const ROUNDS: usize = 6;
const BURST: usize = 12;
const ONE_BY_ONE: usize = 3;
const BUSY: &[u8] = b"busy: all 4 slots are in use, try again later\n";

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The busy line, exactly, then the server's FIN.
    Busy,
    /// Reset without a byte.
    Refused,
}

/// Wait until an extra client's attempt is over and say how it ended. A
/// burst of SYNs in one batch of frames keeps only the newest handshakes
/// (a socket must always listen, so older ones are dropped silently, as a
/// full SYN queue drops them): the others' SYNs are retransmitted with
/// back-off until they get a socket, so an attempt may take minutes.
fn outcome(net: &mut TestNet, h: SocketHandle) -> Outcome {
    let mut got = Vec::new();
    let done = net.run_until(Duration::from_secs(600), |n| {
        got.extend(n.take(h));
        let s = n.client(h).state();
        s == State::Closed || (s == State::CloseWait && n.client(h).recv_queue() == 0)
    });
    got.extend(net.take(h));
    assert!(
        done,
        "extra client stuck in {} (local {:?}); server: {:?} {:?} {}",
        net.client(h).state(),
        net.client(h).local_endpoint(),
        net.phases(),
        net.server_states(),
        net.server.stats()
    );
    match net.client(h).state() {
        // The busy line, then our FIN; or then a reset, when the client did
        // not close within the close timeout and the socket was aborted.
        State::CloseWait | State::Closed if got == BUSY => Outcome::Busy,
        State::Closed if got.is_empty() => Outcome::Refused,
        s => panic!(
            "extra client ended in {s} with {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
}

fn dismiss(net: &mut TestNet, h: SocketHandle) {
    net.client(h).close();
    net.run_until(Duration::from_secs(5), |n| {
        matches!(n.client(h).state(), State::Closed | State::TimeWait)
    });
    net.client_host.sockets.remove(h);
}

fn overload(policy: FullPolicy) {
    let config = Config {
        clients: Some(CLIENTS),
        when_full: policy,
        queue_wait: Duration::ZERO,
        // The bursts take minutes of simulated time (see `outcome`); the
        // regular clients stay connected throughout.
        idle_timeout: None,
        ..Config::default()
    };
    let mut net: TestNet = Net::new(config, Reverse::default(), Setup::default());
    let regulars: Vec<_> = (0..CLIENTS).map(|_| net.connect()).collect();
    let (mut busy, mut refused) = (0u64, 0u64);
    let mut count = |o: Outcome| match o {
        Outcome::Busy => busy += 1,
        Outcome::Refused => refused += 1,
    };
    for round in 0..ROUNDS {
        // A burst of attempts at once...
        let burst: Vec<_> = (0..BURST).map(|_| net.connect_with(1024, 1024)).collect();
        let outcomes: Vec<_> = burst.iter().map(|&h| outcome(&mut net, h)).collect();
        if policy == FullPolicy::Busy {
            // The spare sockets tell some; the rest are refused while
            // every spare socket is busy telling.
            assert!(
                outcomes.contains(&Outcome::Busy),
                "round {round}: no busy line"
            );
        } else {
            assert!(outcomes.iter().all(|o| *o == Outcome::Refused));
        }
        outcomes.into_iter().for_each(&mut count);
        for h in burst {
            dismiss(&mut net, h);
        }
        // ...then some one after the other: each is told (or refused).
        for _ in 0..ONE_BY_ONE {
            let h = net.connect_with(1024, 1024);
            let o = outcome(&mut net, h);
            let expected = match policy {
                FullPolicy::Busy => Outcome::Busy,
                FullPolicy::Reset => Outcome::Refused,
            };
            assert_eq!(o, expected, "round {round}");
            count(o);
            dismiss(&mut net, h);
        }
        // The served clients never noticed.
        for (i, &c) in regulars.iter().enumerate() {
            let line = format!("round {round} regular {i}");
            let got = net.exchange(c, format!("{line}\n").as_bytes(), line.len() + 1);
            assert_eq!(got, rev_line(&line));
        }
    }
    let attempts = (ROUNDS * (BURST + ONE_BY_ONE)) as u64;
    assert_eq!(busy + refused, attempts);
    println!("{policy:?}: {attempts} extra attempts, {busy} told busy, {refused} refused");

    for &c in &regulars {
        net.client(c).close();
    }
    assert!(
        net.run_until(Duration::from_secs(30), |n| n.all_listening()),
        "{:?}",
        net.server_states()
    );
    let in_use = CLIENTS + net.server.spare();
    assert!(net.server_states()[in_use..]
        .iter()
        .all(|s| *s == State::Closed));
    let s = *net.server.stats();
    assert_eq!(s.refused_busy, busy);
    assert_eq!(
        (s.accepted, s.closed_by_peer, s.active, s.answered),
        (CLIENTS as u64, CLIENTS as u64, 0, (ROUNDS * CLIENTS) as u64)
    );
    assert_eq!(s.accepted, s.ended() + u64::from(s.active));
    assert_eq!(u64::from(s.peak_active), CLIENTS as u64);
    assert_eq!(s.lingering, 0, "a socket still closing");
}

#[test]
fn overload_with_busy_policy_tells_or_refuses_every_extra_attempt() {
    overload(FullPolicy::Busy);
}

#[test]
fn overload_with_reset_policy_refuses_every_extra_attempt() {
    overload(FullPolicy::Reset);
}
