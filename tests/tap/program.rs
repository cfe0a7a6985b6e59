//! The program around the server: its interactive client, packet capture,
//! and start-up errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::conformance;
use crate::server::{Process, Server};

#[test]
fn client_command_sends_lines_until_exit() {
    let ns = netns!();
    let _server = Server::start(&ns, &[]);
    let client = Process::spawn_with_stdin(&ns, &["client", "192.168.69.1:7000"], Stdio::piped())
        .expect("start the client");
    let mut stdin = client.take_stdin().expect("piped stdin");
    stdin
        .write_all("hello\nOlá, mundo\nEXIT\n".as_bytes())
        .expect("write the client's input");
    drop(stdin);
    let status = client.wait_exit(Duration::from_secs(10));
    client.stdout.wait_closed(Duration::from_secs(2));
    assert!(
        status.is_some_and(|s| s.success()),
        "client exit: {status:?}\n{}",
        client.output()
    );
    assert_eq!(
        client.stdout.all(),
        ["olleh", "odnum ,álO"],
        "\n{}",
        client.output()
    );
    assert!(
        client
            .stderr
            .all()
            .iter()
            .any(|l| l.starts_with("connected from ") && l.ends_with(" to 192.168.69.1:7000")),
        "no `connected from LOCAL to ADDR` line\n{}",
        client.output()
    );
}

#[test]
fn client_command_in_chunk_mode() {
    let ns = netns!();
    let _server = Server::start(&ns, &["--framing", "chunk"]);
    let client = run_client(&ns, &["192.168.69.1:7000", "--chunk"], "hello\nEXIT\n");
    assert!(
        client.try_exit().is_some_and(|s| s.success()),
        "client exit: {:?}\n{}",
        client.try_exit(),
        client.output()
    );
    assert_eq!(client.stdout.all(), ["olleh"], "\n{}", client.output());
}

#[test]
fn client_command_fails_clearly_when_busy_or_refused() {
    let ns = netns!();
    let server = Server::start(&ns, &["--clients", "1", "--queue-wait", "0s"]);
    let _occupant = conformance::occupy(&server, 1);
    let busy = run_client(&ns, &["192.168.69.1:7000"], "hello\nEXIT\n");
    assert!(
        busy.try_exit().is_some_and(|s| !s.success()),
        "client exit when busy: {:?}\n{}",
        busy.try_exit(),
        busy.output()
    );
    assert!(
        busy.stderr.text().contains("busy"),
        "no clear `busy` message\n{}",
        busy.output()
    );
    // 7001 is the status service's port; nothing listens on 7002.
    let refused = run_client(&ns, &["192.168.69.1:7002"], "hello\nEXIT\n");
    assert!(
        refused.try_exit().is_some_and(|s| !s.success()),
        "client exit when refused: {:?}\n{}",
        refused.try_exit(),
        refused.output()
    );
    assert!(
        refused.stderr.text().contains("refused"),
        "no clear `refused` message\n{}",
        refused.output()
    );
}

/// Runs `multiserve client ARGS` with `input` on its stdin until it exits
/// (at most 10 s) and its output is collected.
fn run_client(ns: &crate::netns::Netns, args: &[&str], input: &str) -> Process {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    let client = Process::spawn_with_stdin(ns, &full, Stdio::piped()).expect("start the client");
    let mut stdin = client.take_stdin().expect("piped stdin");
    // The client may exit before reading its input: a failed write is fine.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let status = client.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "client {full:?} still running after 10 s\n{}",
        client.output()
    );
    client.stdout.wait_closed(Duration::from_secs(2));
    client.stderr.wait_closed(Duration::from_secs(2));
    client
}

/// A directory of our own under the system's temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("multiserve-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).expect("create a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pcap_holds_the_tests_frames() {
    let ns = netns!();
    let dir = TempDir::new("pcap");
    let file = dir.0.join("capture.pcap");
    let server = Server::start(&ns, &["--pcap", file.to_str().expect("UTF-8 path")]);
    let mut client = conformance::client(&server);
    let probe = b"pcap probe 5e1f0a\n";
    conformance::exchange(&mut client, probe, &conformance::reversed_line(probe));
    drop(client);
    let status = server.terminate(Duration::from_secs(2));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{}",
        server.process.output()
    );
    let bytes = std::fs::read(&file).expect("the pcap file exists");
    assert!(bytes.len() > 24, "pcap file of {} bytes", bytes.len());
    let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 0xa1b2_c3d4, "pcap magic in native byte order");
    assert_eq!(word(20), 1, "link type Ethernet");
    let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(holds(probe), "the request is not in the capture");
    assert!(
        holds(&conformance::reversed_line(probe)),
        "the answer is not in the capture"
    );
}

fn expect_startup_error(ns: &std::sync::Arc<crate::netns::Netns>, args: &[&str], message: &str) {
    let mut full = vec!["serve"];
    full.extend_from_slice(args);
    let process = Process::spawn(ns, &full).expect("start multiserve");
    let status = process.wait_exit(Duration::from_secs(10));
    process.stderr.wait_closed(Duration::from_secs(2));
    let Some(status) = status else {
        panic!(
            "multiserve {full:?} still running after 10 s\n{}",
            process.output()
        );
    };
    assert!(
        !status.success(),
        "multiserve {full:?} exited with {status}\n{}",
        process.output()
    );
    assert!(
        process.stderr.text().contains(message),
        "stderr lacks {message:?}\n{}",
        process.output()
    );
}

#[test]
fn refuses_a_tap_name_of_16_bytes() {
    let ns = netns!();
    expect_startup_error(
        &ns,
        &["--iface", "tap0123456789abc"],
        "longer than 15 bytes",
    );
}

#[test]
fn refuses_a_tap_held_by_another_process() {
    let ns = netns!();
    let first = Server::start(&ns, &[]);
    expect_startup_error(&ns, &[], "in use by another process");
    // The first server is unharmed.
    let mut client = conformance::client(&first);
    conformance::exchange(&mut client, b"still mine\n", b"enim llits\n");
}
