//! How connections end: each way frees the slot and is counted; and how the
//! server itself ends.

use std::time::{Duration, Instant};

use crate::conformance::{self, Target};
use crate::serve;

/// One slot, so that "the next client is served" proves the slot came back.
const ONE_SLOT: [&str; 4] = ["--clients", "1", "--stats-every", "1"];

#[test]
fn peer_reset_frees_the_slot() {
    let Some(server) = serve("lifecycle::peer_reset_frees_the_slot", &ONE_SLOT) else {
        return;
    };
    conformance::reset_frees_the_slot(&server);
}

#[test]
fn half_close_gets_answers_then_eof() {
    let Some(server) = serve("lifecycle::half_close_gets_answers_then_eof", &ONE_SLOT) else {
        return;
    };
    conformance::half_close_gets_answers_then_eof(&server);
}

#[test]
fn idle_client_is_closed_after_the_timeout() {
    let mut args = ONE_SLOT.to_vec();
    args.extend(["--idle-timeout", "2s"]);
    let Some(server) = serve("lifecycle::idle_client_is_closed_after_the_timeout", &args) else {
        return;
    };
    conformance::idle_client_is_closed(&server, Duration::from_secs(2));
}

#[test]
fn sigterm_closes_clients_in_order_and_exits_0() {
    let Some(server) = serve(
        "lifecycle::sigterm_closes_clients_in_order_and_exits_0",
        &[],
    ) else {
        return;
    };
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
