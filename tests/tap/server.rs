//! The `multiserve` binary, run in a test's network namespace.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::conformance::{self, Counters, Target};
use crate::netns::Netns;

/// The program under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_multiserve");
/// The device's addresses with the server's default options.
pub const DEVICE_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 69, 1));
pub const DEVICE_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1));
pub const PORT: u16 = 7000;
/// The device's link-layer address and the TAP it is on (the server's
/// defaults).
const DEVICE_MAC: &str = "02:00:00:00:00:01";
const TAP: &str = "tap0";
/// How long the server may take to say it is serving.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The lines a child process writes to one of its output streams,
/// collected by a thread as they come.
pub struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn collect(stream: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines {
            state: Mutex::new((Vec::new(), false)),
            changed: Condvar::new(),
        });
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                sink.state.lock().unwrap().0.push(text);
                sink.changed.notify_all();
                line.clear();
            }
            sink.state.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        lines
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// All lines so far as one text.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits (at most `within`) for a line for which `wanted` holds;
    /// `None` if the stream ended or the time ran out first.
    pub fn wait_for(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(line) = state.0.iter().find(|l| wanted(l)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits (at most `within`) for the stream to end.
    pub fn wait_closed(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
        true
    }
}

/// A child process we started, killed by its PID when dropped unless it
/// has already been reaped.
pub struct Process {
    child: Mutex<Child>,
    exit: Mutex<Option<ExitStatus>>,
    pub stdout: Arc<Lines>,
    pub stderr: Arc<Lines>,
}

impl Process {
    /// Starts `multiserve ARGS` in the namespace, stdin closed, output
    /// collected.
    pub fn spawn(ns: &Netns, args: &[&str]) -> io::Result<Process> {
        Process::spawn_with_stdin(ns, args, Stdio::null())
    }

    /// Starts `multiserve ARGS` in the namespace with the given stdin.
    pub fn spawn_with_stdin(ns: &Netns, args: &[&str], stdin: Stdio) -> io::Result<Process> {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ns.run(move || command.spawn())?;
        let stdout = Lines::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        Ok(Process {
            child: Mutex::new(child),
            exit: Mutex::new(None),
            stdout,
            stderr,
        })
    }

    /// The process's stdin, if it was piped.
    pub fn take_stdin(&self) -> Option<std::process::ChildStdin> {
        self.child.lock().unwrap().stdin.take()
    }

    /// The exit status, if the process has exited (reaping it).
    pub fn try_exit(&self) -> Option<ExitStatus> {
        let mut exit = self.exit.lock().unwrap();
        if exit.is_none() {
            *exit = self.child.lock().unwrap().try_wait().ok().flatten();
        }
        *exit
    }

    /// Waits (at most `within`) for the process to exit.
    pub fn wait_exit(&self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process's resident memory now, in KiB (`VmRSS`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.lock().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends `signal` to the process, unless it has already been reaped
    /// (so its PID cannot belong to another process).
    pub fn signal(&self, signal: libc::c_int) {
        let exit = self.exit.lock().unwrap();
        let mut child = self.child.lock().unwrap();
        if exit.is_none() && matches!(child.try_wait(), Ok(None)) {
            let pid = libc::pid_t::try_from(child.id()).expect("pid");
            // SAFETY: plain system call on the PID of our own, unreaped child.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// What the process said on both streams, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        if self.exit.get_mut().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `multiserve serve` on a TAP device in a test's namespace, ready to
/// serve.
pub struct Server {
    pub process: Process,
    ns: Arc<Netns>,
    /// The line the server printed when it was ready.
    pub serving: String,
    /// Whether the server drops or corrupts frames on purpose.
    lossy: bool,
}

impl Server {
    /// Starts `multiserve serve ARGS` and waits until it prints its
    /// `serving ` line. Panics, showing its output, if it does not.
    pub fn start(ns: &Arc<Netns>, args: &[&str]) -> Server {
        let mut full = vec!["serve"];
        full.extend_from_slice(args);
        let process = Process::spawn(ns, &full).expect("start multiserve");
        let serving = process
            .stdout
            .wait_for(READY_TIMEOUT, |l| l.starts_with("serving "));
        let Some(serving) = serving else {
            let exit = process.try_exit();
            panic!(
                "multiserve {full:?} did not print its `serving` line within {READY_TIMEOUT:?} \
                 (exit: {exit:?})\n{}",
                process.output()
            );
        };
        let lossy = args
            .iter()
            .any(|a| *a == "--drop-chance" || *a == "--corrupt-chance");
        if lossy {
            pin_neighbours(ns);
        }
        Server {
            process,
            ns: Arc::clone(ns),
            serving,
            lossy,
        }
    }

    /// Asks the server to stop (SIGTERM) and waits (at most `within`) for
    /// it to exit.
    pub fn terminate(&self, within: Duration) -> Option<ExitStatus> {
        self.process.signal(libc::SIGTERM);
        let status = self.process.wait_exit(within);
        if status.is_some() {
            // Let the collector threads take the last lines.
            self.process.stdout.wait_closed(Duration::from_secs(2));
        }
        status
    }

    /// The counters of the `final:` line, once the server has exited.
    pub fn final_counters(&self) -> Option<Counters> {
        let line = self
            .process
            .stdout
            .wait_for(Duration::from_secs(2), |l| l.starts_with("final: "))?;
        Counters::from_line(&line)
    }

    /// Creates a socket in the server's namespace.
    pub fn socket(&self, domain: Domain, ty: Type, protocol: Protocol) -> io::Result<Socket> {
        self.ns.run(move || Socket::new(domain, ty, Some(protocol)))
    }
}

/// Give Linux the server's link-layer address for good, on a link that
/// loses frames on purpose. Linux gives up resolving an address after three
/// unanswered requests, about 3 s: with 10% of the frames lost each way, one
/// resolution in about 150 fails, and the connect with it, before the
/// server's TCP is ever involved. These tests are about TCP over the loss;
/// address resolution is tested on a clean link (`reach`).
fn pin_neighbours(ns: &Netns) {
    for (family, addr) in [("-4", DEVICE_V4), ("-6", DEVICE_V6)] {
        ns.ip(&[
            family,
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            DEVICE_MAC,
            "nud",
            "permanent",
            "dev",
            TAP,
        ])
        .expect("pin the server's neighbour entry");
    }
}

/// Whether a failed connect may be a passing state of a fresh network
/// (neighbour discovery, addresses not yet usable): worth another try.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::ENETUNREACH | libc::EHOSTUNREACH)
    )
}

impl Target for Server {
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(DEVICE_V4, PORT)
    }

    /// On a clean link, a connect must complete within 5 s: the kernel
    /// sends its SYN again after 1 and 3 s. On a link that loses frames on
    /// purpose, within TCP's whole SYN schedule: the kernel's own connect,
    /// which gives up after `tcp_syn_retries` resends (127 s by default).
    fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let socket = self.socket(Domain::for_address(addr), Type::STREAM, Protocol::TCP)?;
            let connected = if self.lossy {
                socket.connect(&SockAddr::from(addr))
            } else {
                socket.connect_timeout(&SockAddr::from(addr), Duration::from_secs(5))
            };
            match connected {
                Ok(()) => return Ok(socket.into()),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn raw_socket(&self, domain: Domain, protocol: Protocol) -> io::Result<Socket> {
        self.socket(domain, Type::RAW, protocol)
    }

    fn io_timeout(&self) -> Duration {
        if self.lossy {
            conformance::LOSSY_IO_TIMEOUT
        } else {
            conformance::IO_TIMEOUT
        }
    }

    fn counters(&self) -> Option<Counters> {
        self.process
            .stdout
            .all()
            .iter()
            .rev()
            .find_map(|l| Counters::from_line(l))
    }
}
