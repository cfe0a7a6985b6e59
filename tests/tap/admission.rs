//! Admission on a real TAP: clients that close and connect again at once
//! are never told busy or refused while they hold fewer connections than
//! the capacity, and a SYN flood does not take the service down.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr};

use crate::conformance::{self, Target};
use crate::netns::Netns;
use crate::server::Server;

/// Churn leaves one TIME-WAIT per cycle on the client side: give the
/// namespace room for them (ports, and reuse for new connects).
fn roomy_ports(ns: &Netns) {
    ns.run(|| {
        std::fs::write("/proc/sys/net/ipv4/ip_local_port_range", "1024 65000")?;
        std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "1")
    })
    .expect("port range and TIME-WAIT reuse in the namespace");
}

/// `multiserve serve --stats-every 1 -q ARGS` in `ns`, with room for churn.
fn churn_server(ns: &Arc<Netns>, args: &[&str]) -> Server {
    roomy_ports(ns);
    let mut all = vec!["--stats-every", "1", "-q"];
    all.extend_from_slice(args);
    Server::start(ns, &all)
}

/// `clients` churning clients on `clients` places for `seconds`: every
/// cycle answered, none told busy, none refused; the server agrees.
fn churn_as_many_as_places(server: &Server, clients: usize, seconds: u64) {
    let start = Instant::now();
    let c = conformance::churn(server, clients, Duration::from_secs(seconds));
    let elapsed = start.elapsed().as_secs_f64();
    // Every client has closed: its FIN arrives within TCP's schedule.
    let counters =
        conformance::wait_counters(server, "churn over", server.io_timeout(), |c| c.active == 0)
            .expect("counters");
    println!(
        "churn, {clients} clients on {clients} places: {} cycles in {elapsed:.1} s ({:.0}/s), \
         {} busy, {} refused; server: {counters:?}",
        c.cycles,
        c.cycles as f64 / elapsed,
        c.busy,
        c.refused
    );
    assert!(c.cycles > 0);
    assert_eq!((c.busy, c.refused), (0, 0), "{c:?}");
    assert_eq!(counters.refused_busy, 0, "{counters:?}");
    conformance::assert_consistent(&counters);
}

#[test]
fn churn_of_16_clients_on_16_places_is_never_refused() {
    let server = churn_server(&netns!(), &["--clients", "16"]);
    churn_as_many_as_places(&server, 16, 10);
}

#[test]
fn churn_of_64_clients_on_64_places_is_never_refused() {
    let server = churn_server(&netns!(), &["--clients", "64"]);
    churn_as_many_as_places(&server, 64, 10);
}

/// At 5% loss a leaving client's FIN is sometimes lost, and its place is
/// held until the FIN is sent again (Linux resends it after 0.2, 0.6, 1.4,
/// 3.0, 6.2 and 12.6 s); its next connection waits for the place. A queue
/// wait of 15 s covers six losses of the same FIN in a row (a chance of
/// 10^-9 per cycle at 5 %; 5 s covered four, 3 x 10^-7, about one run in
/// a few hundred).
#[test]
fn churn_over_a_lossy_link_waits_instead_of_being_refused() {
    let server = churn_server(
        &netns!(),
        &[
            "--clients",
            "16",
            "--drop-chance",
            "5",
            "--queue-wait",
            "15s",
        ],
    );
    churn_as_many_as_places(&server, 16, 10);
}

/// A raw IPv4 + TCP SYN from `src` to `dst`, for an `IPPROTO_RAW` socket
/// (the kernel fills in the IP checksum and length).
fn syn_packet(src: SocketAddrV4, dst: SocketAddrV4, seq: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45; // IPv4, 20-byte header
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64; // TTL
    p[9] = 6; // TCP
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let tcp = &mut p[20..];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4; // 20-byte header
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // Checksum over the pseudo-header and the segment.
    let mut sum = 0u32;
    for chunk in [&src.ip().octets()[..], &dst.ip().octets()[..]] {
        for pair in chunk.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
    }
    sum += 6 + 20;
    for pair in p[20..].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[36..38].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// Sends SYNs from an address on the TAP's subnet that nobody answers
/// for, `rate` per second in 1 ms steps, until `stop`. Returns how many.
fn flood(server: &Server, rate: u64, stop: &AtomicBool) -> u64 {
    let raw = server
        .raw_socket(Domain::IPV4, Protocol::from(libc::IPPROTO_RAW))
        .expect("a raw socket in the namespace");
    let dst = SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 1), 7000);
    let to = SockAddr::from(SocketAddr::V4(dst));
    let start = Instant::now();
    let mut sent = 0u64;
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_micros() as u64 * rate) / 1_000_000;
        while sent < due {
            n = n.wrapping_add(1);
            let src =
                SocketAddrV4::new(Ipv4Addr::new(192, 168, 69, 200), 1024 + (n % 60000) as u16);
            let packet = syn_packet(src, dst, n.wrapping_mul(2_654_435_761));
            if raw.send_to(&packet, &to).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    sent
}

/// `rate` SYNs per second for 10 s against 16 places, while 12 clients
/// stay connected and exchange a line every 100 ms, and 4 clients churn:
/// at least 99% of the churn cycles are served, and every held client's
/// every line is answered.
fn survives_a_syn_flood(ns: &Arc<Netns>, rate: u64) {
    let server = churn_server(ns, &["--clients", "16"]);
    let held = conformance::occupy(&server, 12);
    let stop = AtomicBool::new(false);
    let held_lines = AtomicU64::new(0);
    let (sent, churn, mut held) = thread::scope(|scope| {
        let flooder = scope.spawn(|| flood(&server, rate, &stop));
        let held_stop = &stop;
        let lines = &held_lines;
        let holder = scope.spawn(move || {
            let mut held = held;
            let mut round = 0u64;
            while !held_stop.load(Ordering::Relaxed) {
                for (i, s) in held.iter_mut().enumerate() {
                    let line = format!("held {i} round {round}\n");
                    conformance::exchange(
                        s,
                        line.as_bytes(),
                        &conformance::reversed_line(line.as_bytes()),
                    );
                    lines.fetch_add(1, Ordering::Relaxed);
                }
                round += 1;
                thread::sleep(Duration::from_millis(100));
            }
            held
        });
        // Stop the flood and the held clients even if the churn fails.
        struct StopOnDrop<'s>(&'s AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let guard = StopOnDrop(&stop);
        let churn = conformance::churn(&server, 4, Duration::from_secs(10));
        drop(guard);
        let sent = flooder.join().expect("flooder");
        let held = holder.join().expect("held clients");
        (sent, churn, held)
    });
    let attempts = churn.cycles + churn.busy + churn.refused;
    let counters = server.counters();
    println!(
        "SYN flood at {rate}/s: {sent} SYNs sent; churn {} of {attempts} served ({:.2}%), \
         {} busy, {} refused; held clients answered {} lines; server: {counters:?}",
        churn.cycles,
        100.0 * churn.cycles as f64 / attempts.max(1) as f64,
        churn.busy,
        churn.refused,
        held_lines.load(Ordering::Relaxed)
    );
    assert!(sent >= rate * 9, "the flood sent only {sent} SYNs");
    assert!(
        churn.cycles * 100 >= attempts * 99 && attempts > 0,
        "only {} of {attempts} churn cycles served",
        churn.cycles
    );
    for (i, s) in held.iter_mut().enumerate() {
        let line = format!("held {i} after the flood\n");
        conformance::exchange(
            s,
            line.as_bytes(),
            &conformance::reversed_line(line.as_bytes()),
        );
    }
}

#[test]
fn survives_a_syn_flood_of_1000_per_second() {
    survives_a_syn_flood(&netns!(), 1000);
}

#[test]
fn survives_a_syn_flood_of_10000_per_second() {
    survives_a_syn_flood(&netns!(), 10_000);
}
