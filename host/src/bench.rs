//! `multiserve bench`: a load generator over the kernel's sockets.
//!
//! One thread drives every connection through `mio` (epoll), so the
//! generator is not the bottleneck at 64 connections on two cores. Every
//! answer is checked byte for byte; any mismatch fails the run.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::{parse_duration, ServiceKind};

/// What to measure.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Request/response: send a line, wait for its answer, repeat.
    Rr,
    /// Stream lines as fast as the server takes them, checking every answer.
    Bulk,
    /// Connect, one request, close, repeated.
    Connect,
    /// Open connections one by one and hold them until one is not served.
    Maxconn,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Rr => "rr",
            Mode::Bulk => "bulk",
            Mode::Connect => "connect",
            Mode::Maxconn => "maxconn",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The server, e.g. 192.168.69.1:7000.
    addr: String,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Rr)]
    mode: Mode,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Bytes per line, newline included.
    #[arg(short, long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=65536))]
    size: u32,
    /// How long to run (rr, bulk, connect).
    #[arg(short, long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests (rr, connect) instead of the duration.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// The service the server runs: what the answer must be.
    #[arg(long, value_enum, default_value_t = ServiceKind::Reverse)]
    service: ServiceKind,
    /// maxconn: stop after this many connections even if all are served.
    #[arg(long, default_value_t = 2000)]
    max_connections: u32,
    /// How long one operation (connect, answer) may take before it counts
    /// as an error.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// A name for this run in the output.
    #[arg(long, default_value = "")]
    label: String,
    /// One JSON object per run instead of a table.
    #[arg(long)]
    json: bool,
}

/// Latency percentiles, in microseconds.
#[derive(Serialize, Default)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The outcome of one run.
#[derive(Serialize)]
struct Report {
    label: String,
    mode: Mode,
    addr: String,
    connections: u16,
    size: u32,
    seconds: f64,
    /// Requests answered (rr, connect) or lines answered (bulk).
    requests: u64,
    requests_per_sec: f64,
    latency_us: Latency,
    errors: u64,
    mismatches: u64,
    /// Connections told "busy" (every slot taken) instead of answered.
    busy: u64,
    /// connect: connects refused (a reset to the SYN).
    refused: u64,
    /// connect: connections reset before their answer.
    reset: u64,
    /// connect: connections with no answer within the timeout.
    timed_out: u64,
    /// connect: answered cycles / all cycles (busy, refused, reset and
    /// timed out count as failed), in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    success_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mb_per_sec_sent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mb_per_sec_received: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    served_at_once: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let addr = crate::resolve(&args.addr)?;
    raise_fd_limit();
    let report = match args.mode {
        Mode::Maxconn => maxconn(&args, addr),
        Mode::Rr | Mode::Bulk | Mode::Connect => Driver::new(&args, addr)?.run(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_table(&report);
    }
    if report.mismatches > 0 {
        eprintln!("bench: {} answers were wrong", report.mismatches);
        return Ok(ExitCode::FAILURE);
    }
    if report.errors > 0 && args.mode != Mode::Maxconn {
        eprintln!(
            "bench: {} errors (first: {})",
            report.errors,
            report.first_error.as_deref().unwrap_or("?")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Report) {
    let label = if r.label.is_empty() {
        String::new()
    } else {
        format!("[{}] ", r.label)
    };
    println!(
        "{label}{} to {}, {} connections, {}-byte lines, {:.1} s",
        r.mode.name(),
        r.addr,
        r.connections,
        r.size,
        r.seconds
    );
    match r.mode {
        Mode::Maxconn => {
            println!(
                "  served at once: {}; next connection: {}",
                r.served_at_once.unwrap_or(0),
                r.next_connection.as_deref().unwrap_or("-")
            );
        }
        _ => {
            let what = if r.mode == Mode::Connect {
                "connections"
            } else {
                "requests"
            };
            println!(
                "  {what}: {} ({:.0}/s), errors {}, mismatches {}, busy {}",
                r.requests, r.requests_per_sec, r.errors, r.mismatches, r.busy
            );
            if let Some(pct) = r.success_pct {
                println!(
                    "  failed cycles: busy {}, refused {}, reset {}, timed out {}; {pct:.2}% served",
                    r.busy, r.refused, r.reset, r.timed_out
                );
            }
            let l = &r.latency_us;
            if r.mode != Mode::Bulk {
                println!(
                    "  latency µs: p50 {} p90 {} p99 {} p99.9 {} max {}",
                    l.p50, l.p90, l.p99, l.p999, l.max
                );
            }
            if let (Some(s), Some(rx)) = (r.mb_per_sec_sent, r.mb_per_sec_received) {
                println!("  throughput: {s:.1} MB/s sent, {rx:.1} MB/s received");
            }
        }
    }
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Request line number `seq` of connection `conn`: printable ASCII, `size`
/// bytes with the newline, different for every request.
fn request_line(conn: usize, seq: u64, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    let tag = format!("{conn}:{seq}:");
    buf.extend(tag.bytes().take(size - 1));
    let mut x = (conn as u64) << 32 ^ seq ^ 0x9e37_79b9_7f4a_7c15;
    while buf.len() < size - 1 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push(b'a' + (x % 26) as u8);
    }
    buf.push(b'\n');
}

/// The answer the service gives to `line` (ASCII, so byte reversal is the
/// character reversal).
fn answer_to(service: ServiceKind, line: &[u8], out: &mut Vec<u8>) {
    out.clear();
    match service {
        ServiceKind::Echo => out.extend_from_slice(line),
        ServiceKind::Reverse => {
            let content = &line[..line.len() - 1];
            out.extend(content.iter().rev());
            out.push(b'\n');
        }
    }
}

/// Fill in what connection `i` sends and expects next: one request (rr,
/// connect) or a 64 KiB pattern of lines sent over and over (bulk).
fn prepare(args: &Args, i: usize, conn: &mut Conn) {
    let size = args.size as usize;
    let mut line = Vec::new();
    let mut answer = Vec::new();
    conn.out.clear();
    conn.expected.clear();
    conn.out_pos = 0;
    conn.in_pos = 0;
    let lines = if args.mode == Mode::Bulk {
        (64 * 1024 / size).max(8)
    } else {
        1
    };
    for k in 0..lines {
        request_line(i, conn.seq + k as u64, size, &mut line);
        answer_to(args.service, &line, &mut answer);
        conn.out.extend_from_slice(&line);
        conn.expected.extend_from_slice(&answer);
    }
    conn.seq += 1;
}

#[derive(PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    Receiving,
    Closed,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// Bytes to send (rr, connect: one request; bulk: a repeating pattern).
    out: Vec<u8>,
    out_pos: usize,
    /// What must come back (rr, connect: one answer; bulk: the pattern's).
    expected: Vec<u8>,
    in_pos: usize,
    seq: u64,
    started: Instant,
    deadline: Instant,
}

struct Driver<'a> {
    args: &'a Args,
    addr: SocketAddr,
    poll: Poll,
    conns: Vec<Conn>,
    hist: Histogram<u64>,
    completed: u64,
    errors: u64,
    mismatches: u64,
    busy: u64,
    refused: u64,
    reset: u64,
    timed_out: u64,
    first_error: Option<String>,
    sent: u64,
    received: u64,
    scratch: Vec<u8>,
    stopping: bool,
}

impl<'a> Driver<'a> {
    fn new(args: &'a Args, addr: SocketAddr) -> Result<Driver<'a>, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create a poller: {e}"))?;
        let hist = Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
        Ok(Driver {
            args,
            addr,
            poll,
            conns: Vec::new(),
            hist,
            completed: 0,
            errors: 0,
            mismatches: 0,
            busy: 0,
            refused: 0,
            reset: 0,
            timed_out: 0,
            first_error: None,
            sent: 0,
            received: 0,
            scratch: vec![0; 256 * 1024],
            stopping: false,
        })
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }

    /// connect: cycle `i` failed in a way a server may answer a client
    /// (refused, reset, no answer): count it and start the next cycle.
    /// Other modes: an error. Whether the failure was counted as a cycle.
    fn cycle_failed(&mut self, i: usize, e: &io::Error, what: &str) -> bool {
        let counter = match e.kind() {
            ErrorKind::ConnectionRefused => &mut self.refused,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => &mut self.reset,
            ErrorKind::TimedOut => &mut self.timed_out,
            _ => return false,
        };
        if self.args.mode != Mode::Connect {
            return false;
        }
        *counter += 1;
        self.close(i);
        if !self.stopping {
            match self.open(i) {
                Ok(conn) => self.conns[i] = conn,
                Err(e) => self.error(format!("{what}: {e}")),
            }
        }
        true
    }

    fn open(&mut self, i: usize) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        self.poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let now = Instant::now();
        let mut conn = Conn {
            stream,
            phase: Phase::Connecting,
            out: Vec::new(),
            out_pos: 0,
            expected: Vec::new(),
            in_pos: 0,
            seq: 0,
            started: now,
            deadline: now + self.args.timeout,
        };
        prepare(self.args, i, &mut conn);
        Ok(conn)
    }

    fn run(mut self) -> Report {
        let args = self.args;
        let start = Instant::now();
        for i in 0..args.connections as usize {
            match self.open(i) {
                Ok(conn) => self.conns.push(conn),
                Err(e) => {
                    self.error(format!("connect: {e}"));
                    return self.report(start.elapsed());
                }
            }
        }
        let end = start + args.duration;
        let mut events = Events::with_capacity(1024);
        let mut last_progress = start;
        loop {
            let now = Instant::now();
            let budget_done = args.requests.is_some_and(|n| self.completed >= n);
            if (args.requests.is_none() && now >= end) || budget_done {
                self.stopping = true;
            }
            let active = self
                .conns
                .iter()
                .filter(|c| c.phase != Phase::Closed)
                .count();
            // Done when asked to stop, or when every connection has failed.
            if active == 0 || (self.stopping && args.mode == Mode::Bulk) {
                break;
            }
            if args.duration > Duration::from_secs(3)
                && now - last_progress >= Duration::from_secs(1)
            {
                eprint!(
                    "\r{:?}: {:.0} s, {} done, {} errors ",
                    args.mode,
                    (now - start).as_secs_f64(),
                    self.completed,
                    self.errors
                );
                last_progress = now;
            }
            // Time out what waits too long.
            for i in 0..self.conns.len() {
                let c = &self.conns[i];
                if c.phase != Phase::Closed && now >= c.deadline && args.mode != Mode::Bulk {
                    let timed_out = io::Error::from(ErrorKind::TimedOut);
                    if !self.cycle_failed(i, &timed_out, "connect") {
                        self.error(format!(
                            "connection {i}: no answer within {:?}",
                            args.timeout
                        ));
                        self.close(i);
                    }
                }
            }
            let wait = Duration::from_millis(50);
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != ErrorKind::Interrupted {
                    self.error(format!("poll: {e}"));
                    break;
                }
            }
            let ready: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            for i in ready {
                self.drive(i);
            }
        }
        if args.duration > Duration::from_secs(3) {
            eprintln!();
        }
        self.report(start.elapsed())
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.phase != Phase::Closed {
            let _ = self.poll.registry().deregister(&mut c.stream);
            c.phase = Phase::Closed;
        }
    }

    /// Move connection `i` as far as it can go without blocking.
    fn drive(&mut self, i: usize) {
        loop {
            let mode = self.args.mode;
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Closed => return,
                Phase::Connecting => match c.stream.peer_addr() {
                    Ok(_) => c.phase = Phase::Sending,
                    Err(e) if e.kind() == ErrorKind::NotConnected => {
                        if let Ok(Some(e)) | Err(e) = c.stream.take_error() {
                            if !self.cycle_failed(i, &e, "connect") {
                                self.error(format!("connect: {e}"));
                                self.close(i);
                            }
                        }
                        return;
                    }
                    Err(e) => {
                        if !self.cycle_failed(i, &e, "connect") {
                            self.error(format!("connect: {e}"));
                            self.close(i);
                        }
                        return;
                    }
                },
                Phase::Sending => {
                    let progressed = self.write_some(i);
                    let c = &mut self.conns[i];
                    if mode != Mode::Bulk && c.out_pos == c.out.len() {
                        c.phase = Phase::Receiving;
                        continue;
                    }
                    if mode == Mode::Bulk {
                        // Bulk writes and reads at once.
                        let read = self.read_some(i);
                        if !progressed && !read {
                            return;
                        }
                        continue;
                    }
                    if !progressed {
                        return;
                    }
                }
                Phase::Receiving => {
                    if !self.read_some(i) {
                        return;
                    }
                }
            }
        }
    }

    /// Write what the connection has to send; whether anything went out.
    fn write_some(&mut self, i: usize) -> bool {
        let bulk = self.args.mode == Mode::Bulk;
        let stopping = self.stopping;
        let c = &mut self.conns[i];
        if bulk && stopping {
            return false;
        }
        let mut any = false;
        loop {
            if c.out_pos == c.out.len() {
                if bulk {
                    c.out_pos = 0;
                } else {
                    return any;
                }
            }
            match c.stream.write(&c.out[c.out_pos..]) {
                Ok(0) => return any,
                Ok(n) => {
                    c.out_pos += n;
                    self.sent += n as u64;
                    any = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error(format!("send: {e}"));
                    self.close(i);
                    return false;
                }
            }
        }
    }

    /// Read and check what arrived; whether anything did.
    fn read_some(&mut self, i: usize) -> bool {
        let mut any = false;
        loop {
            let c = &mut self.conns[i];
            let n = match c.stream.read(&mut self.scratch) {
                Ok(0) => {
                    if !self.stopping {
                        self.error(format!("connection {i} closed by the server"));
                    }
                    self.close(i);
                    return false;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !self.cycle_failed(i, &e, "receive") {
                        self.error(format!("receive: {e}"));
                        self.close(i);
                    }
                    return false;
                }
            };
            any = true;
            self.received += n as u64;
            if self.args.mode == Mode::Bulk {
                self.check_stream(i, n);
            } else if !self.check_answer(i, n) {
                return false;
            }
        }
    }

    /// Bulk: compare `n` received bytes with the cyclic expected stream.
    fn check_stream(&mut self, i: usize, n: usize) {
        let size = self.args.size as usize;
        let c = &mut self.conns[i];
        let mut got = &self.scratch[..n];
        while !got.is_empty() {
            let want = &c.expected[c.in_pos..];
            let k = want.len().min(got.len());
            if got[..k] != want[..k] {
                self.mismatches += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("connection {i}: wrong bytes at {}", c.in_pos));
                }
                self.close(i);
                return;
            }
            // Count each line completed.
            let before = c.in_pos / size;
            c.in_pos += k;
            self.completed += (c.in_pos / size - before) as u64;
            if c.in_pos == c.expected.len() {
                c.in_pos = 0;
            }
            got = &got[k..];
        }
    }

    /// rr/connect: check an answer; when complete, record it and start the
    /// next request (or connection). Whether the connection goes on.
    fn check_answer(&mut self, i: usize, n: usize) -> bool {
        let c = &mut self.conns[i];
        if c.in_pos == 0 && self.scratch[..n].starts_with(b"busy:") {
            // Told that every slot is taken: not a wrong answer, a refusal.
            self.busy += 1;
            if self.args.mode == Mode::Connect && !self.stopping {
                self.close(i);
                match self.open(i) {
                    Ok(conn) => self.conns[i] = conn,
                    Err(e) => self.error(format!("connect: {e}")),
                }
            } else {
                self.error(format!("connection {i}: told busy"));
                self.close(i);
            }
            return false;
        }
        let c = &mut self.conns[i];
        let want = &c.expected[c.in_pos..];
        if n > want.len() || self.scratch[..n] != want[..n] {
            self.mismatches += 1;
            if self.first_error.is_none() {
                self.first_error = Some(format!(
                    "connection {i}: got {:?}, want {:?}",
                    String::from_utf8_lossy(&self.scratch[..n]),
                    String::from_utf8_lossy(want)
                ));
            }
            self.close(i);
            return false;
        }
        c.in_pos += n;
        if c.in_pos < c.expected.len() {
            return true;
        }
        let now = Instant::now();
        let micros = (now - c.started).as_micros().max(1) as u64;
        let _ = self.hist.record(micros.min(60_000_000));
        self.completed += 1;
        if self.stopping || self.args.requests.is_some_and(|m| self.completed >= m) {
            self.stopping = true;
            self.close(i);
            return false;
        }
        if self.args.mode == Mode::Connect {
            self.close(i);
            match self.open(i) {
                Ok(conn) => {
                    self.conns[i] = conn;
                    true
                }
                Err(e) => {
                    self.error(format!("connect: {e}"));
                    false
                }
            }
        } else {
            let args = self.args;
            let conn = &mut self.conns[i];
            prepare(args, i, conn);
            conn.phase = Phase::Sending;
            conn.started = now;
            conn.deadline = now + args.timeout;
            true
        }
    }

    fn report(&self, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let bulk = self.args.mode == Mode::Bulk;
        Report {
            label: self.args.label.clone(),
            mode: self.args.mode,
            addr: self.addr.to_string(),
            connections: self.args.connections,
            size: self.args.size,
            seconds: secs,
            requests: self.completed,
            requests_per_sec: self.completed as f64 / secs,
            latency_us: Latency::of(&self.hist),
            errors: self.errors,
            mismatches: self.mismatches,
            busy: self.busy,
            refused: self.refused,
            reset: self.reset,
            timed_out: self.timed_out,
            success_pct: (self.args.mode == Mode::Connect).then(|| {
                let failed = self.busy + self.refused + self.reset + self.timed_out;
                100.0 * self.completed as f64 / (self.completed + failed).max(1) as f64
            }),
            mb_per_sec_sent: bulk.then(|| self.sent as f64 / secs / 1e6),
            mb_per_sec_received: bulk.then(|| self.received as f64 / secs / 1e6),
            served_at_once: None,
            next_connection: None,
            first_error: self.first_error.clone(),
        }
    }
}

/// Open connections one by one, each proven served by a round trip, and
/// hold them until one is not served (or the cap is reached).
fn maxconn(args: &Args, addr: SocketAddr) -> Report {
    let start = Instant::now();
    let mut held: VecDeque<StdStream> = VecDeque::new();
    let mut line = Vec::new();
    let mut answer = Vec::new();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
    let mut mismatches = 0;
    let next = loop {
        if held.len() as u32 >= args.max_connections {
            break format!("not tried: cap of {} reached", args.max_connections);
        }
        let i = held.len();
        let t0 = Instant::now();
        let mut stream = match StdStream::connect_timeout(&addr, args.timeout) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                break format!("refused after {} µs", t0.elapsed().as_micros())
            }
            Err(e) => break format!("connect failed: {e}"),
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(args.timeout));
        request_line(i, 0, args.size as usize, &mut line);
        answer_to(args.service, &line, &mut answer);
        if let Err(e) = stream.write_all(&line) {
            break format!("send failed: {e}");
        }
        let mut got = vec![0u8; answer.len()];
        let mut filled = 0;
        let outcome = loop {
            match stream.read(&mut got[filled..]) {
                Ok(0) => break Some("closed without an answer".to_owned()),
                Ok(n) => {
                    filled += n;
                    if got[..filled].starts_with(b"busy:") && got[..filled].contains(&b'\n') {
                        let text = String::from_utf8_lossy(&got[..filled]);
                        break Some(format!(
                            "busy line after {} µs: {:?}",
                            t0.elapsed().as_micros(),
                            text.lines().next().unwrap_or_default()
                        ));
                    }
                    if filled == got.len() {
                        break None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    break Some(format!("reset after {} µs", t0.elapsed().as_micros()))
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break Some(format!("no answer within {:?}", args.timeout))
                }
                Err(e) => break Some(format!("receive failed: {e}")),
            }
        };
        if let Some(outcome) = outcome {
            break outcome;
        }
        if got != answer {
            mismatches += 1;
        }
        if let Some(h) = hist.as_mut() {
            let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
        }
        held.push_back(stream);
    };
    let served = held.len() as u32;
    Report {
        label: args.label.clone(),
        mode: Mode::Maxconn,
        addr: addr.to_string(),
        connections: args.connections,
        size: args.size,
        seconds: start.elapsed().as_secs_f64(),
        requests: u64::from(served),
        requests_per_sec: 0.0,
        latency_us: hist.as_ref().map(Latency::of).unwrap_or_default(),
        errors: 0,
        mismatches,
        busy: 0,
        refused: 0,
        reset: 0,
        timed_out: 0,
        success_pct: None,
        mb_per_sec_sent: None,
        mb_per_sec_received: None,
        served_at_once: Some(served),
        next_connection: Some(next),
        first_error: None,
    }
}
