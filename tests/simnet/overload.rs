//! Many more connection attempts than slots, again and again: the served
//! clients keep being served, every extra attempt gets what the policy
//! promises (the busy line, or a reset) within the rounds of SYN
//! retransmissions the spare sockets need for it, and nothing leaks.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The busy line, exactly, then the server's FIN (and a reset, when the
    /// client did not close within the close timeout).
    Busy,
    /// Reset without a byte.
    Refused,
}

/// When a smoltcp client sends its SYN for the `round`-th time (round 0:
/// the first SYN), counted from the first: its retransmission timeout
/// starts at 1 s and doubles with each retransmission, at most 60 s apart:
/// 0, 1, 3, 7, 15, 31 s.
fn syn_round_at(round: usize) -> Duration {
    let mut at = Duration::ZERO;
    let mut timeout = Duration::from_secs(1);
    for _ in 0..round {
        at += timeout;
        timeout = (timeout * 2).min(Duration::from_secs(60));
    }
    at
}

/// How long an attempt takes once its SYN finds a socket: the SYN-ACK,
/// then the full-server answer (busy line and FIN, or the reset). The wire
/// has no delay and each answer leaves in the poll step of the segment it
/// answers; the client's own ACKs wait at most one ACK delay (1 ms).
const EXCHANGE: Duration = Duration::from_millis(1);

/// Rounds of the SYN retransmission schedule a burst of `attempts` needs
/// under `policy` on a server whose client places are all taken.
///
/// With the busy policy, only the `spare` sockets listen. The burst's SYNs
/// arrive in one batch of frames; a socket must always listen, so a socket
/// that took one of them is taken back for the next (its SYN-ACK not yet
/// sent: for the client it is a dropped SYN), and each batch leaves
/// `spare` handshakes. Those are answered at once (the busy line and FIN)
/// and their sockets can be taken back by the next batch: `spare` attempts
/// per round, and the others' SYNs come again together in the next round.
/// With the reset policy and no queue wait, no socket listens: every SYN
/// is refused by the stack in the first round.
fn rounds(policy: FullPolicy, attempts: usize, spare: usize) -> usize {
    match policy {
        FullPolicy::Busy => attempts.div_ceil(spare),
        FullPolicy::Reset => 1,
    }
}

/// Run until every one of `attempts` (extra clients whose SYNs were all
/// sent at once) is over, and say how each ended and how long after the
/// first SYN. Each attempt must be over within its round (see [`rounds`]):
/// the `k`-th to end, by `syn_round_at(k / per_round) + EXCHANGE`.
fn burst_outcomes(
    net: &mut TestNet,
    attempts: &[SocketHandle],
    policy: FullPolicy,
) -> Vec<(Outcome, Duration)> {
    let per_round = match policy {
        FullPolicy::Busy => net.server.spare(),
        FullPolicy::Reset => attempts.len(),
    };
    let last_round = rounds(policy, attempts.len(), net.server.spare()) - 1;
    let limit = syn_round_at(last_round) + EXCHANGE;
    let start = net.now;
    let mut got = vec![Vec::new(); attempts.len()];
    let mut ended: Vec<Option<Duration>> = vec![None; attempts.len()];
    let all_over = net.run_until(limit, |n| {
        for (i, &h) in attempts.iter().enumerate() {
            got[i].extend(n.take(h));
            let over = match n.client(h).state() {
                State::Closed => true,
                // The server's FIN, after whatever it sent.
                State::CloseWait => got[i] == BUSY,
                _ => false,
            };
            if over && ended[i].is_none() {
                ended[i] = Some(n.now - start);
            }
        }
        ended.iter().all(Option::is_some)
    });
    let states: Vec<_> = attempts.iter().map(|&h| net.client(h).state()).collect();
    assert!(
        all_over,
        "{policy:?}: attempts not over {limit} after their first SYN (round {last_round}): \
         {states:?}, ended {ended:?}; server: {:?} {}",
        net.phases(),
        net.server.stats()
    );
    let mut by_end: Vec<Duration> = ended.iter().flatten().copied().collect();
    by_end.sort();
    for (k, took) in by_end.iter().enumerate() {
        let bound = syn_round_at(k / per_round) + EXCHANGE;
        assert!(
            *took <= bound,
            "{policy:?}: attempt {k} to end took {took}, its round (of {per_round}) ends at \
             {bound}; all: {by_end:?}"
        );
    }
    attempts
        .iter()
        .zip(got)
        .zip(ended)
        .map(|((&h, got), ended)| {
            let state = net.client(h).state();
            let outcome = match state {
                // The busy line, then our FIN; or then a reset, when the
                // client did not close within the close timeout.
                State::CloseWait | State::Closed if got == BUSY => Outcome::Busy,
                State::Closed if got.is_empty() => Outcome::Refused,
                s => panic!(
                    "extra client ended in {s} with {:?}",
                    String::from_utf8_lossy(&got)
                ),
            };
            (outcome, ended.unwrap_or(limit))
        })
        .collect()
}

/// The one outcome `policy` promises every extra attempt while every
/// client place is taken. With the busy policy none may be refused: a SYN
/// that finds no socket is dropped (the client sends it again), never
/// answered with a reset, and a handshake is only taken back before its
/// SYN-ACK left (see [`rounds`]).
fn promised(policy: FullPolicy) -> Outcome {
    match policy {
        FullPolicy::Busy => Outcome::Busy,
        FullPolicy::Reset => Outcome::Refused,
    }
}

/// Leave: the client resets its connection (how a busy connection closes
/// is not this test's subject), and its socket is freed.
fn dismiss(net: &mut TestNet, h: SocketHandle) {
    net.client(h).abort();
    net.run_for(Duration::ZERO);
    net.client_host.sockets.remove(h);
}

fn overload(policy: FullPolicy) {
    let config = Config {
        clients: Some(CLIENTS),
        when_full: policy,
        queue_wait: Duration::ZERO,
        // The bursts take their rounds of SYN retransmissions (see
        // `rounds`); the regular clients stay connected throughout.
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
        // A burst of attempts at once: each gets what the policy promises,
        // within the rounds the spare sockets need for the burst.
        let burst: Vec<_> = (0..BURST).map(|_| net.connect_with(1024, 1024)).collect();
        let outcomes = burst_outcomes(&mut net, &burst, policy);
        let wrong: Vec<_> = outcomes
            .iter()
            .filter(|(o, _)| *o != promised(policy))
            .collect();
        assert!(wrong.is_empty(), "round {round}: {wrong:?} of {outcomes:?}");
        outcomes.iter().for_each(|(o, _)| count(*o));
        for h in burst {
            dismiss(&mut net, h);
        }
        // ...then some one after the other: each is answered in the first
        // round, its SYN never dropped.
        for _ in 0..ONE_BY_ONE {
            let h = net.connect_with(1024, 1024);
            let [(o, took)] = burst_outcomes(&mut net, &[h], policy)[..] else {
                unreachable!("one attempt, one outcome");
            };
            assert_eq!(o, promised(policy), "round {round}");
            assert!(took <= EXCHANGE, "round {round}: one attempt took {took}");
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
fn overload_with_busy_policy_tells_every_extra_attempt_within_its_rounds() {
    overload(FullPolicy::Busy);
}

#[test]
fn overload_with_reset_policy_refuses_every_extra_attempt_at_once() {
    overload(FullPolicy::Reset);
}
