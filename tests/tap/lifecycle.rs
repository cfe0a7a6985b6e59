//! How connections end: each way frees the slot and is counted; and how the
//! server itself ends.

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::conformance::{self, Target};

/// One slot, so that "the next client is served" proves the slot came back.
const ONE_SLOT: [&str; 4] = ["--clients", "1", "--stats-every", "1"];

#[test]
fn peer_reset_frees_the_slot() {
    let server = serve!(&ONE_SLOT);
    conformance::reset_frees_the_slot(&server);
}

#[test]
fn half_close_gets_answers_then_eof() {
    let server = serve!(&ONE_SLOT);
    conformance::half_close_gets_answers_then_eof(&server);
}

#[test]
fn idle_clients_are_closed_after_the_timeout() {
    let server = serve!(&[
        "--clients",
        "4",
        "--idle-timeout",
        "2s",
        "--stats-every",
        "1",
    ]);
    conformance::idle_clients_are_closed(&server, 4, Duration::from_secs(2));
}

#[test]
fn sigterm_closes_clients_in_order_and_exits_0() {
    let server = serve!();
    let mut clients = conformance::occupy(&server, 3);
    let start = Instant::now();
    let status = server.terminate(Duration::from_secs(2));
    let took = start.elapsed();
    let Some(status) = status else {
        panic!(
            "still running 2 s after SIGTERM\n{}",
            server.process.output()
        );
    };
    assert!(
        status.success(),
        "exit status {status} after SIGTERM\n{}",
        server.process.output()
    );
    for client in &mut clients {
        conformance::expect_eof(client);
    }
    let last = server
        .final_counters()
        .unwrap_or_else(|| panic!("no parsable `final:` line\n{}", server.process.output()));
    conformance::assert_consistent(&last);
    assert_eq!(last.accepted, 3, "final counters: {last:?}");
    assert_eq!(last.active, 0, "final counters: {last:?}");
    assert_eq!(last.answered, 3, "final counters: {last:?}");
    assert!(took <= Duration::from_secs(2), "exit took {took:?}");
    // The server is gone: the device no longer answers.
    assert!(
        server.connect().is_err(),
        "connected after the server exited"
    );
}

/// Answers the server has produced when SIGTERM comes still reach a client
/// that reads them, as whole lines in order, and then the connection ends
/// with FIN, not a reset.
#[test]
fn sigterm_lets_pending_answers_go_out() {
    let server = serve!();
    let mut request = Vec::new();
    let mut answer = Vec::new();
    for i in 0..4000 {
        let line = format!("{i:05} answered before the server stops\n");
        request.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(&conformance::reversed_line(line.as_bytes()));
    }
    let mut client = conformance::client(&server);
    let mut writer_side = client.try_clone().expect("clone the stream");
    // The writer may well be stopped by the shutdown: its result is not
    // the point.
    let writer = thread::spawn(move || writer_side.write_all(&request));
    // Answers are pending: the first has reached the client, which does
    // not read yet.
    client
        .peek(&mut [0u8; 1])
        .expect("the first answer arrives");
    server.process.signal(libc::SIGTERM);
    let mut got = Vec::new();
    let result = client.read_to_end(&mut got);
    let status = server.process.wait_exit(Duration::from_secs(2));
    let _ = writer.join();
    if let Err(e) = result {
        panic!(
            "after {} bytes of answers: {e} ({:?}), expected EOF\n{}",
            got.len(),
            e.kind(),
            server.process.output()
        );
    }
    assert!(!got.is_empty(), "no answer reached the client");
    assert!(got.ends_with(b"\n"), "the last answer was cut");
    assert!(
        answer.starts_with(&got),
        "the answers received are not the first answers, in order"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{}",
        server.process.output()
    );
}
