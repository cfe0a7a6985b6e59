//! The status service's JSON snapshot, and the rates `watch` draws from a
//! series of them.

use std::collections::VecDeque;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// One JSON snapshot of the status service.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub uptime_ms: u64,
    /// Every socket in use, listed or not.
    #[serde(default)]
    pub sockets_in_use: usize,
    pub services: Vec<ServiceInfo>,
    pub sockets: Vec<SocketRow>,
    /// Sockets in use that did not fit the listing.
    pub unlisted: usize,
}

/// A service and its counters.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceInfo {
    pub port: u16,
    pub name: String,
    pub clients: usize,
    pub spare: usize,
    pub counters: Counters,
}

/// One socket in use.
#[derive(Debug, Clone, Deserialize)]
pub struct SocketRow {
    pub index: usize,
    pub port: u16,
    pub role: String,
    pub state: String,
    pub peer: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub idle_ms: u64,
}

/// A service's counters, in the order the server sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<(String, u64)>);

impl Counters {
    /// The counter named `key`, 0 if the server has none by that name.
    pub fn get(&self, key: &str) -> u64 {
        self.0.iter().find(|(k, _)| k == key).map_or(0, |&(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for Counters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Counters, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Counters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counters, A::Error> {
                let mut counters = Vec::new();
                while let Some(entry) = map.next_entry::<String, u64>()? {
                    counters.push(entry);
                }
                Ok(Counters(counters))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

impl Snapshot {
    /// Parses one JSON line.
    pub fn parse(line: &str) -> Result<Snapshot, String> {
        serde_json::from_str(line).map_err(|e| format!("not a status snapshot ({e}): {line:.80}"))
    }

    /// The sum of `key` over the services other than the status service.
    pub fn served_total(&self, key: &str) -> u64 {
        self.services
            .iter()
            .filter(|s| s.name != "status")
            .map(|s| s.counters.get(key))
            .sum()
    }
}

/// How many per-second rates are kept: a minute.
pub const SECONDS: usize = 60;

/// Requests answered and connections accepted per second, over the last
/// minute, by the services other than the status service.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The sample the next rate is measured from.
    last: Option<Sample>,
    /// Oldest first.
    pub requests: VecDeque<u64>,
    pub connections: VecDeque<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    uptime_ms: u64,
    answered: u64,
    accepted: u64,
}

impl History {
    /// Takes in a snapshot: once a second or more has passed since the
    /// last rate, one more rate of each. A server that restarted (its
    /// uptime or counters went back) starts a new history.
    pub fn push(&mut self, snapshot: &Snapshot) {
        let now = Sample {
            uptime_ms: snapshot.uptime_ms,
            answered: snapshot.served_total("answered"),
            accepted: snapshot.served_total("accepted"),
        };
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if now.uptime_ms < last.uptime_ms
            || now.answered < last.answered
            || now.accepted < last.accepted
        {
            *self = History::default();
            self.last = Some(now);
            return;
        }
        let elapsed = now.uptime_ms - last.uptime_ms;
        if elapsed < 1000 {
            return;
        }
        let rate = |a: u64, b: u64| (b - a).saturating_mul(1000) / elapsed;
        push_capped(&mut self.requests, rate(last.answered, now.answered));
        push_capped(&mut self.connections, rate(last.accepted, now.accepted));
        self.last = Some(now);
    }
}

fn push_capped(rates: &mut VecDeque<u64>, rate: u64) {
    if rates.len() == SECONDS {
        rates.pop_front();
    }
    rates.push_back(rate);
}

/// A duration in milliseconds, short: `350ms`, `12.3s`, `5m02s`, `3h07m`.
pub fn short_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{}.{}s", ms / 1000, ms % 1000 / 100),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// A byte count in at most 6 characters: `859`, `66.6K`, `1.2M`, `3.4G`.
pub fn short_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    if n < 10_000 {
        return n.to_string();
    }
    let (size, unit) = UNITS
        .into_iter()
        .find(|&(size, _)| n >= size)
        .unwrap_or((1, ""));
    let tenths = u128::from(n) * 10 / u128::from(size);
    if tenths < 1000 {
        format!("{}.{}{unit}", tenths / 10, tenths % 10)
    } else {
        format!("{}{unit}", tenths / 10)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A snapshot like the server's: a reverse service with three clients,
    /// and the status service with one.
    pub const JSON: &str = concat!(
        r#"{"uptime_ms":81234,"sockets_in_use":7,"services":["#,
        r#"{"port":7000,"name":"reverse","clients":16,"spare":8,"counters":{"active":3,"peak_active":3,"accepted":5,"refused_busy":1,"refused_reset":0,"queued":0,"queued_then_served":0,"closed_by_peer":2,"closed_by_server":0,"reset":0,"timed_out":0,"half_open_dropped":0,"close_aborted":0,"reclaimed_half_open":0,"reclaimed_lingering":0,"syn_dropped":0,"lingering":0,"answered":42,"rejected":0,"bytes_in":420,"bytes_out":420}},"#,
        r#"{"port":7001,"name":"status","clients":2,"spare":1,"counters":{"active":1,"peak_active":1,"accepted":1,"refused_busy":0,"refused_reset":0,"queued":0,"queued_then_served":0,"closed_by_peer":0,"closed_by_server":0,"reset":0,"timed_out":0,"half_open_dropped":0,"close_aborted":0,"reclaimed_half_open":0,"reclaimed_lingering":0,"syn_dropped":0,"lingering":0,"answered":9,"rejected":0,"bytes_in":45,"bytes_out":9000}}],"#,
        r#""sockets":["#,
        r#"{"index":0,"port":7000,"role":"serving","state":"ESTABLISHED","peer":"192.168.69.100:50312","bytes_in":12,"bytes_out":12,"idle_ms":350},"#,
        r#"{"index":1,"port":7000,"role":"serving","state":"ESTABLISHED","peer":"192.168.69.100:50320","bytes_in":6,"bytes_out":6,"idle_ms":12345},"#,
        r#"{"index":2,"port":7000,"role":"lingering","state":"TIME-WAIT","peer":"[fdaa::100]:41000","bytes_in":30,"bytes_out":30,"idle_ms":1500},"#,
        r#"{"index":3,"port":7000,"role":"listening","state":"LISTEN","peer":null,"bytes_in":0,"bytes_out":0,"idle_ms":81234},"#,
        r#"{"index":4,"port":7000,"role":"busy","state":"FIN-WAIT-1","peer":"192.168.69.100:50400","bytes_in":0,"bytes_out":52,"idle_ms":20},"#,
        r#"{"index":5,"port":7001,"role":"serving","state":"ESTABLISHED","peer":"192.168.69.100:35582","bytes_in":45,"bytes_out":9000,"idle_ms":250},"#,
        r#"{"index":6,"port":7001,"role":"listening","state":"LISTEN","peer":null,"bytes_in":0,"bytes_out":0,"idle_ms":81234}"#,
        r#"],"unlisted":0}"#
    );

    pub fn snapshot() -> Snapshot {
        Snapshot::parse(JSON).expect("the sample parses")
    }

    #[test]
    fn parses_the_servers_json_keeping_the_counters_order() {
        let s = snapshot();
        assert_eq!(s.uptime_ms, 81234);
        assert_eq!(s.services.len(), 2);
        let reverse = &s.services[0];
        assert_eq!((reverse.port, reverse.name.as_str()), (7000, "reverse"));
        assert_eq!(reverse.counters.0.len(), 21);
        assert_eq!(reverse.counters.0[0], ("active".to_string(), 3));
        assert_eq!(reverse.counters.get("answered"), 42);
        assert_eq!(s.sockets[3].peer, None);
        assert_eq!(
            s.served_total("answered"),
            42,
            "the status service left out"
        );
    }

    #[test]
    fn history_measures_rates_per_second_and_restarts_with_the_server() {
        let mut s = snapshot();
        let mut history = History::default();
        history.push(&s);
        s.uptime_ms += 500;
        history.push(&s);
        assert!(history.requests.is_empty(), "under a second: no rate yet");
        s.uptime_ms += 1500;
        s.services[0].counters.0[2].1 += 4; // accepted
        s.services[0].counters.0[17].1 += 40; // answered
        history.push(&s);
        assert_eq!(Vec::from(history.requests.clone()), [20]);
        assert_eq!(Vec::from(history.connections.clone()), [2]);
        s.uptime_ms = 10;
        history.push(&s);
        assert!(
            history.requests.is_empty(),
            "a restarted server: a new history"
        );
        for n in 1..=100 {
            s.uptime_ms = 10 + n * 1000;
            history.push(&s);
        }
        assert_eq!(history.requests.len(), SECONDS);
    }

    #[test]
    fn short_byte_counts() {
        assert_eq!(short_bytes(859), "859");
        assert_eq!(short_bytes(9_999), "9999");
        assert_eq!(short_bytes(66_555), "64.9K");
        assert_eq!(short_bytes(1_000_000), "976K");
        assert_eq!(short_bytes(5 << 30), "5.0G");
        assert_eq!(short_bytes(u64::MAX), "16777215T");
    }

    #[test]
    fn short_durations() {
        assert_eq!(short_ms(350), "350ms");
        assert_eq!(short_ms(12_345), "12.3s");
        assert_eq!(short_ms(302_000), "5m02s");
        assert_eq!(short_ms(11_220_000), "3h07m");
    }
}
