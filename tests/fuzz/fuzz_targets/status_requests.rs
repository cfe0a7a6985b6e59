//! Arbitrary bytes sent to the status service, in arbitrary pieces, while a
//! reverse client is served beside it on the same loop. Every answer of
//! the status service must be one of its records or an error line, the
//! reverse client must get every answer exactly, and after the bytes a
//! request must still get a whole snapshot.
//!
//! Input: records, each starting with a kind byte.
//! - `0`: the status client sends one length byte's worth of the next
//!   bytes (times 4).
//! - `1`: time passes (next byte modulo 50, times 10 ms).
//! - `2`: the reverse client sends a line and must get it back reversed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smoltcp::time::Duration;

use multiserve::{Config, Reverse};

use multiserve_simnet::net;
use net::{Net, Setup, PORT, STATUS_PORT};

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (head, tail) = data.split_at(n);
    *data = tail;
    head
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

/// Whether `line` is a line the status service may write.
fn is_record(line: &[u8]) -> bool {
    const STARTS: [&[u8]; 7] = [
        b"status uptime_ms ",
        b"service ",
        b"counters ",
        b"socket ",
        b"{\"uptime_ms\":",
        b"error: unknown request; send an empty line, \"text\" or \"json\"",
        b"error: request longer than 64 bytes",
    ];
    line == b"end" || STARTS.iter().any(|s| line.starts_with(s))
}

fuzz_target!(|data: &[u8]| {
    let mut net: Net<Reverse, 3> = Net::with_services(
        Config::default(),
        Reverse::default(),
        Setup::default(),
        Config::default(),
    );
    let client = net.connect_port(PORT);
    let watcher = net.connect_port(STATUS_PORT);
    let mut heard = Vec::new();
    let mut data = data;
    while !data.is_empty() {
        match byte(&mut data) % 3 {
            0 => {
                let len = usize::from(byte(&mut data)) * 4;
                let bytes = take(&mut data, len).to_vec();
                let room = net.client(watcher).send_capacity() - net.client(watcher).send_queue();
                let n = bytes.len().min(room);
                net.send(watcher, &bytes[..n]);
                net.run_for(Duration::from_millis(1));
            }
            1 => {
                let ms = u64::from(byte(&mut data) % 50) * 10;
                net.run_for(Duration::from_millis(ms));
            }
            _ => {
                let len = usize::from(byte(&mut data) % 64);
                let text: Vec<u8> = take(&mut data, len).iter().map(|b| b'a' + b % 26).collect();
                let line = String::from_utf8(text).unwrap_or_default();
                let sent = format!("{line}\n");
                let answer = net.exchange(client, sent.as_bytes(), sent.len());
                assert_eq!(answer, net::rev_line(&line), "wrong answer");
            }
        }
        heard.extend(net.take(watcher));
    }
    // End whatever line was left, then ask once more.
    net.send(watcher, b"\ntext\n");
    let end = net.now + Duration::from_secs(60);
    while !heard.ends_with(b"end\n") && net.now < end {
        net.run_until(Duration::from_secs(1), |n| n.client(watcher).recv_queue() > 0);
        heard.extend(net.take(watcher));
    }
    assert!(heard.ends_with(b"end\n"), "no snapshot after the bytes");
    for line in heard.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(is_record(line), "not a status record: {:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(net.exchange(client, b"end\n", 4), b"dne\n");
});
