//! Slow and hostile clients cost a bounded amount, and cost another client
//! nothing: its round-trip times (virtual) are exactly those of a run
//! without them.

use smoltcp::socket::tcp::State;
use smoltcp::time::{Duration, Instant};

use multiserve::Role;
use multiserve::{Config, Reverse};

use crate::net::{rev_line, Net, Setup};

type TestNet = Net<Reverse, 8>;

const IDLE: Duration = Duration::from_secs(10);
const CLOSE: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(250);
const TICKS: u64 = 160; // 40 s

fn config() -> Config {
    Config {
        idle_timeout: Some(IDLE),
        close_timeout: CLOSE,
        ..Config::default()
    }
}

/// What happened to the hostile clients.
#[derive(Default, Debug)]
struct Hostile {
    /// Answers the never-reading client could have had (never read).
    hog_sent: usize,
    slowloris_bytes: usize,
    slowloris_closed_at: Option<Instant>,
    overlong_answer: Vec<u8>,
    half_close_answer: Vec<u8>,
    half_close_fin_at: Option<Instant>,
}

/// One run: a probe client does a round trip every tick; with `hostile`,
/// four hostile clients run at the same time. Returns the probe's round
/// trip times.
fn run(hostile: bool) -> (Vec<Duration>, Hostile, TestNet) {
    let mut net: TestNet = Net::new(config(), Reverse::default(), Setup::default());
    let probe = net.connect_with(4096, 4096);
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.client(probe).state()
            == State::Established)
    );
    let mut h = Hostile::default();
    let actors = hostile.then(|| {
        // Never reads: a 2 KiB receive window.
        let hog = net.connect_with(2048, 65536);
        let slowloris = net.connect_with(4096, 4096);
        let overlong = net.connect_with(4096, 8192);
        let half_close = net.connect_with(4096, 4096);
        assert!(net.run_until(Duration::from_secs(1), |n| [
            hog, slowloris, overlong, half_close
        ]
        .iter()
        .all(|&c| n.client(c).state() == State::Established)));
        let mut data = Vec::new();
        for i in 0..2000 {
            data.extend_from_slice(format!("hog line {i:05}\n").as_bytes());
        }
        h.hog_sent = net.client(hog).send_slice(&data).unwrap();
        // A line without end, then its end and one more line.
        net.send(overlong, &[b'x'; 5000]);
        net.send(half_close, b"one\ntwo\r\nthree");
        net.client(half_close).close();
        (hog, slowloris, overlong, half_close)
    });

    let mut rtts = Vec::new();
    for tick in 0..TICKS {
        let start = net.now;
        if let Some((_, slowloris, overlong, half_close)) = actors {
            // One byte a second, a line that never ends.
            if tick % 4 == 0 && net.client(slowloris).may_send() {
                net.send(slowloris, b"z");
                h.slowloris_bytes += 1;
            }
            if h.slowloris_closed_at.is_none() && !net.client(slowloris).may_recv() {
                h.slowloris_closed_at = Some(net.now);
            }
            if tick == 8 {
                net.send(overlong, b"\nafter\n");
            }
            h.overlong_answer.extend(net.take(overlong));
            h.half_close_answer.extend(net.take(half_close));
            if h.half_close_fin_at.is_none() && !net.client(half_close).may_recv() {
                h.half_close_fin_at = Some(net.now);
            }
        }
        let line = format!("probe {tick}");
        net.send(probe, format!("{line}\n").as_bytes());
        let sent_at = net.now;
        let got = net.receive(probe, line.len() + 1, Duration::from_secs(5));
        assert_eq!(got, rev_line(&line), "tick {tick}");
        rtts.push(net.now - sent_at);
        let end = start + TICK;
        if net.now < end {
            let left = end - net.now;
            net.run_for(left);
        }
    }
    (rtts, h, net)
}

#[test]
fn hostile_clients_cost_a_bounded_amount_and_delay_no_one() {
    let (baseline, _, base_net) = run(false);
    let (rtts, h, net) = run(true);
    assert_eq!(rtts.len(), TICKS as usize);
    assert_eq!(rtts, baseline, "the probe's round trips moved");
    let worst = rtts.iter().max().unwrap();
    println!("probe round trip: at most {worst} (virtual), same as without hostile clients");
    assert_eq!(base_net.server.stats().answered, TICKS);

    // The line without end: one error line, skipped, and the next line answered.
    assert_eq!(
        h.overlong_answer,
        [&b"error: line longer than 1024 bytes\n"[..], b"retfa\n"].concat()
    );
    // The half-closer got every answer, the last line without its end too,
    // then the server's FIN right away.
    assert_eq!(h.half_close_answer, b"eno\nowt\r\neerht");
    assert!(h
        .half_close_fin_at
        .is_some_and(|t| t < Instant::from_secs(1)));
    // Slowloris: its bytes are never a whole line, so nothing is consumed
    // and the idle timeout closes it; it sends one byte a second meanwhile.
    let closed = h.slowloris_closed_at.expect("slowloris never closed");
    assert!(
        closed <= Instant::ZERO + IDLE + Duration::from_secs(1),
        "slowloris closed at {closed}"
    );
    assert!(h.slowloris_bytes >= 10);

    // Everyone but the probe is gone within idle + close timeout of the
    // last thing it did; the hog's slot too (it stopped reading at once).
    let stats = *net.server.stats();
    assert_eq!(stats.active, 1, "{stats}");
    assert!(matches!(net.phases()[0], Role::Serving));
    assert_eq!(&net.server_states()[1..], &[State::Listen; 7]);
    // hog and slowloris: idle timeout; overlong client: still idle since
    // its last line, so also timed out; the half-closer closed itself.
    assert_eq!(
        (stats.timed_out, stats.closed_by_peer, stats.rejected),
        (3, 1, 1),
        "{stats}"
    );
    // The hog's cost: what the server answered is bounded by the buffers
    // (server transmit 4 KiB, receive 4 KiB, its own 2 KiB window), not by
    // what it tried to send.
    let hog_answered = stats.answered - TICKS - 1 - 3;
    let hog_answer_bytes = hog_answered as usize * 15;
    assert!(
        hog_answer_bytes <= 4096 + 2048 + 1024,
        "the hog got {hog_answered} answers"
    );
    assert!(h.hog_sent > 8192, "the hog could not even try");
    println!(
        "hog: sent {} bytes, answered {hog_answered} lines; slowloris closed at {closed}; {stats}",
        h.hog_sent
    );
}
