//! A benchmark of the core alone: round trips over the simulated wire, no
//! TAP and no kernel, so a change to the core can be judged without the
//! noise of the machine. `host/bench/core.sh` runs it, plain and under
//! callgrind (instructions per round trip).

use std::time::Instant;

use smoltcp::time::Duration;

use multiserve::{Config, Reverse};

use crate::net::{Net, Setup};

/// Round trips to make, from `MULTISERVE_ROUND_TRIPS` (default 20,000).
fn round_trips() -> usize {
    std::env::var("MULTISERVE_ROUND_TRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
#[ignore = "a benchmark: run by host/bench/core.sh"]
fn core_round_trips() {
    let total = round_trips();
    for clients in [1usize, 16] {
        // 16 places and their 8 spare sockets, as the host's default.
        let config = Config {
            clients: Some(16),
            ..Config::default()
        };
        let mut net: Net<Reverse, 24> = Net::new(config, Reverse::default(), Setup::default());
        let handles: Vec<_> = (0..clients).map(|_| net.connect()).collect();
        let line = format!("{}\n", "x".repeat(63));
        let start = Instant::now();
        let mut done = 0;
        while done < total {
            // Every client sends one line, then every answer is awaited.
            let batch = clients.min(total - done);
            for &c in &handles[..batch] {
                net.send(c, line.as_bytes());
            }
            for &c in &handles[..batch] {
                let got = net.receive(c, line.len(), Duration::from_secs(10));
                assert_eq!(got.len(), line.len(), "an answer went missing");
            }
            done += batch;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "core round trips, {clients} client(s): {done} in {secs:.3} s = {:.0}/s",
            done as f64 / secs.max(1e-9)
        );
        assert_eq!(net.server.stats().answered, done as u64);
    }
}

/// The pool's capacity (`Config::clients`) for
/// [`core_round_trips_by_pool`], from `MULTISERVE_POOL_CLIENTS`: one of
/// 64 (the default), 256, 1,024 or 4,096. The pool has half as many
/// spare sockets again, as the host's `serve --clients` sizes it.
fn pool_clients() -> usize {
    std::env::var("MULTISERVE_POOL_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// How the core's cost grows with the pool: 64 clients with TCP
/// timestamps (as Linux clients offer them) in round trips over a pool of
/// `MULTISERVE_POOL_CLIENTS` places and half as many spare sockets.
/// smoltcp looks at every socket of the set for each frame it takes in
/// and in each egress, and the server walks every pool socket in each
/// step, so this is where a large pool costs.
#[test]
#[ignore = "a benchmark: run by host/bench/core.sh"]
fn core_round_trips_by_pool() {
    match pool_clients() {
        64 => by_pool::<96>(64),
        256 => by_pool::<384>(256),
        1024 => by_pool::<1536>(1024),
        4096 => by_pool::<6144>(4096),
        other => panic!("MULTISERVE_POOL_CLIENTS={other}: one of 64, 256, 1024, 4096"),
    }
}

fn by_pool<const N: usize>(places: usize) {
    const CLIENTS: usize = 64;
    let total = round_trips();
    let config = Config {
        clients: Some(places),
        spare: Some(places / 2),
        ..Config::default()
    };
    let setup = Setup {
        client_rx: 4096,
        client_tx: 4096,
        ..Setup::default()
    };
    let mut net: Net<Reverse, N> = Net::new(config, Reverse::default(), setup);
    net.client_timestamps = true;
    let handles: Vec<_> = (0..CLIENTS).map(|_| net.connect()).collect();
    let line = format!("{}\n", "x".repeat(63));
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let batch = CLIENTS.min(total - done);
        for &c in &handles[..batch] {
            net.send(c, line.as_bytes());
        }
        for &c in &handles[..batch] {
            let got = net.receive(c, line.len(), Duration::from_secs(10));
            assert_eq!(got.len(), line.len(), "an answer went missing");
        }
        done += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "core round trips, {CLIENTS} clients, pool of {N} sockets: {done} in {secs:.3} s = {:.0}/s",
        done as f64 / secs.max(1e-9)
    );
    assert_eq!(net.server.stats().answered, done as u64);
}
