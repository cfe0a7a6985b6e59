//! Several services on one loop (reverse on 7000, echo on 7007, status on
//! 7001, one socket set, one poll step), and the status service's
//! snapshots checked against the servers' own view.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Duration;

use multiserve::Role;
use multiserve::{Config, Peers, Reverse};

use crate::admission::spoofed_syn_to;
use crate::net::{rev_line, Net, Rng, Setup, ECHO_PORT, PORT, STATUS_PORT};
use crate::wire::{tcp_segment, Dir};

/// Reverse: 4 clients and 2 spare sockets; echo: 2 clients and 1 spare.
type Three = Net<Reverse, 6>;

fn three(queue_wait: Duration) -> Three {
    let config = Config {
        clients: Some(4),
        queue_wait,
        ..Config::default()
    };
    let echo = Config {
        clients: Some(2),
        queue_wait,
        ..Config::default()
    };
    Net::with_services(config, Reverse::default(), Setup::default(), echo)
}

/// Read from `h` until `done` holds for what was read, or 10 s pass.
fn read_until(net: &mut Three, h: SocketHandle, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let end = net.now + Duration::from_secs(10);
    while !done(&got) && net.now < end {
        let remaining = end - net.now;
        net.run_until(remaining, |n| n.client(h).recv_queue() > 0);
        got.extend(net.take(h));
    }
    got
}

/// One text snapshot from `h`, up to its `end` line, split into lines of
/// fields.
fn snapshot(net: &mut Three, h: SocketHandle) -> Vec<Vec<String>> {
    let text = read_until(net, h, |got| got.ends_with(b"end\n"));
    let text = String::from_utf8(text).expect("snapshots are text");
    assert!(text.ends_with("end\n"), "no whole snapshot: {text:?}");
    text.lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

fn local_port(net: &mut Three, h: SocketHandle) -> u16 {
    net.client(h).local_endpoint().expect("connected").port
}

#[test]
fn each_service_answers_on_its_own_port() {
    let mut net = three(Duration::from_secs(2));
    let reverse = net.connect_port(PORT);
    let echo = net.connect_port(ECHO_PORT);
    assert_eq!(net.exchange(reverse, b"hello\n", 6), b"olleh\n");
    assert_eq!(net.exchange(echo, b"hello\n", 6), b"hello\n");
    assert_eq!(net.server.stats().accepted, 1);
    assert_eq!(net.echo().stats().accepted, 1);
}

/// Each port counts its clients against its own capacity: a full echo
/// service does not make the reverse service busy, nor the other way.
#[test]
fn each_port_has_its_own_capacity() {
    let mut net = three(Duration::ZERO);
    let echoes: Vec<_> = (0..2).map(|_| net.connect_port(ECHO_PORT)).collect();
    for &h in &echoes {
        assert_eq!(net.exchange(h, b"held\n", 5), b"held\n");
    }
    let third = net.connect_port(ECHO_PORT);
    let busy = read_until(&mut net, third, |got| got.ends_with(b"\n"));
    assert_eq!(busy, b"busy: all 2 slots are in use, try again later\n");
    // The reverse service still has all four places.
    let reversed: Vec<_> = (0..4).map(|_| net.connect_port(PORT)).collect();
    for (i, &h) in reversed.iter().enumerate() {
        let line = format!("client {i}");
        let want = rev_line(&line);
        assert_eq!(
            net.exchange(h, format!("{line}\n").as_bytes(), want.len()),
            want
        );
    }
    let fifth = net.connect_port(PORT);
    let busy = read_until(&mut net, fifth, |got| got.ends_with(b"\n"));
    assert_eq!(busy, b"busy: all 4 slots are in use, try again later\n");
    assert_eq!(net.server.stats().refused_busy, 1);
    assert_eq!(net.echo().stats().refused_busy, 1);
    // And the echo clients held all along are still served.
    for &h in &echoes {
        assert_eq!(net.exchange(h, b"still\n", 6), b"still\n");
    }
}

/// A SYN flood on the reverse port (10 SYNs between every step of the
/// test): 200 echo clients in a row connect, are answered and leave, and
/// the held echo client keeps being answered. Only the reverse pool gives
/// up half-open handshakes.
#[test]
fn a_flood_on_one_port_leaves_the_other_served() {
    let mut net = three(Duration::from_secs(2));
    let held = net.connect_port(ECHO_PORT);
    let mut rng = Rng::new(5);
    let mut floods = 0u32;
    for round in 0..200 {
        for _ in 0..10 {
            let port = 1024 + rng.below(60000) as u16;
            net.in_flight
                .inject(Dir::ToServer, spoofed_syn_to(PORT, port, rng.next() as u32));
            floods += 1;
        }
        let h = net.connect_port(ECHO_PORT);
        let line = format!("round {round}\n");
        assert_eq!(
            net.exchange(h, line.as_bytes(), line.len()),
            line.as_bytes()
        );
        net.client(h).close();
        if round % 20 == 0 {
            assert_eq!(net.exchange(held, b"held\n", 5), b"held\n");
        }
    }
    let (reverse, echo) = (*net.server.stats(), *net.echo().stats());
    println!("{floods} SYNs to the reverse port; reverse: {reverse}; echo: {echo}");
    assert!(reverse.reclaimed_half_open > 0, "{reverse}");
    assert_eq!(echo.reclaimed_half_open, 0, "{echo}");
    assert_eq!((echo.refused_busy, echo.syn_dropped), (0, 0), "{echo}");
    assert_eq!(echo.accepted, 201, "{echo}");
}

/// The greeting snapshot lists every socket of the three services, in
/// socket order, with the role, state, peer and byte counts the servers
/// themselves hold.
#[test]
fn the_snapshot_lists_every_socket_as_the_servers_see_it() {
    let mut net = three(Duration::from_secs(2));
    let a = net.connect_port(PORT);
    let b = net.connect_port(PORT);
    let e = net.connect_port(ECHO_PORT);
    assert_eq!(net.exchange(a, b"abc\n", 4), b"cba\n");
    assert_eq!(net.exchange(b, b"hello world\n", 12), b"dlrow olleh\n");
    assert_eq!(net.exchange(e, b"echo\n", 5), b"echo\n");
    net.run_for(Duration::from_millis(500));
    let watcher = net.connect_port(STATUS_PORT);
    let lines = snapshot(&mut net, watcher);

    // What the servers hold, socket by socket, in the same order.
    let sockets = &net.server_host.sockets;
    let mut expected = Vec::new();
    let pools = [
        (PORT, net.server.slots().collect::<Vec<_>>(), 6),
        (ECHO_PORT, net.echo().slots().collect(), 3),
        (STATUS_PORT, net.status().slots().collect(), 2),
    ];
    for (port, slots, in_use) in &pools {
        for (h, phase) in slots.iter().take(*in_use) {
            let socket = sockets.get::<tcp::Socket>(*h);
            let peer = socket
                .remote_endpoint()
                .map_or("-".to_owned(), |p| p.to_string());
            expected.push((
                *port,
                phase.as_str().to_owned(),
                socket.state().to_string(),
                peer,
            ));
        }
    }

    let head = &lines[0];
    assert_eq!(head[0], "status", "{lines:?}");
    assert_eq!(
        &head[3..],
        ["services", "3", "sockets", "11", "unlisted", "0"]
    );
    let services: Vec<_> = lines.iter().filter(|l| l[0] == "service").collect();
    let names: Vec<_> = services
        .iter()
        .map(|l| (l[1].as_str(), l[2].as_str()))
        .collect();
    assert_eq!(
        names,
        [("7000", "reverse"), ("7007", "echo"), ("7001", "status")]
    );
    assert_eq!(services[0][3..], ["clients", "4", "spare", "2"]);
    let counters: Vec<_> = lines.iter().filter(|l| l[0] == "counters").collect();
    assert_eq!(counters.len(), 3);
    assert_eq!(counters[0].len(), 2 + 2 * 23, "{:?}", counters[0]);
    let value = |line: &Vec<String>, key: &str| -> u64 {
        let i = line.iter().position(|f| f == key).expect(key);
        line[i + 1].parse().expect("a number")
    };
    assert_eq!(value(counters[0], "accepted"), 2);
    assert_eq!(value(counters[0], "active"), 2);
    assert_eq!(value(counters[0], "bytes_in"), 16);
    assert_eq!(value(counters[1], "accepted"), 1);

    let rows: Vec<_> = lines.iter().filter(|l| l[0] == "socket").collect();
    assert_eq!(rows.len(), 11, "{lines:?}");
    for (i, (row, want)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[1], i.to_string());
        let got = (
            row[2].parse::<u16>().unwrap(),
            row[3].clone(),
            row[4].clone(),
            row[5].clone(),
        );
        assert_eq!(&got, want, "socket {i}");
    }
    // The served clients by their ports, with their bytes.
    let served = |port: u16| {
        rows.iter()
            .find(|r| r[3] == "serving" && r[5].ends_with(&format!(":{port}")))
            .map(|r| (r[2].clone(), r[6].clone(), r[7].clone()))
    };
    let (pa, pb, pe, pw) = (
        local_port(&mut net, a),
        local_port(&mut net, b),
        local_port(&mut net, e),
        local_port(&mut net, watcher),
    );
    assert_eq!(served(pa), Some(("7000".into(), "4".into(), "4".into())));
    assert_eq!(served(pb), Some(("7000".into(), "12".into(), "12".into())));
    assert_eq!(served(pe), Some(("7007".into(), "5".into(), "5".into())));
    // The watcher sees itself served (greeted after it was admitted).
    assert_eq!(served(pw).map(|s| s.0), Some("7001".into()));
    let serving = rows.iter().filter(|r| r[3] == "serving").count();
    assert_eq!(serving, 4);
    // Idle: the reverse clients last moved a byte at least 500 ms ago.
    let idle: u64 = rows
        .iter()
        .find(|r| r[5].ends_with(&format!(":{pa}")))
        .map(|r| r[8].parse().unwrap())
        .unwrap();
    assert!(idle >= 500, "idle {idle} ms");
}

/// Each line asks for one more snapshot: text, or JSON on one line with
/// the same sockets; roles follow the clients as they come and go.
#[test]
fn every_request_gets_a_snapshot_in_its_form() {
    let mut net = three(Duration::from_secs(2));
    let watcher = net.connect_port(STATUS_PORT);
    let first = snapshot(&mut net, watcher);
    let serving = |lines: &[Vec<String>]| {
        lines
            .iter()
            .filter(|l| l[0] == "socket" && l[3] == "serving")
            .count()
    };
    assert_eq!(serving(&first), 1, "only the watcher: {first:?}");

    let clients: Vec<_> = (0..3).map(|_| net.connect_port(PORT)).collect();
    for &h in &clients {
        assert_eq!(net.exchange(h, b"x\n", 2), b"x\n");
    }
    net.send(watcher, b"\n");
    assert_eq!(serving(&snapshot(&mut net, watcher)), 4);

    net.send(watcher, b"json\r\n");
    let json = read_until(&mut net, watcher, |got| got.ends_with(b"\n"));
    let json = String::from_utf8(json).unwrap();
    assert_eq!(json.matches('\n').count(), 1, "one line: {json}");
    assert!(json.starts_with("{\"uptime_ms\":"), "{json}");
    assert!(json.contains("\"sockets_in_use\":11,"), "{json}");
    assert_eq!(json.matches("\"role\":\"serving\"").count(), 4, "{json}");
    assert_eq!(json.matches("\"role\":\"listening\"").count(), 7, "{json}");
    assert!(json.contains("\"peer\":null"), "{json}");
    assert!(json.contains("\"name\":\"echo\""), "{json}");
    assert!(json.ends_with("],\"unlisted\":0}\n"), "{json}");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let sockets = parsed["sockets"].as_array().expect("a list of sockets");
    assert_eq!(sockets.len(), 11);
    assert_eq!(sockets[9]["port"], 7001);
    assert_eq!(sockets[9]["role"], "serving");
    assert_eq!(parsed["services"][0]["counters"]["accepted"], 3);

    // Two clients leave: their sockets linger, then listen again.
    for &h in &clients[..2] {
        net.client(h).close();
    }
    net.run_for(Duration::from_secs(1));
    net.send(watcher, b"text\n");
    assert_eq!(serving(&snapshot(&mut net, watcher)), 2);
    assert_eq!(net.status().stats().answered, 4);
}

/// What one round trip of a reverse client cost it: the frames of its
/// connection on the wire (both ways, until its delayed ACK is out) and the
/// simulated time until the whole answer was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    frames: usize,
    took: Duration,
}

/// How long a smoltcp client delays its ACK of an answer (its default):
/// after this, the round trip has sent every frame it will.
const CLIENT_ACK_DELAY: Duration = Duration::from_millis(10);

/// Garbage, an endless line and a client that never reads: each gets its
/// defined outcome, and a reverse client served all along pays nothing for
/// them: each of its round trips costs exactly what its first did, before
/// the status service had a client (the same frames, the same simulated
/// time).
#[test]
fn bad_requests_get_an_error_and_cost_the_others_nothing() {
    let mut net = three(Duration::from_secs(2));
    let reverse = net.connect_port(PORT);
    let reverse_port = local_port(&mut net, reverse);
    let frames = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let counter = frames.clone();
    net.in_flight.set_filter(move |_, frame| {
        let ours = tcp_segment(frame)
            .is_some_and(|s| s.src_port == reverse_port || s.dst_port == reverse_port);
        counter.set(counter.get() + usize::from(ours));
        true
    });
    let round_trip = |net: &mut Three, n: u32| -> Cost {
        let line = format!("still served {n}");
        let want = rev_line(&line);
        let (frames_before, start) = (frames.get(), net.now);
        net.send(reverse, format!("{line}\n").as_bytes());
        let mut got = Vec::new();
        assert!(net.run_until(Duration::from_secs(1), |n| {
            got.extend(n.take(reverse));
            got.len() >= want.len()
        }));
        let took = net.now - start;
        assert_eq!(got, want);
        net.run_for(CLIENT_ACK_DELAY);
        Cost {
            frames: frames.get() - frames_before,
            took,
        }
    };
    let alone = round_trip(&mut net, 0);
    let check = |net: &mut Three, n: u32| {
        let cost = round_trip(net, n);
        assert_eq!(cost, alone, "round trip {n}, beside the status client");
    };
    let watcher = net.connect_port(STATUS_PORT);
    snapshot(&mut net, watcher);

    net.send(watcher, b"\x00\xffgarbage\x07\n");
    let error = read_until(&mut net, watcher, |got| got.ends_with(b"\n"));
    assert_eq!(
        error,
        b"error: unknown request; send an empty line, \"text\" or \"json\"\n"
    );
    check(&mut net, 1);

    // An endless line: one error, the rest skipped to its end, and the
    // next request answered.
    for _ in 0..50 {
        net.send(watcher, &[b'a'; 1000]);
        net.run_for(Duration::from_millis(10));
    }
    let error = read_until(&mut net, watcher, |got| got.ends_with(b"\n"));
    assert_eq!(error, b"error: request longer than 64 bytes\n");
    net.send(watcher, b"aaaa\ntext\n");
    let lines = snapshot(&mut net, watcher);
    assert_eq!(lines[0][0], "status");
    check(&mut net, 2);
    let status = *net.status().stats();
    assert_eq!((status.rejected, status.answered), (2, 2), "{status}");

    // A client that asks and never reads: its snapshots stop at its
    // window, its requests wait; the others go on.
    net.client(watcher).close();
    let greedy = net.connect_to(STATUS_PORT, 512, 4096);
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.client(greedy).state()
            == State::Established)
    );
    for _ in 0..100 {
        net.send(greedy, b"json\n");
    }
    net.run_for(Duration::from_secs(2));
    assert!(net.client(greedy).recv_queue() <= 512);
    check(&mut net, 3);
    let answered = net.status().stats().answered;
    assert!(
        answered < 2 + 100,
        "{answered} snapshots for a client that never reads"
    );
    assert!(net.client(greedy).send_queue() > 0, "its requests wait");
    // Once it reads, it gets every snapshot it asked for.
    // The greeting is 1 + 2 + 2 + 2 + 11 + 1 lines; then 100 JSON lines.
    let mut got = 0usize;
    let end = net.now + Duration::from_secs(60);
    while got < 19 + 100 && net.now < end {
        net.run_until(Duration::from_secs(1), |n| {
            n.client(greedy).recv_queue() > 0
        });
        got += net.take(greedy).iter().filter(|&&b| b == b'\n').count();
    }
    assert_eq!(got, 19 + 100);
    check(&mut net, 4);
    assert_eq!(net.server.stats().refused_busy, 0);
    assert!(net.server.slots().any(|(_, p)| p == Role::Serving));
}

/// `printf '\n' | nc -N 192.168.69.1 7001`: a client that asks for one
/// more snapshot and closes its side at once holds its place until it has
/// both snapshots, and then gets the server's FIN. A second status client
/// waits for the place meanwhile (capacity 1), and a SYN that arrives
/// while no status socket listens never takes the first client's socket
/// mid-snapshot, not even in the very batch in which the first client's
/// ACK empties the transmit queue.
#[test]
fn a_half_closed_status_client_keeps_its_place_until_it_has_every_snapshot() {
    let mut net = three(Duration::from_secs(2));
    // A window as large as the server's transmit buffer, acknowledged at
    // once: each ACK takes everything the server has queued.
    let first = net.connect_to(STATUS_PORT, 1024, 1024);
    net.client(first).set_ack_delay(None);
    // Its window fills with the greeting's first records and stays shut.
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.client(first).recv_queue(), 1024);
    net.send(first, b"\n");
    net.client(first).close();
    let second = net.connect_port(STATUS_PORT);
    net.run_for(Duration::from_millis(100));

    // From now on a SYN follows every pure ACK of the first client on the
    // wire, in the same batch.
    let first_port = local_port(&mut net, first);
    let acked = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = acked.clone();
    net.in_flight.set_filter(move |dir, frame| {
        if let Some(s) = crate::wire::tcp_segment(frame) {
            if dir == Dir::ToServer
                && s.src_port == first_port
                && s.ack
                && !(s.syn || s.fin || s.rst)
                && s.payload_len == 0
            {
                flag.set(true);
            }
        }
        true
    });
    let mut got = Vec::new();
    let mut syns = 0u16;
    // No frame is lost: nothing but round trips at one instant delays the
    // rest of the snapshots and the FIN.
    net.run_until(Duration::from_secs(1), |n| {
        got.extend(n.take(first));
        if acked.replace(false) {
            syns += 1;
            n.in_flight.inject(
                Dir::ToServer,
                spoofed_syn_to(STATUS_PORT, 2000 + syns, u32::from(syns)),
            );
        }
        n.client(first).state() == State::TimeWait
    });
    got.extend(net.take(first));
    let text = String::from_utf8_lossy(&got);
    let status = *net.status().stats();
    assert!(syns > 0, "no ACK of the first client was seen");
    assert_eq!(
        (
            status.peak_active,
            text.matches("\nend\n").count(),
            net.client(first).state()
        ),
        (1, 2, State::TimeWait),
        "peak of capacity 1, whole snapshots, FIN; {status}; got {} bytes: {text:?}",
        got.len()
    );
    assert!(text.ends_with("\nend\n"), "{text:?}");
    // Then the second client has the place, and its greeting.
    let lines = snapshot(&mut net, second);
    assert_eq!(lines[0][0], "status");
    assert_eq!(net.status().stats().peak_active, 1);
}

/// A status client that never reads costs the poll steps nothing once its
/// window and the transmit buffer are full: the view is not described
/// again (nor the status pool walked twice) however many steps the other
/// services cause, until the client reads and room appears.
#[test]
fn a_status_client_with_no_room_costs_the_steps_nothing() {
    let mut net = three(Duration::from_secs(2));
    let reverse = net.connect_port(PORT);
    let stuck = net.connect_to(STATUS_PORT, 64, 1024);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.client(stuck).recv_queue(), 64, "its window is full");
    // The view was last described at this uptime, for the records that
    // fit; nothing new fits until the client reads.
    let described = net.status().service().view().uptime();
    for n in 0..100 {
        let line = format!("step {n}");
        let want = rev_line(&line);
        assert_eq!(
            net.exchange(reverse, format!("{line}\n").as_bytes(), want.len()),
            want
        );
        net.run_for(Duration::from_millis(10));
    }
    assert_eq!(
        net.status().service().view().uptime(),
        described,
        "the view was described again for a client with no room"
    );
    // Once it reads, the rest of its snapshot comes.
    let text = read_until(&mut net, stuck, |got| got.ends_with(b"\nend\n"));
    assert!(text.ends_with(b"\nend\n"));
    assert!(net.status().service().view().uptime() > described);
}

/// The status port answers only peers on the server's own subnets by
/// default: a client that comes across a router is refused with a reset
/// (before any SYN-ACK) and counted, while the reverse service serves it.
#[test]
fn the_status_port_refuses_peers_from_other_subnets() {
    let mut net = three(Duration::from_secs(2));
    net.add_foreign_address();
    let foreign = net.connect_from_foreign(STATUS_PORT);
    // One round trip: the SYN, and the reset.
    let mut established = false;
    net.run_until(Duration::from_secs(1), |n| {
        established |= n.client(foreign).state() == State::Established;
        n.client(foreign).state() == State::Closed
    });
    assert_eq!(
        (established, net.client(foreign).state()),
        (false, State::Closed),
        "a foreign peer on the status port: {}",
        net.status().stats()
    );
    let status = *net.status().stats();
    assert_eq!(
        (status.accepted, status.refused_foreign),
        (0, 1),
        "{status}"
    );
    // The same peer is served on the reverse port: every peer, by default.
    let reverse = net.connect_from_foreign(PORT);
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.client(reverse).state()
            == State::Established)
    );
    assert_eq!(net.exchange(reverse, b"abc\n", 4), b"cba\n");
    // A local client gets its snapshot, the refusal counted in it.
    let local = net.connect_port(STATUS_PORT);
    let lines = snapshot(&mut net, local);
    let counters = lines
        .iter()
        .find(|l| l[0] == "counters" && l[1] == "7001")
        .expect("the status service's counters");
    let i = counters
        .iter()
        .position(|f| f == "refused_foreign")
        .unwrap();
    assert_eq!(counters[i + 1], "1", "{counters:?}");
}

/// `Config::peers` narrows a service to the local subnets.
#[test]
fn config_peers_narrows_a_service_to_the_local_subnets() {
    let config = Config {
        clients: Some(4),
        peers: Some(Peers::LocalSubnets),
        ..Config::default()
    };
    let mut net: Three = Net::with_services(
        config,
        Reverse::default(),
        Setup::default(),
        Config::default(),
    );
    net.add_foreign_address();
    for _ in 0..3 {
        let foreign = net.connect_from_foreign(PORT);
        let mut established = false;
        net.run_until(Duration::from_secs(1), |n| {
            established |= n.client(foreign).state() == State::Established;
            n.client(foreign).state() == State::Closed
        });
        assert!(!established && net.client(foreign).state() == State::Closed);
    }
    assert_eq!(net.server.stats().refused_foreign, 3);
    // Local clients are served all along; the echo service serves anyone.
    let local = net.connect();
    assert_eq!(net.exchange(local, b"abc\n", 4), b"cba\n");
    let echo = net.connect_from_foreign(ECHO_PORT);
    assert!(
        net.run_until(Duration::from_secs(1), |n| n.client(echo).state()
            == State::Established)
    );
    assert_eq!(net.exchange(echo, b"abc\n", 4), b"abc\n");
    assert_eq!(net.server.stats().accepted, 1);
}
