//! A soak: many connections opened, used and closed in random order, some
//! reset abruptly, over a link that loses 2 % of frames each way. Every
//! answer exact, every slot back in LISTEN, the counters add up.
//!
//! The always-run size is 10,000 connections; the full 100,000:
//!
//! ```sh
//! cargo test --release --test simnet soak -- --ignored --nocapture
//! ```

use std::time::Instant as WallClock;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

use multiserve::{Config, Reverse};

use crate::net::{Net, Rng, Setup};

const POOL: usize = 12;
/// Client connections open at once (fewer than the slots, but a slot
/// whose client vanished is only freed by the timeouts, so the busy answer
/// can happen too).
const CONCURRENT: usize = 6;
const BUSY: &[u8] = b"busy: all 8 slots are in use, try again later\n";
const WORDS: [&str; 8] = [
    "olá",
    "mundo",
    "🦀",
    "soak",
    "ação",
    "x",
    "reverse",
    "Ünïcödé",
];

struct Conn {
    handle: SocketHandle,
    lines_left: u32,
    sent_lines: u32,
    expected: Vec<u8>,
    got: Vec<u8>,
    opened_at: Instant,
    aborted: bool,
    closing: bool,
}

#[derive(Default, Debug)]
struct Tally {
    opened: u64,
    exact: u64,
    busy: u64,
    aborted: u64,
    gave_up: u64,
    /// Closed by the client with every answer in, but the server's end
    /// never came: its FIN (sent at 0, 1 and 3 s within the 5 s close
    /// timeout) and the reset it sends at that timeout were all lost (at
    /// 2 % loss, 0.02^4 per connection), or its FIN was lost and its
    /// socket, in LAST-ACK, was taken back for a new SYN before sending it
    /// again (the documented cost of taking such sockets back; about one in
    /// 100,000 connections here). smoltcp has no FIN-WAIT-2 timeout, so
    /// the client side gives up after 120 s, as a host would.
    server_end_lost: u64,
    lines_answered: u64,
}

fn check_prefix(c: &Conn) {
    let ok = c.expected.starts_with(&c.got) || BUSY.starts_with(&c.got);
    assert!(
        ok,
        "wrong bytes: got {:?}, expected {:?}",
        String::from_utf8_lossy(&c.got),
        String::from_utf8_lossy(&c.expected)
    );
}

fn soak(connections: u64, seed: u64) {
    let wall = WallClock::now();
    let config = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        handshake_timeout: Duration::from_secs(5),
        close_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let setup = Setup {
        drop_pct: 2,
        seed: seed as u32,
        client_rx: 4096,
        client_tx: 4096,
        ..Setup::default()
    };
    let mut net: Net<Reverse, POOL> = Net::new(config, Reverse::default(), setup);
    let mut rng = Rng::new(seed);
    let mut conns: Vec<Conn> = Vec::new();
    let mut t = Tally::default();

    while t.opened < connections || !conns.is_empty() {
        if t.opened < connections && conns.len() < CONCURRENT && rng.chance(50) {
            let handle = net.connect_with(4096, 4096);
            conns.push(Conn {
                handle,
                lines_left: 1 + rng.below(3) as u32,
                sent_lines: 0,
                expected: Vec::new(),
                got: Vec::new(),
                opened_at: net.now,
                aborted: false,
                closing: false,
            });
            t.opened += 1;
        }
        // One random action on one random connection.
        if !conns.is_empty() {
            let k = rng.below(conns.len() as u64) as usize;
            let c = &mut conns[k];
            let sock = net.client_host.sockets.get_mut::<tcp::Socket>(c.handle);
            if !c.aborted && !c.closing && sock.state() == State::Established {
                if rng.chance(3) {
                    // An abrupt reset, at any moment.
                    sock.abort();
                    c.aborted = true;
                } else if c.lines_left > 0 {
                    let mut line = String::new();
                    for _ in 0..=rng.below(4) {
                        line.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                        line.push(' ');
                    }
                    line.push_str(&format!("{}", t.opened));
                    let data = format!("{line}\n");
                    if sock.send_capacity() - sock.send_queue() >= data.len() {
                        sock.send_slice(data.as_bytes()).unwrap();
                        c.expected
                            .extend(line.chars().rev().collect::<String>().bytes());
                        c.expected.push(b'\n');
                        c.lines_left -= 1;
                        c.sent_lines += 1;
                    }
                } else if c.got == c.expected {
                    sock.close();
                    c.closing = true;
                }
            }
        }
        net.run_for(Duration::from_millis(rng.below(3)));

        // Collect answers, check every byte, retire finished connections.
        let now = net.now;
        conns.retain_mut(|c| {
            let sock = net.client_host.sockets.get_mut::<tcp::Socket>(c.handle);
            if sock.can_recv() {
                let mut buf = vec![0; sock.recv_queue()];
                let n = sock.recv_slice(&mut buf).unwrap();
                c.got.extend_from_slice(&buf[..n]);
            }
            check_prefix(c);
            let state = sock.state();
            let over = match state {
                State::Closed | State::TimeWait => true,
                // The server closed: the busy line, or an idle timeout
                // after a lost reset or FIN.
                State::CloseWait => {
                    sock.close();
                    false
                }
                _ => false,
            };
            let age = now - c.opened_at;
            let fin_wait_2 = state == State::FinWait2 && c.closing && c.got == c.expected;
            let expired = fin_wait_2 && age > Duration::from_secs(120);
            let stuck = !expired && age > Duration::from_secs(300);
            if !(over || stuck || expired) {
                return true;
            }
            if expired {
                t.server_end_lost += 1;
                t.lines_answered += u64::from(c.sent_lines);
                sock.abort();
            } else if stuck {
                t.gave_up += 1;
                sock.abort();
            } else if c.aborted {
                t.aborted += 1;
            } else if c.got == BUSY {
                t.busy += 1;
            } else {
                assert_eq!(c.got, c.expected, "connection ended with answers missing");
                t.exact += 1;
                t.lines_answered += u64::from(c.sent_lines);
            }
            // An aborted socket's RST went out in the run since the abort.
            net.client_host.sockets.remove(c.handle);
            false
        });
    }

    // Everything settles: every slot back in LISTEN, nothing active.
    let settled = net.run_until(Duration::from_secs(120), |n| {
        n.all_listening() && n.server.stats().active == 0
    });
    let s = *net.server.stats();
    assert!(
        settled,
        "slots did not come back: {:?} {s}",
        net.server_states()
    );
    assert_eq!(
        s.accepted,
        s.closed_by_peer + s.closed_by_server + s.reset + s.timed_out + u64::from(s.active)
    );
    assert_eq!(t.gave_up, 0, "{t:?}");
    assert_eq!(t.opened, connections);
    assert_eq!(
        t.exact + t.busy + t.aborted + t.server_end_lost,
        connections,
        "{t:?}"
    );
    // Expected about 0.1 per 10,000 connections (the run is seeded, so
    // the same every time): more than one in 10,000 is a server that does
    // not end its connections.
    assert!(t.server_end_lost <= connections.div_ceil(10_000), "{t:?}");
    assert!(s.answered >= t.lines_answered);
    assert!(s.refused_busy >= t.busy);
    println!(
        "soak of {connections} connections (seed {seed}, 2 % loss each way): {t:?}; \
         server: {s}; {:.1} s virtual, {:.1} s wall",
        net.now.total_millis() as f64 / 1000.0,
        wall.elapsed().as_secs_f64()
    );
}

#[test]
fn soak_10k_connections_at_2_percent_loss() {
    soak(10_000, 1);
}

#[test]
#[ignore = "100,000 connections: run in release, see the module docs"]
fn soak_100k_connections_at_2_percent_loss() {
    soak(100_000, 2);
}
