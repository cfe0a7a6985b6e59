//! Checks of the test harness itself, without the server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::conformance::Counters;

/// The namespace thread's sockets live in the namespace: a kernel listener
/// on its loopback is reached from a socket made there, and the
/// namespace starts with no other device than `lo`.
#[test]
fn namespace_is_private_and_usable() {
    let ns = netns!();
    let links = ns.ip_output(&["-o", "link"]).expect("ip link");
    assert_eq!(
        links.lines().count(),
        1,
        "only lo in a new namespace: {links}"
    );
    let listener = ns
        .run(|| TcpListener::bind("127.0.0.1:7000"))
        .expect("listen in the namespace");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut client = ns.run(move || TcpStream::connect(addr)).expect("connect");
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    server.join().unwrap();
}

/// The counters parser reads exactly what `Stats` prints.
#[test]
fn counters_parse_what_stats_print() {
    let stats = multiserve::Stats {
        accepted: 5,
        active: 1,
        peak_active: 2,
        refused_busy: 3,
        refused_reset: 15,
        refused_foreign: 22,
        queued_then_served: 16,
        queued_reset: 23,
        closed_by_peer: 4,
        closed_by_server: 6,
        reset: 7,
        timed_out: 8,
        half_open_dropped: 9,
        close_aborted: 10,
        reclaimed_half_open: 17,
        reclaimed_lingering: 18,
        syn_dropped: 21,
        lingering: 19,
        queued: 20,
        answered: 11,
        rejected: 12,
        bytes_in: 13,
        bytes_out: 14,
    };
    let c = Counters::from_line(&format!("stats: {stats}")).expect("parsable");
    assert_eq!(
        c,
        Counters {
            active: 1,
            peak_active: 2,
            accepted: 5,
            refused_busy: 3,
            refused_reset: 15,
            refused_foreign: 22,
            queued: 20,
            queued_then_served: 16,
            queued_reset: 23,
            closed_by_peer: 4,
            closed_by_server: 6,
            reset: 7,
            timed_out: 8,
            half_open_dropped: 9,
            close_aborted: 10,
            reclaimed_half_open: 17,
            reclaimed_lingering: 18,
            syn_dropped: 21,
            lingering: 19,
            answered: 11,
            rejected: 12,
            bytes_in: 13,
            bytes_out: 14,
        }
    );
    assert_eq!(Counters::from_line("final: active 1"), None);
    assert_eq!(Counters::from_line("serving reverse on ..."), None);
}
