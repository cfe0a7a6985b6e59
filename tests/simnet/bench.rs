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
