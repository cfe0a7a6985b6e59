//! Many clients, a full pool, a client that does not read, many short
//! connections.

use std::time::Duration;

use crate::conformance;

#[test]
fn serves_64_clients_at_once() {
    let server = serve!(&["--clients", "64"]);
    conformance::serves_clients_at_once(&server, 64);
}

/// The pool is sized at run time: a thousand kernel clients connected at
/// once, each answered, three rounds.
#[test]
fn serves_1000_clients_at_once() {
    // A thousand sockets open at once in this process, besides the
    // harness's own: the soft limit is often 1,024.
    raise_fd_limit(1200);
    let server = serve!(&["--clients", "1000"]);
    conformance::serves_clients_at_once(&server, 1000);
}

/// Raise this process's open-file limit to at least `at_least`, within
/// its hard limit; fails the test where the hard limit is lower.
fn raise_fd_limit(at_least: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    let ok = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && (limit.rlim_cur >= at_least || {
                limit.rlim_cur = limit.rlim_max.min(at_least.max(limit.rlim_cur));
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
            })
    };
    assert!(
        ok && limit.rlim_cur >= at_least,
        "cannot open {at_least} files at once: limit {limit:?}",
        limit = (limit.rlim_cur, limit.rlim_max)
    );
}

#[test]
fn full_server_answers_busy_at_once_without_a_queue_wait() {
    let server = serve!(&["--clients", "4", "--queue-wait", "0s"]);
    conformance::full_server_answers_busy(&server, 4, Duration::ZERO);
}

#[test]
fn full_server_answers_busy_after_the_queue_wait() {
    let server = serve!(&["--clients", "4"]);
    conformance::full_server_answers_busy(&server, 4, Duration::from_secs(2));
}

#[test]
fn waiting_client_gets_the_next_free_place() {
    let server = serve!(&["--clients", "4"]);
    conformance::waiting_client_gets_the_next_free_place(&server, 4, Duration::from_millis(500));
}

#[test]
fn full_server_refuses_with_reset_policy() {
    let server = serve!(&[
        "--clients",
        "4",
        "--when-full",
        "reset",
        "--queue-wait",
        "0s",
    ]);
    conformance::full_server_refuses(&server, 4);
}

#[test]
fn stalled_reader_does_not_block_others() {
    let server = serve!();
    conformance::stalled_reader_does_not_block_others(&server, 4 << 20, 100);
}

#[test]
fn every_slot_comes_back_after_2000_connections() {
    let server = serve!(&["--clients", "8", "--stats-every", "1"]);
    conformance::short_connections_are_all_served(&server, 2000, 4);
    let counters = conformance::wait_counters(
        &server,
        "all 2000 connections over",
        std::time::Duration::from_secs(5),
        |c| c.accepted >= 2000 && c.active == 0,
    )
    .expect("the host program reports counters");
    assert_eq!(
        counters.refused_busy, 0,
        "no client was told busy: {counters:?}"
    );
    conformance::all_slots_are_free(&server, 8);
}
