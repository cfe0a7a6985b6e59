//! The emulated boards, tested for real: each board's firmware booted in
//! QEMU, reached through QEMU's user network from kernel TCP clients,
//! running the same conformance suite as the TAP tests, after a look at
//! the board's status service (port 7001, forwarded too) while 8 clients
//! are held. The suite reads the board's counters from that service. One
//! test per board:
//! the Arm MPS2 AN385 (`qemu-system-arm`) and the RISC-V `virt` machine
//! (`qemu-system-riscv32`). The two run one after the other, so that each
//! suite's timing is its own.
//!
//! QEMU's user network accepts a TCP connect before the guest has even
//! started, so a successful connect proves nothing: the test waits for the
//! firmware's own `serving on` log line first.
//!
//! Needs the board's QEMU and Rust target; without them the test says so
//! loudly on stderr and passes, unless `MULTISERVE_REQUIRE_ALL=1` makes
//! that a failure.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket};

use conformance::{Counters, Target};
/// The scenarios, shared with the TAP suite.
use multiserve_conformance as conformance;

/// Clients every board serves at once: its capacity (`firmware/board`).
const CLIENTS: usize = 8;
/// The boards' queue wait: the default of the core's `Config`.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// The idle timeout the test image is built with. Not shorter: QEMU's
/// port forward listens with a backlog of 1, so when several clients
/// connect at once the kernel drops some SYNs and their connects take a
/// retransmission (1 s, then 2 s more) to get through, while the clients
/// that got in first sit idle waiting for the others.
const IDLE: Duration = Duration::from_secs(10);

/// An emulated board: its crate and the QEMU that runs it.
struct Emulated {
    /// The board's folder under `firmware/`; its binary is
    /// `multiserve-<dir>`, and its `run-qemu.sh PORT ELF` boots it.
    dir: &'static str,
    /// The board's Rust target.
    target: &'static str,
    /// The QEMU program `run-qemu.sh` runs, and the Debian package with it.
    qemu: &'static str,
    package: &'static str,
}

const AN385: Emulated = Emulated {
    dir: "mps2-an385",
    target: "thumbv7m-none-eabi",
    qemu: "qemu-system-arm",
    package: "qemu-system-arm",
};

const RISCV32_VIRT: Emulated = Emulated {
    dir: "qemu-riscv32",
    target: "riscv32imac-unknown-none-elf",
    qemu: "qemu-system-riscv32",
    package: "qemu-system-misc",
};

/// Held while a board runs its suite: one QEMU at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Emulated {
    fn dir(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../firmware")
            .join(self.dir)
    }

    /// Build the test image: the board's release build with a short idle
    /// timeout, in a target folder of its own (the normal image keeps
    /// 300 s).
    fn build_image(&self) -> Result<PathBuf, String> {
        let dir = self.dir();
        let target_dir = dir.join("target/idle-test");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--locked"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("MULTISERVE_IDLE_TIMEOUT_SECS", IDLE.as_secs().to_string())
            // The outer `cargo test` sets these for the host; not for the board.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building the {} image failed ({status})", self.dir));
        }
        Ok(target_dir
            .join(self.target)
            .join("release")
            .join(format!("multiserve-{}", self.dir)))
    }
}

/// Skip loudly, or fail where skips are forbidden.
fn skip(why: &str) {
    conformance::skip("qemu", why);
}

/// QEMU running the board, stopped by PID when dropped.
struct Board {
    qemu: Child,
    addr: SocketAddr,
    /// The board's status service (guest port 7001), forwarded too.
    status_addr: SocketAddr,
    log: Mutex<mpsc::Receiver<String>>,
}

impl Board {
    fn boot(board: &Emulated, image: &Path) -> Board {
        // Two free ports on loopback for QEMU to forward, both held until
        // both are known so that they differ.
        let free = || TcpListener::bind("127.0.0.1:0").expect("a free port");
        let (service, status) = (free(), free());
        let port = service.local_addr().expect("a free port").port();
        let status_port = status.local_addr().expect("a free port").port();
        drop((service, status));
        let mut qemu = Command::new(board.dir().join("run-qemu.sh"))
            .arg(port.to_string())
            .arg(image)
            .env("STATUS_PORT", status_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start QEMU");
        let (tx, log) = mpsc::channel();
        let stdout = qemu.stdout.take().expect("QEMU's stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let running = Board {
            qemu,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            status_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, status_port)),
            log: Mutex::new(log),
        };
        running.wait_for("serving on ", Duration::from_secs(60));
        running
    }

    fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let log = self.log.lock().expect("log lock");
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match log.recv_timeout(left) {
                Ok(line) => {
                    if line.contains(needle) {
                        return;
                    }
                    seen.push(line);
                }
                Err(_) => break,
            }
        }
        panic!(
            "the board never logged {needle:?} within {within:?}; it logged:\n{}",
            seen.join("\n")
        );
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

impl Target for Board {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    }

    fn raw_socket(&self, _: Domain, _: Protocol) -> io::Result<Socket> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "QEMU's user network does not deliver inbound ICMP",
        ))
    }

    /// The reverse service's counters, from the status service: a new
    /// status client each time, which must be served at once.
    fn counters(&self) -> Option<Counters> {
        let mut watcher = Watcher::connect(self);
        let snapshot = watcher.snapshot();
        watcher.leave();
        let pairs = snapshot
            .iter()
            .find_map(|line| line.strip_prefix("counters 7000 "))
            .unwrap_or_else(|| panic!("no counters of port 7000 in {snapshot:#?}"));
        let counters = counters_of(pairs);
        Some(counters.unwrap_or_else(|| panic!("not every counter once: {pairs}")))
    }
}

/// The `name value` pairs of a status `counters` line as [`Counters`], if
/// every counter is there exactly once: the same names as the `stats:`
/// line, without its commas.
fn counters_of(pairs: &str) -> Option<Counters> {
    let words: Vec<&str> = pairs.split(' ').collect();
    if !words.len().is_multiple_of(2) {
        return None;
    }
    let pairs: Vec<String> = words.chunks(2).map(|pair| pair.join(" ")).collect();
    Counters::parse(&pairs.join(", "))
}

/// A 10 MB exchange of lines, every answer byte checked.
fn bulk_exchange_is_exact(t: &dyn Target, total: usize) {
    let mut request = Vec::with_capacity(total + 1024);
    let mut answer = Vec::with_capacity(total + 1024);
    let mut i = 0u64;
    while request.len() < total {
        let line = format!("{i:09} {}\n", "bulk line of the board test ".repeat(30));
        request.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(&conformance::reversed_line(line.as_bytes()));
        i += 1;
    }
    let mut stream = conformance::client(t);
    let mut writer = stream.try_clone().expect("clone");
    let sender = thread::spawn(move || writer.write_all(&request));
    let mut got = vec![0u8; answer.len()];
    let mut filled = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while filled < got.len() {
        assert!(Instant::now() < deadline, "bulk stalled at {filled} bytes");
        match stream.read(&mut got[filled..]) {
            Ok(0) => panic!("EOF after {filled} of {} bytes", got.len()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("read after {filled} bytes: {e}"),
        }
    }
    sender.join().expect("writer").expect("all sent");
    let first_difference = got.iter().zip(&answer).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "answers differ");
}

/// Where the board sees a client of the host from. QEMU's user network
/// (slirp) accepts a forwarded connection on the host and opens one of its
/// own to the guest: from the virtual host 10.0.2.2 (the client's address,
/// 127.0.0.1, is loopback, which slirp rewrites to that host), and from the
/// client's own source port (slirp keeps the port of the socket it
/// accepted). So a client on `127.0.0.1:P` is `10.0.2.2:P` on the board.
fn seen_by_the_board(stream: &TcpStream) -> String {
    let port = stream.local_addr().expect("local address").port();
    format!("{}:{port}", Ipv4Addr::new(10, 0, 2, 2))
}

/// The error lines of the status service.
const UNKNOWN_REQUEST: &[u8] =
    b"error: unknown request; send an empty line, \"text\" or \"json\"\n";
const LONG_REQUEST: &[u8] = b"error: request longer than 64 bytes\n";

/// A connection to the board's status service, read line by line.
struct Watcher {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Watcher {
    fn connect(board: &Board) -> Watcher {
        let stream = conformance::client_to(board, board.status_addr);
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Watcher { stream, reader }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("status: EOF"),
            Ok(_) => {}
            Err(e) => panic!("status: read after {line:?}: {e}"),
        }
        line.strip_suffix('\n')
            .unwrap_or_else(|| panic!("status: line without its end: {line:?}"))
            .to_owned()
    }

    /// One text snapshot: its lines up to and including `end`.
    fn snapshot(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let end = line == "end";
            lines.push(line);
            if end {
                return lines;
            }
            assert!(lines.len() < 100, "status: no `end` line: {lines:#?}");
        }
    }

    /// Closes the client's side and checks that the server closes its
    /// side too, in order.
    fn leave(mut self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let mut rest = String::new();
        match self.reader.read_line(&mut rest) {
            Ok(0) => {}
            Ok(_) => panic!("status: after the client left: {rest:?}"),
            Err(e) => panic!("status: no orderly close after the client left: {e}"),
        }
    }

    fn expect(&mut self, line: &[u8]) {
        let got = self.line();
        assert_eq!(
            got.as_bytes(),
            line.strip_suffix(b"\n").unwrap_or(line),
            "status answer"
        );
    }
}

/// Checks a text snapshot taken while `held` are served, each having sent
/// and received `bytes` bytes, and `watcher` is the one status client: it
/// lists every socket in use (12 reverse, 2 status), and exactly one
/// `serving` row on port 7000 per held client, from where the board sees
/// that client (see [`seen_by_the_board`]).
/// Returns the snapshot's uptime.
fn check_snapshot(lines: &[String], held: &[TcpStream], bytes: usize, watcher: &TcpStream) -> u64 {
    let all = || lines.join("\n");
    let header: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(header.len(), 9, "header: {}", all());
    assert_eq!(header[..2], ["status", "uptime_ms"], "header: {}", all());
    let uptime = header[2]
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("uptime: {}", all()));
    assert_eq!(
        header[3..],
        ["services", "2", "sockets", "14", "unlisted", "0"],
        "{}",
        all()
    );
    for service in [
        "service 7000 reverse clients 8 spare 4",
        "service 7001 status clients 1 spare 1",
    ] {
        assert!(
            lines.iter().any(|l| l == service),
            "no {service:?} in:\n{}",
            all()
        );
    }
    let counters = lines
        .iter()
        .find(|l| l.starts_with("counters 7000 "))
        .unwrap_or_else(|| panic!("no counters of port 7000 in:\n{}", all()));
    assert!(
        counters.starts_with("counters 7000 active 8 "),
        "{counters}"
    );

    let sockets: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("socket "))
        .map(|l| l.split(' ').collect())
        .collect();
    assert_eq!(sockets.len(), 14, "socket rows:\n{}", all());
    for (i, row) in sockets.iter().enumerate() {
        assert_eq!(row.len(), 9, "socket row {i}:\n{}", all());
        assert_eq!(
            row[1],
            i.to_string(),
            "socket rows out of order:\n{}",
            all()
        );
    }
    let serving: Vec<&Vec<&str>> = sockets
        .iter()
        .filter(|row| row[2] == "7000" && row[3] == "serving")
        .collect();
    assert_eq!(
        serving.len(),
        held.len(),
        "serving rows on 7000:\n{}",
        all()
    );
    let mut peers: Vec<String> = serving.iter().map(|row| row[5].to_owned()).collect();
    let mut expected: Vec<String> = held.iter().map(seen_by_the_board).collect();
    peers.sort();
    expected.sort();
    assert_eq!(peers, expected, "peers of the serving rows:\n{}", all());
    for row in &serving {
        assert_eq!(row[4], "ESTABLISHED", "{}", all());
        assert_eq!(
            row[6..8],
            [bytes.to_string(), bytes.to_string()],
            "bytes in, out:\n{}",
            all()
        );
    }
    let status_rows: Vec<&Vec<&str>> = sockets
        .iter()
        .filter(|row| row[2] == "7001" && row[3] == "serving")
        .collect();
    assert_eq!(status_rows.len(), 1, "serving rows on 7001:\n{}", all());
    assert_eq!(status_rows[0][5], seen_by_the_board(watcher), "{}", all());
    uptime
}

/// The board's status service, watched while 8 clients are held: the
/// snapshot lists them, requests that are not requests get the error
/// lines, and the reverse clients are served all along; then
/// `multiserve watch --once` lists them too.
fn status_lists_the_held_clients(board: &Board) {
    // Each held client sent `occupant N\n` and got its answer: 11 bytes
    // each way.
    let mut held = conformance::occupy(board, CLIENTS);
    let mut watcher = Watcher::connect(board);
    let snapshot = watcher.snapshot();
    eprintln!("{}", snapshot.join("\n"));
    let first = check_snapshot(&snapshot, &held, 11, &watcher.stream);
    // The uptime counts from the loop's first poll step, before the board
    // had its address.
    assert!(first > 0, "uptime 0 after the board served 8 clients");

    // Nothing a client sends changes anything: garbage gets the error line.
    conformance::send(&mut watcher.stream, b"garbage\n");
    watcher.expect(UNKNOWN_REQUEST);
    conformance::send(&mut watcher.stream, b"\x00\xff\x1b[2J\x7f\r\n");
    watcher.expect(UNKNOWN_REQUEST);
    conformance::send(&mut watcher.stream, &[b'x'; 300]);
    conformance::send(&mut watcher.stream, b"\n");
    watcher.expect(LONG_REQUEST);
    for (i, client) in held.iter_mut().enumerate() {
        let line = format!("again {i}\n");
        conformance::exchange(
            client,
            line.as_bytes(),
            &conformance::reversed_line(line.as_bytes()),
        );
    }
    // `again N\n`: 8 bytes more each way.
    conformance::send(&mut watcher.stream, b"text\r\n");
    let second = check_snapshot(&watcher.snapshot(), &held, 19, &watcher.stream);
    assert!(
        second >= first,
        "uptime went back from {first} to {second} ms"
    );
    conformance::send(&mut watcher.stream, b"json\n");
    let json = watcher.line();
    assert!(
        json.starts_with("{\"uptime_ms\":") && json.ends_with('}'),
        "{json}"
    );
    assert_eq!(
        json.matches("\"port\":7000,\"role\":\"serving\"").count(),
        CLIENTS,
        "{json}"
    );
    for client in &held {
        let peer = format!("\"peer\":\"{}\"", seen_by_the_board(client));
        assert!(json.contains(&peer), "no {peer} in {json}");
    }

    watcher.leave();

    // The host's `multiserve watch --once` (a JSON snapshot, printed as a
    // table) lists the same 8 clients, from the same place.
    let watch = Command::new(env!("CARGO_BIN_EXE_multiserve"))
        .args(["watch", &board.status_addr.to_string(), "--once"])
        .output()
        .expect("run multiserve watch");
    let table = String::from_utf8_lossy(&watch.stdout);
    assert!(
        watch.status.success(),
        "multiserve watch --once: {}\n{table}{}",
        watch.status,
        String::from_utf8_lossy(&watch.stderr)
    );
    eprintln!("{table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|line| !line.starts_with("index "))
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 14, "socket rows of watch --once:\n{table}");
    let serving: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|row| row[1] == "7000" && row[2] == "serving")
        .collect();
    let mut peers: Vec<String> = serving.iter().map(|row| row[4].to_owned()).collect();
    let mut expected: Vec<String> = held.iter().map(seen_by_the_board).collect();
    peers.sort();
    expected.sort();
    assert_eq!(
        peers, expected,
        "serving rows on 7000 in watch --once:\n{table}"
    );
    for row in &serving {
        assert_eq!(
            (row[3], row[5], row[6]),
            ("ESTABLISHED", "19", "19"),
            "{table}"
        );
    }
    drop(held);
}

/// Boots `board` and runs the conformance suite against it.
fn conformance_suite_on(board: &Emulated) {
    if Command::new(board.qemu).arg("--version").output().is_err() {
        return skip(&format!(
            "{} is not installed (apt-get install {})",
            board.qemu, board.package
        ));
    }
    let image = match board.build_image() {
        Ok(image) => image,
        Err(e) => return skip(&e),
    };
    // A suite that failed on the other board leaves the lock poisoned; the
    // lock only orders the runs, so take it anyway.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let running = Board::boot(board, &image);
    let t: &dyn Target = &running;
    let name = board.dir;
    // No waits between steps: a client that left holds no place while its
    // socket finishes closing, so each step starts at once.
    let step = |step: &str| eprintln!("qemu {name}: {step}");

    step("the status service lists 8 held clients, ignores garbage");
    status_lists_the_held_clients(&running);

    step("reverse, UTF-8, CRLF, pipelined, split lines");
    conformance::reverses_a_line(t);
    conformance::reverses_utf8_by_character(t);
    conformance::keeps_crlf(t);
    conformance::answers_pipelined_lines_in_order(t);
    conformance::answers_a_line_split_over_many_writes(t);
    step("8 clients at once");
    conformance::serves_clients_at_once(t, CLIENTS);
    step("the 9th client is told busy");
    conformance::full_server_answers_busy(t, CLIENTS, QUEUE_WAIT);
    step("8 clients leave and 8 connect at once, 100 times");
    conformance::leaving_clients_make_room_at_once(t, CLIENTS, 100);
    step("overlong line");
    conformance::rejects_an_overlong_line_and_goes_on(t, 1024);
    step("a client that does not read stalls no one");
    conformance::stalled_reader_does_not_block_others(t, 8 << 20, 20);
    step("reset, half-close, idle timeout free the slot");
    conformance::reset_frees_the_slot(t);
    conformance::half_close_gets_answers_then_eof(t);
    conformance::idle_clients_are_closed(t, CLIENTS, IDLE);
    step("500 connect/request/close cycles");
    conformance::short_connections_are_all_served(t, 500, 2);
    conformance::all_slots_are_free(t, CLIENTS);
    step("10 MB bulk exchange");
    bulk_exchange_is_exact(t, 10 * 1000 * 1000);
}

#[test]
fn conformance_suite_on_the_an385() {
    conformance_suite_on(&AN385);
}

#[test]
fn conformance_suite_on_the_riscv32_virt_machine() {
    conformance_suite_on(&RISCV32_VIRT);
}
