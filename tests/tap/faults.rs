//! The program when the world around it fails, and what else answers on
//! the device: a TAP deleted under it, a capture file on a full disk, other
//! ports, and the load generator's own checking.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::conformance::{self, Target};
use crate::server::{Process, Server};

#[test]
fn deleted_tap_ends_the_server_with_a_clear_error() {
    let ns = netns!();
    let server = Server::start(&ns, &[]);
    conformance::reverses_a_line(&server);
    ns.ip(&["link", "del", "tap0"]).expect("delete the TAP");
    let status = server.process.wait_exit(Duration::from_secs(5));
    server.process.stderr.wait_closed(Duration::from_secs(2));
    let output = server.process.output();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "exit status 1, not a panic (101) or a hang\n{output}"
    );
    assert!(
        output.contains("the TAP device tap0 failed") && output.contains("was it deleted?"),
        "says what happened\n{output}"
    );
    assert!(!output.contains("panicked"), "no panic\n{output}");
}

#[test]
fn capture_on_a_full_disk_is_reported_and_serving_goes_on() {
    let ns = netns!();
    // Every write to /dev/full fails with ENOSPC, like a full disk.
    let server = Server::start(&ns, &["--pcap", "/dev/full"]);
    conformance::round_trips_are_exact(&server, 50, 2);
    let reported = server.process.stderr.wait_for(Duration::from_secs(2), |l| {
        l.contains("No space left on device")
    });
    assert!(
        reported.is_some_and(|l| l.contains("capture stopped, serving goes on")),
        "the failed capture is reported\n{}",
        server.process.output()
    );
    let status = server.terminate(Duration::from_secs(3));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
}

#[test]
fn only_the_service_port_answers() {
    let ns = netns!();
    let server = Server::start(&ns, &[]);
    conformance::reverses_a_line(&server);
    // Another TCP port (7001 is the status service's): reset, so the
    // connect is refused.
    let other: SocketAddr = "192.168.69.1:7002".parse().unwrap();
    match server.connect_to(other) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("port 7002 accepted a connection"),
    }
    // UDP: ICMP port unreachable, which a connected UDP socket reports as
    // "connection refused" on the next receive.
    let udp = server
        .socket(Domain::IPV4, Type::DGRAM, Protocol::UDP)
        .expect("UDP socket");
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    udp.connect(&SockAddr::from(
        "192.168.69.1:9".parse::<SocketAddr>().unwrap(),
    ))
    .expect("connect UDP");
    udp.send(b"anyone?").expect("send");
    let mut buf = [std::mem::MaybeUninit::new(0u8); 16];
    match udp.recv(&mut buf) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(n) => panic!("a UDP answer of {n} bytes"),
    }
}

#[test]
fn bench_checks_every_answer() {
    let ns = netns!();
    // 4 clients that connect, ask and close hold at most 8 slots (a slot
    // waits for the client's last ACK after its FIN): 16 is enough.
    let _server = Server::start(&ns, &["--clients", "16"]);
    let run = |args: &[&str]| {
        let mut full = vec!["bench", "192.168.69.1:7000", "--json"];
        full.extend_from_slice(args);
        let p = Process::spawn(&ns, &full).expect("start bench");
        let status = p.wait_exit(Duration::from_secs(30));
        p.stdout.wait_closed(Duration::from_secs(2));
        (status, p.stdout.text(), p.output())
    };
    for mode in ["rr", "connect"] {
        let (status, json, output) = run(&["--mode", mode, "-c", "4", "-n", "400"]);
        assert!(status.is_some_and(|s| s.success()), "{mode}: {output}");
        assert!(
            json.contains("\"mismatches\":0")
                && json.contains("\"errors\":0")
                && json.contains("\"busy\":0"),
            "{json}"
        );
        let requests: u64 = json
            .split("\"requests\":")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("requests in the JSON");
        assert!(requests >= 400, "{mode}: {requests} requests");
    }
    let (status, json, output) = run(&["--mode", "maxconn"]);
    assert!(status.is_some_and(|s| s.success()), "{output}");
    assert!(json.contains("\"served_at_once\":16"), "{json}");
    assert!(json.contains("busy line"), "{json}");
}

#[test]
fn bench_fails_on_a_wrong_answer() {
    let ns = netns!();
    // An echo server answers unreversed lines: every answer is "wrong" for
    // a bench that expects the reverse service.
    let _server = Server::start(&ns, &["--service", "echo"]);
    let p = Process::spawn(
        &ns,
        &["bench", "192.168.69.1:7000", "--mode", "rr", "-n", "10"],
    )
    .expect("start bench");
    let status = p.wait_exit(Duration::from_secs(30));
    p.stderr.wait_closed(Duration::from_secs(2));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", p.output());
    assert!(p.output().contains("answers were wrong"), "{}", p.output());
}

#[test]
fn ping_flood_is_answered_at_a_bounded_rate() {
    let ns = netns!();
    let server = Server::start(&ns, &["--ping-limit", "20"]);
    let ip = "192.168.69.1".parse().unwrap();
    // One ping first: the neighbour entry is there before the flood.
    conformance::answers_ping(&server, ip);
    let socket = server
        .raw_socket(Domain::IPV4, Protocol::ICMPV4)
        .expect("raw socket");
    let start = std::time::Instant::now();
    let replies =
        conformance::icmp::flood(&socket, ip, 0x7177, 300, Duration::from_secs(1)).expect("flood");
    let elapsed = start.elapsed().as_secs_f64();
    // A burst of 20, then 20 per second (the burst is partly spent by the
    // first ping), with one token of slack for timing. Without the limit
    // all 300 are answered.
    let bound = 20 + (20.0 * elapsed).ceil() as usize + 1;
    assert!(
        (1..=bound).contains(&replies),
        "{replies} replies to 300 pings in {elapsed:.2} s, bound {bound}"
    );
    // The TCP service is unaffected.
    conformance::reverses_a_line(&server);
}

#[test]
fn without_permission_the_error_says_how_to_make_a_tap_for_a_user() {
    let ns = netns!();
    // The same program, run as the unprivileged user `nobody`, from a copy
    // that user can reach (the build folder may be private).
    let copy = std::env::temp_dir().join(format!("multiserve-nobody-{}", std::process::id()));
    std::fs::copy(crate::server::BINARY, &copy).expect("copy the binary");
    let program = copy.clone();
    let output = ns
        .run(move || {
            use std::os::unix::process::CommandExt;
            std::process::Command::new(program)
                .args(["serve", "--iface", "tapuser0"])
                .uid(65534)
                .gid(65534)
                .output()
        })
        .expect("run multiserve as nobody");
    let _ = std::fs::remove_file(&copy);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("permission denied")
            && stderr.contains("ip tuntap add name tapuser0 mode tap user"),
        "says how to create the TAP for a user: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
