//! Lossy, corrupting links: every answer still exact.

use smoltcp::time::Duration;

use multiserve::{Config, Reverse};

use crate::net::{rev_line, Net, Setup};

#[test]
fn drops_and_corruption_never_change_an_answer() {
    const CLIENTS: usize = 4;
    const LINES: usize = 200;
    for seed in 1..=20u32 {
        let setup = Setup {
            drop_pct: 5,
            corrupt_pct: 2,
            seed,
            ..Setup::default()
        };
        let config = Config {
            clients: Some(CLIENTS),
            ..Config::default()
        };
        let mut net: Net<Reverse, 6> = Net::new(config, Reverse::default(), setup);
        let clients: Vec<_> = (0..CLIENTS).map(|_| net.connect()).collect();
        let mut expected = vec![Vec::new(); CLIENTS];
        let mut got = vec![Vec::new(); CLIENTS];
        for i in 0..LINES {
            for (k, &c) in clients.iter().enumerate() {
                let line = format!("seed {seed} client {k} line {i} ação");
                net.send(c, format!("{line}\n").as_bytes());
                expected[k].extend(rev_line(&line));
            }
            net.run_for(Duration::from_millis(5));
            for (k, &c) in clients.iter().enumerate() {
                got[k].extend(net.take(c));
            }
        }
        for (k, &c) in clients.iter().enumerate() {
            let rest = expected[k].len() - got[k].len();
            got[k].extend(net.receive(c, rest, Duration::from_secs(600)));
            assert_eq!(got[k], expected[k], "seed {seed} client {k}");
        }
        assert_eq!(
            net.server.stats().answered,
            (CLIENTS * LINES) as u64,
            "seed {seed}"
        );
    }
}
