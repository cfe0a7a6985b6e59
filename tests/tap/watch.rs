//! The status service on port 7001 and `multiserve watch`: what they show
//! of held clients, the text format, bad input, and `--status-port off`.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Type};

use crate::conformance::{self, Target};
use crate::netns::Netns;
use crate::server::{Process, Server, BINARY, DEVICE_V4};
use crate::skip;

/// The status service's address with the server's default options.
const STATUS: SocketAddr = SocketAddr::new(DEVICE_V4, 7001);
const UNKNOWN: &str = "error: unknown request; send an empty line, \"text\" or \"json\"";
const TOO_LONG: &str = "error: request longer than 64 bytes";

const ROLES: [&str; 7] = [
    "listening",
    "half-open",
    "queued",
    "serving",
    "busy",
    "lingering",
    "off",
];
const STATES: [&str; 11] = [
    "LISTEN",
    "SYN-RECEIVED",
    "ESTABLISHED",
    "CLOSE-WAIT",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
    "CLOSED",
    "SYN-SENT",
];

/// A connection to the status service, read line by line.
struct StatusClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl StatusClient {
    /// Connects and reads the greeting, a text snapshot, which it returns.
    fn connect(server: &Server) -> (StatusClient, Vec<String>) {
        let stream = conformance::client_to(server, STATUS);
        let mut client = StatusClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        let greeting = client.text_snapshot();
        (client, greeting)
    }

    fn local_port(&self) -> u16 {
        self.writer.local_addr().expect("local address").port()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .expect("send to the status port");
    }

    /// The next line, without its `\n`; panics at EOF.
    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the status service closed the connection"),
            Ok(_) => line.trim_end_matches('\n').to_string(),
            Err(e) => panic!("reading from the status service: {e} (so far: {line:?})"),
        }
    }

    /// The lines of one text snapshot, `end` included.
    fn text_snapshot(&mut self) -> Vec<String> {
        let mut lines = vec![self.line()];
        assert!(lines[0].starts_with("status "), "{lines:?}");
        while lines.last().is_some_and(|l| l != "end") {
            lines.push(self.line());
            assert!(lines.len() < 1000, "no `end`: {lines:?}");
        }
        lines
    }

    fn json(&mut self) -> serde_json::Value {
        self.send(b"json\n");
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

/// The peer ports of the sockets with `role` on `port` in a text
/// snapshot.
fn peers_in_text(lines: &[String], port: u16, role: &str) -> Vec<u16> {
    lines
        .iter()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f[0] == "socket" && f[2] == port.to_string() && f[3] == role)
        .map(|f| peer_port(f[5]))
        .collect()
}

fn peer_port(peer: &str) -> u16 {
    let port = peer.rsplit(':').next().expect("a peer with a port");
    port.parse()
        .unwrap_or_else(|e| panic!("peer {peer:?}: bad port: {e}"))
}

fn ports(streams: &[TcpStream]) -> BTreeSet<u16> {
    streams
        .iter()
        .map(|s| s.local_addr().expect("local address").port())
        .collect()
}

/// Every held client still gets its answer (never a busy line).
fn still_served(clients: &mut [TcpStream], round: usize) {
    for (i, c) in clients.iter_mut().enumerate() {
        let line = format!("round {round} client {i}\n");
        conformance::exchange(
            c,
            line.as_bytes(),
            &conformance::reversed_line(line.as_bytes()),
        );
    }
}

/// With three reverse clients held, `watch --once` lists exactly those
/// three as `serving` on port 7000, with their ports.
#[test]
fn watch_once_lists_the_held_clients() {
    let ns = netns!();
    let server = Server::start(&ns, &[]);
    assert!(
        server
            .serving
            .contains("; status on 192.168.69.1:7001; try: multiserve watch 192.168.69.1:7001"),
        "{}",
        server.serving
    );
    let held = conformance::occupy(&server, 3);
    let watch = Process::spawn(&ns, &["watch", "192.168.69.1:7001", "--once"]).expect("start");
    let status = watch.wait_exit(Duration::from_secs(10));
    watch.stdout.wait_closed(Duration::from_secs(2));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{}",
        watch.output()
    );
    let text = watch.stdout.text();
    assert!(!text.contains('\x1b'), "escape codes in --once:\n{text}");
    let serving: Vec<u16> = watch
        .stdout
        .all()
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 8 && f[1] == "7000" && f[2] == "serving")
        .map(|f| peer_port(f[4]))
        .collect();
    assert_eq!(serving.len(), 3, "{text}");
    assert_eq!(
        serving.into_iter().collect::<BTreeSet<_>>(),
        ports(&held),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("service reverse port 7000 clients 16 spare 8")),
        "{text}"
    );
}

/// `watch --once` with nothing listening: exit status 1 and a message
/// that says so.
#[test]
fn watch_once_fails_clearly_without_a_server() {
    let ns = netns!();
    let watch = Process::spawn(&ns, &["watch", "127.0.0.1:7001", "--once"]).expect("start");
    let status = watch.wait_exit(Duration::from_secs(10));
    watch.stderr.wait_closed(Duration::from_secs(2));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", watch.output());
    assert!(
        watch
            .stderr
            .text()
            .contains("connection refused by 127.0.0.1:7001: no status service there"),
        "{}",
        watch.output()
    );
    assert_eq!(watch.stdout.text(), "", "{}", watch.output());
}

/// A private tmux server (its own socket and no configuration), killed
/// when dropped.
struct Tmux {
    ns: Arc<Netns>,
    dir: PathBuf,
}

impl Tmux {
    fn start(ns: &Arc<Netns>, test: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            skip(
                test,
                "needs tmux (tests/apt-install.sh tmux, or apt-get install tmux)",
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("multiserve-tmux-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmux directory");
        Some(Tmux {
            ns: Arc::clone(ns),
            dir,
        })
    }

    /// `tmux ARGS` on this server, run in the namespace (so the panes
    /// are there too).
    fn run(&self, args: &[&str]) -> Output {
        let mut full: Vec<String> = ["-S", &self.socket().to_string_lossy(), "-f", "/dev/null"]
            .map(String::from)
            .to_vec();
        full.extend(args.iter().map(|a| a.to_string()));
        let output = self
            .ns
            .run(move || {
                Command::new("tmux")
                    .args(&full)
                    .stdin(Stdio::null())
                    .output()
            })
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("socket")
    }

    fn pane(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "w"]).stdout).into_owned()
    }

    fn format(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "w", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.socket();
        let _ = self.ns.run(move || {
            Command::new("tmux")
                .arg("-S")
                .arg(socket)
                .arg("kill-server")
                .output()
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (at most `within`) for `ok` to hold.
fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The live view in a terminal (tmux, 100 x 30): it shows the three held
/// clients as `serving` rows, follows a resize, and `q` ends it with status 0 and the
/// terminal restored (the alternate screen left, the cursor shown). With
/// `MULTISERVE_WATCH_SCREEN=FILE` the screen is also written to FILE.
#[test]
fn watch_tui_under_tmux_shows_the_clients_and_quits_on_q() {
    let ns = netns!();
    let Some(tmux) = Tmux::start(&ns, test_name!()) else {
        return;
    };
    let server = Server::start(&ns, &[]);
    let mut held = conformance::occupy(&server, 3);
    // Through a shell that then says how the view ended and keeps the
    // pane (and its terminal state) alive.
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "w",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        r#""$0" watch 192.168.69.1:7001; echo "watch exited with status $?"; exec cat"#,
        BINARY,
    ]);
    let expected = ports(&held);
    // A row per held client: `INDEX 7000 serving ESTABLISHED PEER …`.
    let rows = |pane: &str| -> BTreeSet<u16> {
        pane.lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c == ' '))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() == 8 && f[1] == "7000" && f[2] == "serving")
            .map(|f| peer_port(f[4]))
            .collect()
    };
    let mut pane = String::new();
    let mut round = 0;
    let shown = wait_until(Duration::from_secs(10), || {
        // Traffic, so the rates have something to show.
        still_served(&mut held, round);
        round += 1;
        pane = tmux.pane();
        rows(&pane) == expected && pane.contains("requests/s")
    });
    assert!(shown, "rows {expected:?} not shown:\n{pane}");
    assert!(pane.contains("reverse :7000 clients 16 spare 8"), "{pane}");
    assert!(pane.contains("status :7001 clients 2 spare 1"), "{pane}");
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the view uses the alternate screen"
    );
    if let Some(file) = std::env::var_os("MULTISERVE_WATCH_SCREEN") {
        // Let a few seconds of rates build up for the picture.
        for round in 0..40 {
            still_served(&mut held, 1000 + round);
            thread::sleep(Duration::from_millis(100));
        }
        let screen: String = tmux
            .pane()
            .lines()
            .map(|l| l.trim_end().to_string() + "\n")
            .collect();
        std::fs::write(Path::new(&file), screen).expect("write the screen");
    }

    // It follows a resize: the frame is drawn again at the new width.
    tmux.run(&["resize-window", "-t", "w", "-x", "80", "-y", "24"]);
    let redrawn = wait_until(Duration::from_secs(5), || {
        pane = tmux.pane();
        pane.lines()
            .any(|l| l.starts_with('┌') && l.chars().count() == 80)
            && rows(&pane) == expected
    });
    assert!(redrawn, "not redrawn at 80 x 24:\n{pane}");

    tmux.run(&["send-keys", "-t", "w", "q"]);
    let ended = wait_until(Duration::from_secs(5), || {
        tmux.pane().contains("watch exited with status")
    });
    let after = tmux.pane();
    assert!(ended, "still running after q:\n{after}");
    assert!(after.contains("watch exited with status 0"), "{after}");
    assert!(
        !after.contains("sockets:"),
        "the view is still on the screen:\n{after}"
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "the alternate screen was not left"
    );
    assert_eq!(
        tmux.format("#{cursor_flag}"),
        "1",
        "the cursor is still hidden"
    );
}

/// The text snapshot is what the format says, field by field, and `awk`
/// picks the served connections out of it.
#[test]
fn watch_text_snapshot_parses_per_the_format() {
    let server = serve!();
    let held = conformance::occupy(&server, 3);
    let (mut client, greeting) = StatusClient::connect(&server);
    client.send(b"\n");
    let lines = client.text_snapshot();
    for snapshot in [&greeting, &lines] {
        check_text_format(snapshot);
    }
    assert_eq!(
        peers_in_text(&lines, 7000, "serving")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        ports(&held)
    );
    assert_eq!(
        peers_in_text(&lines, 7001, "serving"),
        [client.local_port()],
        "the status connection lists itself"
    );
    // The example in host/README.md (and in the crate docs of `Status`).
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut awk = Command::new("awk")
        .arg(r#"$1 == "socket" && $4 == "serving" { print $3, $6 }"#)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("awk");
    awk.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = awk.wait_with_output().expect("awk output");
    let served = String::from_utf8_lossy(&out.stdout);
    assert_eq!(served.lines().count(), 4, "{served}");
    assert_eq!(
        served
            .lines()
            .filter(|l| l.starts_with("7000 192.168.69.100:"))
            .count(),
        3,
        "{served}"
    );
}

/// One text snapshot, checked against the format: record names, field
/// counts, numbers, role and state words, peers, indexes in order.
fn check_text_format(lines: &[String]) {
    let all = lines.join("\n");
    let number = |s: &str| -> u64 {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} is not a number ({e}):\n{all}"))
    };
    let head: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(head.len(), 9, "{}", lines[0]);
    assert_eq!(
        [head[0], head[1], head[3], head[5], head[7]],
        ["status", "uptime_ms", "services", "sockets", "unlisted"]
    );
    number(head[2]);
    let services = number(head[4]);
    let sockets = number(head[6]);
    assert_eq!(number(head[8]), 0, "{all}");
    assert_eq!(lines.last().map(String::as_str), Some("end"));
    let body = &lines[1..lines.len() - 1];
    let mut ports = Vec::new();
    let mut index = 0;
    for line in body {
        assert!(!line.contains("  ") && !line.ends_with(' '), "{line:?}");
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "service" => {
                assert_eq!(f.len(), 7, "{line}");
                assert_eq!([f[3], f[5]], ["clients", "spare"], "{line}");
                ports.push(f[1].to_string());
                number(f[4]);
                number(f[6]);
            }
            "counters" => {
                assert_eq!(f.len(), 2 + 2 * 23, "{line}");
                assert_eq!(ports.last().map(String::as_str), Some(f[1]), "{line}");
                assert_eq!(f[2], "active", "{line}");
                assert_eq!(f[f.len() - 2], "bytes_out", "{line}");
                for pair in f[2..].chunks(2) {
                    assert!(pair[0].chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                    number(pair[1]);
                }
            }
            "socket" => {
                assert_eq!(f.len(), 9, "{line}");
                assert_eq!(number(f[1]), index, "{line}");
                index += 1;
                assert!(ports.iter().any(|p| p == f[2]), "{line}");
                assert!(ROLES.contains(&f[3]), "role {:?}: {line}", f[3]);
                assert!(STATES.contains(&f[4]), "state {:?}: {line}", f[4]);
                if f[5] != "-" {
                    f[5].parse::<SocketAddr>()
                        .unwrap_or_else(|e| panic!("peer {:?} ({e}): {line}", f[5]));
                }
                for n in &f[6..] {
                    number(n);
                }
            }
            other => panic!("unknown record {other:?}: {line}"),
        }
    }
    assert_eq!(ports, ["7000", "7001"], "{all}");
    assert_eq!(ports.len() as u64, services);
    assert_eq!(index, sockets, "one row per socket in use:\n{all}");
}

/// Bad input to the status port, while three reverse clients are held:
/// a client that asks for snapshot after snapshot and never reads stops
/// being read; garbage gets the error line; a 100 KB line without end gets
/// the too-long line and is skipped to its end, after which the client is
/// answered again. All the while the other status client and the reverse
/// clients are answered, none of them busy.
#[test]
fn watch_status_port_survives_bad_input() {
    let server = serve!();
    let mut held = conformance::occupy(&server, 3);

    // The one that never reads, with small kernel buffers so its window
    // closes soon.
    let socket = server
        .socket(Domain::IPV4, Type::STREAM, Protocol::TCP)
        .expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.set_send_buffer_size(4096).expect("SO_SNDBUF");
    socket
        .connect_timeout(&SockAddr::from(STATUS), Duration::from_secs(5))
        .expect("connect the reader that never reads");
    let mut greedy: TcpStream = socket.into();
    let greedy_port = greedy.local_addr().unwrap().port();
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    const ASKED: usize = 200_000;
    let flood = thread::spawn(move || {
        let requests = b"json\n".repeat(ASKED / 5);
        let mut sent = 0;
        while sent < requests.len() {
            match greedy.write(&requests[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        (greedy, sent)
    });

    let (mut client, _) = StatusClient::connect(&server);
    still_served(&mut held, 0);

    client.send(b"\x00\xff\xfegarbage\r\n");
    assert_eq!(client.line(), UNKNOWN);
    client.send(b"TEXT\n");
    assert_eq!(client.line(), UNKNOWN, "requests are case-sensitive");
    still_served(&mut held, 1);

    client.send(&vec![b'x'; 100_000]);
    assert_eq!(client.line(), TOO_LONG);
    client.send(b"still the long line\n");
    let json = client.json();
    still_served(&mut held, 2);
    let sockets = json["sockets"].as_array().expect("sockets");
    let greedy_row = sockets
        .iter()
        .find(|s| {
            s["peer"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!(":{greedy_port}")))
        })
        .unwrap_or_else(|| panic!("the greedy client is not listed: {json}"));
    assert_eq!(greedy_row["role"], "serving", "{greedy_row}");
    let status = &json["services"][1];
    assert_eq!(status["name"], "status");
    assert_eq!(status["counters"]["rejected"], 3, "{status}");
    assert_eq!(status["counters"]["refused_busy"], 0, "{status}");

    let (greedy, sent) = flood.join().expect("the flooding thread");
    assert!(
        sent < ASKED / 2,
        "the server kept reading a client that never reads: {sent} of {ASKED} bytes taken"
    );
    // The others are still answered while it sits there.
    client.send(b"text\n");
    let lines = client.text_snapshot();
    check_text_format(&lines);
    still_served(&mut held, 3);
    let reverse = &client.json()["services"][0]["counters"];
    assert_eq!(reverse["refused_busy"], 0, "{reverse}");
    assert_eq!(reverse["active"], 3, "{reverse}");
    assert!(
        server.process.try_exit().is_none(),
        "{}",
        server.process.output()
    );
    drop(greedy);

    // Nothing a client sends changes anything: after all that, a new
    // status client gets the same listing of the held clients.
    drop(client);
    let (_, greeting) = StatusClient::connect(&server);
    assert_eq!(
        peers_in_text(&greeting, 7000, "serving")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        ports(&held)
    );
}

/// `--status-port off`: nothing listens on 7001 (the connect is refused),
/// the serving line does not offer it, and the service works as ever.
#[test]
fn watch_status_port_off_listens_nowhere() {
    let server = serve!(&["--status-port", "off"]);
    assert!(!server.serving.contains("status"), "{}", server.serving);
    let mut held = conformance::occupy(&server, 1);
    match server.connect_to(STATUS) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
        Err(e) => panic!("connect to {STATUS}: {e}, not refused"),
        Ok(mut s) => {
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            panic!(
                "something listens on {STATUS}: {:?}",
                conformance::shown(&buf[..n])
            );
        }
    }
    still_served(&mut held, 0);
}
