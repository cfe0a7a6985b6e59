//! The conformance suite: what a running multiserve reverse server must do,
//! seen from its clients.
//!
//! Every scenario is written once against [`Target`], which hides where the
//! server runs and how the test reaches it: the host program on a TAP
//! device in a network namespace, or an emulated board behind a port
//! forward. A scenario opens real TCP connections, sends real bytes and
//! asserts the exact bytes that come back, whether a connection ends with
//! EOF or a reset, and what the server's counters say.
//!
//! Every read and write has a timeout and every loop a bound, so a broken
//! server fails a scenario instead of hanging it.
//!
//! The TAP suite (`tests/tap`) and the QEMU suite (`tests/qemu`) use it.

mod counters;
pub mod icmp;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket};

pub use counters::Counters;

/// How long any single read or write may block before the scenario fails,
/// on a link that loses nothing.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read or write may block on a link that loses frames on
/// purpose: TCP's whole retransmission schedule for one segment, not a
/// guess. smoltcp resends after at least 1 s and doubles the wait on each
/// loss of the same segment (1, 3, 7, 15, 31, 63, 127 s), and Linux resends
/// sooner; 130 s allows seven transmissions, so at 10 % loss a segment
/// outlasts it with a chance of 10^-7 (45 s, five transmissions: 10^-5,
/// about one run in 250 of a scenario with 400 segments).
pub const LOSSY_IO_TIMEOUT: Duration = Duration::from_secs(130);

/// A running multiserve server and the way to reach it.
pub trait Target: Sync {
    /// The address (and port) of the service over IPv4.
    fn addr(&self) -> SocketAddr;

    /// Opens a TCP connection to `addr` from the test's side of the network.
    /// A refused connection must come back as `ConnectionRefused`.
    fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream>;

    /// Opens a TCP connection to the service over IPv4.
    fn connect(&self) -> io::Result<TcpStream> {
        self.connect_to(self.addr())
    }

    /// A raw socket on the test's side of the network, to send ICMP to the
    /// device. Targets that cannot offer one return `Unsupported`.
    fn raw_socket(&self, domain: Domain, protocol: Protocol) -> io::Result<Socket>;

    /// The latest counters the server reported, if it has reported any.
    fn counters(&self) -> Option<Counters>;

    /// Whether the server reports counters at all; where it does not, the
    /// scenarios check what clients see and skip the counters.
    fn reports_counters(&self) -> bool {
        true
    }

    /// How long one read or write may block: [`IO_TIMEOUT`], or
    /// [`LOSSY_IO_TIMEOUT`] where the link loses frames on purpose.
    fn io_timeout(&self) -> Duration {
        IO_TIMEOUT
    }
}

/// Says loudly on stderr that `test` is skipped and `why` (the machine
/// lacks what it needs), so that it passes; with `MULTISERVE_REQUIRE_ALL=1`
/// in the environment, fails instead.
pub fn skip(test: &str, why: &str) {
    if std::env::var("MULTISERVE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and MULTISERVE_REQUIRE_ALL=1 forbids skipping");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of
    // passing tests, and a skip must not go unnoticed.
    let message = format!("\n*** SKIPPED {test}: {why} ***\n");
    let _ = io::stderr().write_all(message.as_bytes());
}

// ---------------------------------------------------------------------------
// Helpers shared by the scenarios.

/// A connection to the service over IPv4 with timeouts and `TCP_NODELAY` set.
pub fn client(t: &dyn Target) -> TcpStream {
    client_to(t, t.addr())
}

/// A connection to `addr` with timeouts and `TCP_NODELAY` set.
pub fn client_to(t: &dyn Target, addr: SocketAddr) -> TcpStream {
    let stream = t
        .connect_to(addr)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    prepare(t, &stream);
    stream
}

/// Give a connection the target's timeouts and `TCP_NODELAY`.
pub fn prepare(t: &dyn Target, stream: &TcpStream) {
    stream
        .set_read_timeout(Some(t.io_timeout()))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(t.io_timeout()))
        .expect("write timeout");
    stream.set_nodelay(true).expect("TCP_NODELAY");
}

/// Bytes shown with escapes, so that assertion messages are readable.
pub fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Sends all of `bytes`.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream
        .write_all(bytes)
        .unwrap_or_else(|e| panic!("send {:?}: {e}", shown(bytes)));
}

/// Reads exactly `n` bytes; on failure says what did arrive.
pub fn receive(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match stream.read(&mut got[filled..]) {
            Ok(0) => panic!(
                "EOF after {filled} of {n} bytes: {:?}",
                shown(&got[..filled])
            ),
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "read failed after {filled} of {n} bytes ({e}): {:?}",
                shown(&got[..filled.min(200)])
            ),
        }
    }
    got
}

/// Reads exactly as many bytes as `expected` and checks they are equal.
pub fn expect(stream: &mut TcpStream, expected: &[u8]) {
    let got = receive(stream, expected.len());
    if got != expected {
        let at = got.iter().zip(expected).position(|(a, b)| a != b);
        let from = at.unwrap_or(0).saturating_sub(40);
        let to = (from + 120).min(got.len());
        panic!(
            "wrong answer ({} bytes, first difference at {at:?}):\n  got      {:?}\n  expected {:?}",
            got.len(),
            shown(&got[from..to]),
            shown(&expected[from..to])
        );
    }
}

/// Sends `request` and checks that the answer is exactly `answer`.
pub fn exchange(stream: &mut TcpStream, request: &[u8], answer: &[u8]) {
    send(stream, request);
    expect(stream, answer);
}

/// Reads one line (up to and including `\n`, at most 4096 bytes); `None` at
/// EOF before any byte.
pub fn read_line(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 4096 {
        match stream.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Ok(Some(line)),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Ok(Some(line));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(line))
}

/// Checks that the server closed the connection in order: the next read
/// returns 0 (FIN), not a reset, a timeout or more data.
pub fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected EOF, got {n} more bytes: {:?}", shown(&buf[..n])),
        Err(e) => panic!(
            "expected EOF (orderly close), got error: {e} ({:?})",
            e.kind()
        ),
    }
}

/// Checks that nothing arrives for `quiet`.
pub fn expect_silence(stream: &mut TcpStream, quiet: Duration) {
    let before = stream.read_timeout().expect("read timeout");
    stream.set_read_timeout(Some(quiet)).expect("read timeout");
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => panic!("expected silence, got EOF"),
        Ok(n) => panic!("expected silence, got {:?}", shown(&buf[..n])),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        Err(e) => panic!("expected silence, got error: {e}"),
    }
    stream.set_read_timeout(before).expect("read timeout");
}

/// `line` reversed byte by byte (what the server answers for ASCII content),
/// the `\n` kept at the end.
pub fn reversed_line(line: &[u8]) -> Vec<u8> {
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let mut answer: Vec<u8> = content.iter().rev().copied().collect();
    answer.push(b'\n');
    answer
}

/// The line a full server sends before closing.
pub fn busy_line(clients: usize) -> Vec<u8> {
    format!("busy: all {clients} slots are in use, try again later\n").into_bytes()
}

/// Waits (at most `within`) until the server reports counters that satisfy
/// `ok`, and returns them; `None` at once for a target without counters.
pub fn wait_counters(
    t: &dyn Target,
    what: &str,
    within: Duration,
    ok: impl Fn(&Counters) -> bool,
) -> Option<Counters> {
    if !t.reports_counters() {
        return None;
    }
    let deadline = Instant::now() + within;
    loop {
        let latest = t.counters();
        if let Some(c) = latest {
            assert_consistent(&c);
        }
        if let Some(c) = latest.filter(|c| ok(c)) {
            return Some(c);
        }
        if Instant::now() >= deadline {
            panic!("counters never showed {what} within {within:?}; latest: {latest:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the counters' invariant: every accepted connection is either
/// active or ended in exactly one way.
pub fn assert_consistent(c: &Counters) {
    assert_eq!(
        c.accepted,
        c.active + c.ended(),
        "accepted != active + closed_by_peer + closed_by_server + reset + timed_out: {c:?}"
    );
    assert!(c.peak_active >= c.active, "peak below active: {c:?}");
}

/// Opens `n` clients and has each of them complete one round trip, so each
/// holds a client place for sure. Every one is served at its first
/// attempt: a client told busy or refused while fewer than the capacity
/// are connected is a failure, not something to retry.
pub fn occupy(t: &dyn Target, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let line = format!("occupant {i}\n");
            let mut s = client(t);
            send(&mut s, line.as_bytes());
            let answer = read_line(&mut s).unwrap_or_else(|e| panic!("occupant {i}: {e}"));
            match answer {
                Some(a) if a == reversed_line(line.as_bytes()) => s,
                other => panic!("occupant {i} got {:?}", other.as_deref().map(shown)),
            }
        })
        .collect()
}

/// One new client, served at its first attempt.
pub fn served_at_once(t: &dyn Target) -> TcpStream {
    let mut s = t
        .connect()
        .unwrap_or_else(|e| panic!("a new client could not connect: {e}"));
    prepare(t, &s);
    exchange(&mut s, b"served\n", b"devres\n");
    s
}

// ---------------------------------------------------------------------------
// Reachability.

/// The device answers ICMP echo requests at `ip` (v4 or v6) with the same
/// identifier, sequence number and payload.
pub fn answers_ping(t: &dyn Target, ip: IpAddr) {
    let socket = match ip {
        IpAddr::V4(_) => t.raw_socket(Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => t.raw_socket(Domain::IPV6, Protocol::ICMPV6),
    }
    .unwrap_or_else(|e| panic!("raw ICMP socket: {e}"));
    for seq in 1..=3 {
        icmp::ping(&socket, ip, 0x4d53, seq).unwrap_or_else(|e| panic!("ping {ip} #{seq}: {e}"));
    }
}

/// A TCP connection to `addr` is served: the exchange works over it.
pub fn exchanges_over(t: &dyn Target, addr: SocketAddr) {
    let mut s = client_to(t, addr);
    let line = format!("reached over {addr}\n");
    exchange(&mut s, line.as_bytes(), &reversed_line(line.as_bytes()));
}

// ---------------------------------------------------------------------------
// The reverse service.

/// The lecture's example: `hello` comes back as `olleh`.
pub fn reverses_a_line(t: &dyn Target) {
    let mut s = client(t);
    exchange(&mut s, b"hello\n", b"olleh\n");
}

/// Valid UTF-8 is reversed by character, not by byte.
pub fn reverses_utf8_by_character(t: &dyn Target) {
    let mut s = client(t);
    exchange(&mut s, "Olá, mundo\n".as_bytes(), "odnum ,álO\n".as_bytes());
}

/// A line ending in `\r\n` is answered with `\r\n`.
pub fn keeps_crlf(t: &dyn Target) {
    let mut s = client(t);
    exchange(&mut s, b"hello\r\n", b"olleh\r\n");
}

/// Bytes that are not valid UTF-8 are reversed one by one, and valid
/// characters around them stay whole.
pub fn reverses_invalid_utf8_byte_by_byte(t: &dyn Target) {
    let mut s = client(t);
    exchange(&mut s, b"a\xff\xfeb\n", b"b\xfe\xffa\n");
    exchange(&mut s, b"\xc3\xa9\xffz\n", b"z\xff\xc3\xa9\n");
}

/// Several lines in one write get one answer each, in order.
pub fn answers_pipelined_lines_in_order(t: &dyn Target) {
    let mut s = client(t);
    exchange(
        &mut s,
        b"one\ntwo\r\nthree\n\nfour\n",
        b"eno\nowt\r\neerht\n\nruof\n",
    );
}

/// A line that arrives in many small segments is answered once, when its
/// `\n` arrives, and not before.
pub fn answers_a_line_split_over_many_writes(t: &dyn Target) {
    let mut s = client(t);
    let line = b"split over many writes";
    for byte in line {
        send(&mut s, std::slice::from_ref(byte));
        thread::sleep(Duration::from_millis(5));
    }
    expect_silence(&mut s, Duration::from_millis(200));
    exchange(&mut s, b"\n", b"setirw ynam revo tilps\n");
}

/// A line longer than the maximum gets the error line, a line of exactly
/// the maximum is still answered, and the connection keeps working.
pub fn rejects_an_overlong_line_and_goes_on(t: &dyn Target, max_line: usize) {
    let mut s = client(t);
    let mut overlong = vec![b'x'; max_line + 1];
    overlong.push(b'\n');
    let error = format!("error: line longer than {max_line} bytes\n");
    exchange(&mut s, &overlong, error.as_bytes());
    let longest: Vec<u8> = (0..max_line).map(|i| b'a' + (i % 26) as u8).collect();
    let mut line = longest.clone();
    line.push(b'\n');
    exchange(&mut s, &line, &reversed_line(&line));
    exchange(&mut s, b"still here\n", b"ereh llits\n");
}

/// With `--framing chunk`, the lecture's client sends a message without a
/// newline and one read returns it reversed.
pub fn chunk_framing_answers_without_newline(t: &dyn Target) {
    let mut s = client(t);
    send(&mut s, b"hello");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).expect("read the answer");
    assert_eq!(shown(&buf[..n]), "olleh", "one read, one reversed chunk");
}

/// `n` round trips, each answer exact, spread over `connections`
/// connections running side by side (for unreliable links: TCP must recover
/// every loss; several connections keep the waits for retransmissions from
/// adding up).
pub fn round_trips_are_exact(t: &dyn Target, n: usize, connections: usize) {
    thread::scope(|scope| {
        for c in 0..connections {
            scope.spawn(move || {
                let mut s = client(t);
                for i in (c..n).step_by(connections) {
                    let line = format!("round trip {i:04} over an unreliable link\n");
                    exchange(&mut s, line.as_bytes(), &reversed_line(line.as_bytes()));
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------
// The pool.

/// `n` clients connected at once, requests interleaved across them: every
/// answer reaches the right client, exact.
pub fn serves_clients_at_once(t: &dyn Target, n: usize) {
    let mut clients: Vec<TcpStream> = (0..n).map(|_| client(t)).collect();
    for round in 0..3 {
        let line = |i: usize| format!("client {i:02} round {round}\n");
        for (i, s) in clients.iter_mut().enumerate() {
            send(s, line(i).as_bytes());
        }
        // Read in the opposite order to the sends.
        for (i, s) in clients.iter_mut().enumerate().rev() {
            expect(s, &reversed_line(line(i).as_bytes()));
        }
    }
}

/// With all `clients` places taken, the next client waits the server's
/// queue wait (`wait`) for a place, then gets the busy line and EOF; once
/// a client leaves, a new one is served at once.
pub fn full_server_answers_busy(t: &dyn Target, clients: usize, wait: Duration) {
    let mut occupants = occupy(t, clients);
    let start = Instant::now();
    let mut extra = client(t);
    expect(&mut extra, &busy_line(clients));
    let elapsed = start.elapsed();
    expect_eof(&mut extra);
    assert!(
        elapsed + Duration::from_millis(50) >= wait && elapsed < wait + Duration::from_millis(500),
        "busy line after {elapsed:?}; the queue wait is {wait:?}"
    );
    occupants.pop();
    let mut next = served_at_once(t);
    exchange(&mut next, b"in\n", b"ni\n");
}

/// A client that connects while every place is taken is served as soon as
/// an occupant leaves within the queue wait: it waits, it is not told busy.
pub fn waiting_client_gets_the_next_free_place(t: &dyn Target, clients: usize, after: Duration) {
    let mut occupants = occupy(t, clients);
    let mut waiting = client(t);
    send(&mut waiting, b"let me in\n");
    thread::sleep(after);
    drop(occupants.pop());
    expect(&mut waiting, b"ni em tel\n");
    for (i, s) in occupants.iter_mut().enumerate() {
        let line = format!("still served {i}\n");
        exchange(s, line.as_bytes(), &reversed_line(line.as_bytes()));
    }
}

/// With `--when-full reset` and no queue wait, the next client's connect is
/// refused within 100 ms; once a client leaves, a new one is served at
/// once.
pub fn full_server_refuses(t: &dyn Target, clients: usize) {
    let mut occupants = occupy(t, clients);
    let start = Instant::now();
    let result = t.connect();
    let elapsed = start.elapsed();
    match result {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
        Err(e) => panic!("expected connection refused, got {e}"),
        Ok(mut s) => {
            prepare(t, &s);
            let answer = read_line(&mut s);
            panic!("expected connection refused, got a connection; it says {answer:?}");
        }
    }
    assert!(
        elapsed < Duration::from_millis(100),
        "refusal took {elapsed:?}"
    );
    occupants.pop();
    let mut next = served_at_once(t);
    exchange(&mut next, b"in\n", b"ni\n");
}

/// A client writes `total` bytes of lines and does not read. Meanwhile
/// another client's round trips are answered; then the first one reads every
/// answer, in order, exact.
pub fn stalled_reader_does_not_block_others(t: &dyn Target, total: usize, round_trips: usize) {
    let mut request = Vec::with_capacity(total + 64);
    let mut answer = Vec::with_capacity(total + 64);
    let mut i = 0u32;
    while request.len() < total {
        let line = format!("{i:07} a client that writes and does not read\n");
        request.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(&reversed_line(line.as_bytes()));
        i += 1;
    }
    let mut stalled = client(t);
    // Small kernel buffers on the client, so that flow control, not the
    // client's own memory, is what holds the writer back.
    let sock = SockRef::from(&stalled);
    sock.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    sock.set_send_buffer_size(64 * 1024).expect("SO_SNDBUF");
    let mut writer_side = stalled.try_clone().expect("clone the stream");
    let written = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&written);
    let writer = thread::spawn(move || -> io::Result<()> {
        for chunk in request.chunks(16 * 1024) {
            writer_side.write_all(chunk)?;
            progress.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        Ok(())
    });

    // Wait (bounded) until the writer is held back by closed windows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = usize::MAX;
    while Instant::now() < deadline && !writer.is_finished() {
        let now = written.load(Ordering::SeqCst);
        if now == seen {
            break;
        }
        seen = now;
        thread::sleep(Duration::from_millis(300));
    }
    let held_at = written.load(Ordering::SeqCst);
    assert!(
        held_at < answer.len(),
        "premise: the writer should be held back by flow control, but wrote all {held_at} bytes"
    );

    let mut other = client(t);
    for k in 0..round_trips {
        let line = format!("meanwhile {k}\n");
        exchange(&mut other, line.as_bytes(), &reversed_line(line.as_bytes()));
    }

    expect(&mut stalled, &answer);
    writer
        .join()
        .expect("writer thread")
        .expect("the writer sent everything");
    exchange(&mut stalled, b"done\n", b"enod\n");
}

/// `cycles` connect/request/close cycles, `workers` at a time: every one is
/// answered and closed in order.
pub fn short_connections_are_all_served(t: &dyn Target, cycles: usize, workers: usize) {
    thread::scope(|scope| {
        for w in 0..workers {
            scope.spawn(move || {
                for i in (w..cycles).step_by(workers) {
                    let mut s = client(t);
                    let line = format!("cycle {i}\n");
                    exchange(&mut s, line.as_bytes(), &reversed_line(line.as_bytes()));
                    s.shutdown(Shutdown::Write).expect("shutdown");
                    expect_eof(&mut s);
                }
            });
        }
    });
}

/// Clients that leave make room at once: `clients` occupants close right
/// after their last answer and as many newcomers connect right after them,
/// `rounds` times. Every newcomer is served at its first attempt.
pub fn leaving_clients_make_room_at_once(t: &dyn Target, clients: usize, rounds: usize) {
    let mut occupants = occupy(t, clients);
    for round in 0..rounds {
        drop(occupants);
        occupants = (0..clients)
            .map(|i| {
                let mut s = t.connect().unwrap_or_else(|e| {
                    panic!("round {round}: newcomer {i} could not connect: {e}")
                });
                prepare(t, &s);
                let line = format!("round {round} newcomer {i}\n");
                send(&mut s, line.as_bytes());
                match read_line(&mut s) {
                    Ok(Some(a)) if a == reversed_line(line.as_bytes()) => s,
                    other => panic!("round {round}: newcomer {i} got {other:?}"),
                }
            })
            .collect();
    }
}

/// What a churn run came to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Churn {
    /// Cycles answered exactly.
    pub cycles: usize,
    /// Connects answered with the busy line.
    pub busy: usize,
    /// Connects refused, or reset before an answer.
    pub refused: usize,
}

/// Churn: `clients` clients that each connect, send one line, read the
/// answer, close and connect again at once, for `duration`. Every answer
/// must be exact; the outcomes are counted (a client never holds more than
/// one connection, so with `clients` at most the capacity none may be
/// told busy or refused: the caller asserts that).
pub fn churn(t: &dyn Target, clients: usize, duration: Duration) -> Churn {
    let end = Instant::now() + duration;
    let results: Vec<Churn> = thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|w| {
                scope.spawn(move || {
                    let mut c = Churn::default();
                    while Instant::now() < end {
                        let mut s = match t.connect() {
                            Ok(s) => s,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    io::ErrorKind::ConnectionRefused
                                        | io::ErrorKind::ConnectionReset
                                ) =>
                            {
                                c.refused += 1;
                                continue;
                            }
                            Err(e) => panic!("churn client {w}: connect: {e}"),
                        };
                        prepare(t, &s);
                        let line = format!("churn {w} cycle {}\n", c.cycles);
                        match s.write_all(line.as_bytes()) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                                c.refused += 1;
                                continue;
                            }
                            Err(e) => panic!("churn client {w}: send: {e}"),
                        }
                        match read_line(&mut s) {
                            Ok(Some(a)) if a == reversed_line(line.as_bytes()) => c.cycles += 1,
                            Ok(Some(a)) if a.starts_with(b"busy:") => c.busy += 1,
                            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => c.refused += 1,
                            other => panic!("churn client {w}: {line:?} got {other:?}"),
                        }
                        // Close right after the answer, as clients do.
                    }
                    c
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("churn worker"))
            .collect()
    });
    results.iter().fold(Churn::default(), |a, c| Churn {
        cycles: a.cycles + c.cycles,
        busy: a.busy + c.busy,
        refused: a.refused + c.refused,
    })
}

/// After earlier clients left, every one of the `clients` slots is free:
/// the counters show no active connection, and `clients` simultaneous
/// clients are all served.
pub fn all_slots_are_free(t: &dyn Target, clients: usize) {
    wait_counters(t, "no active connection", Duration::from_secs(5), |c| {
        c.active == 0
    });
    let mut all = occupy(t, clients);
    for (i, s) in all.iter_mut().enumerate() {
        let line = format!("all {i} free\n");
        exchange(s, line.as_bytes(), &reversed_line(line.as_bytes()));
    }
}

// ---------------------------------------------------------------------------
// How connections end.

/// A client that resets its connection (SO_LINGER 0) frees its slot: the
/// next client is served and the counters count the reset.
pub fn reset_frees_the_slot(t: &dyn Target) {
    let mut s = client(t);
    exchange(&mut s, b"then reset\n", b"teser neht\n");
    SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(s);
    let mut next = served_at_once(t);
    exchange(&mut next, b"after reset\n", b"teser retfa\n");
    wait_counters(t, "reset >= 1", Duration::from_secs(5), |c| c.reset >= 1);
}

/// A client that half-closes gets every answer (the last line without `\n`
/// too), then EOF; the slot serves again and the counters count a close by
/// the peer.
pub fn half_close_gets_answers_then_eof(t: &dyn Target) {
    let mut s = client(t);
    send(&mut s, b"first\nsecond\nlast");
    s.shutdown(Shutdown::Write).expect("shutdown(Write)");
    expect(&mut s, b"tsrif\ndnoces\ntsal");
    expect_eof(&mut s);
    let mut next = served_at_once(t);
    exchange(&mut next, b"after\n", b"retfa\n");
    wait_counters(t, "closed by peer >= 1", Duration::from_secs(5), |c| {
        c.closed_by_peer >= 1
    });
}

/// Clients that stay silent are closed (EOF, not a reset) after the idle
/// timeout. While they have not closed their side yet, they hold no place:
/// with all `clients` places idled out, as many new clients are served at
/// once. The counters count them.
pub fn idle_clients_are_closed(t: &dyn Target, clients: usize, idle: Duration) {
    let mut idlers = occupy(t, clients);
    let start = Instant::now();
    for s in &mut idlers {
        s.set_read_timeout(Some(idle + IO_TIMEOUT))
            .expect("read timeout");
        expect_eof(s);
    }
    let after = start.elapsed();
    assert!(
        after >= idle.mul_f32(0.8) && after <= idle + Duration::from_secs(2),
        "closed after {after:?}, idle timeout {idle:?}"
    );
    // The idle clients keep their sockets open: the server's sockets wait
    // for their FINs, without holding a place.
    let mut fresh = occupy(t, clients);
    for (i, s) in fresh.iter_mut().enumerate() {
        let line = format!("after idle {i}\n");
        exchange(s, line.as_bytes(), &reversed_line(line.as_bytes()));
    }
    drop(idlers);
    wait_counters(t, "idle >= clients", Duration::from_secs(5), |c| {
        c.timed_out >= clients as u64
    });
}
