//! The server's counters, read back from the text it prints.

/// The counters of a multiserve server, parsed from the `Display` of its
/// `Stats`: `active 0 (peak 2), accepted 5, busy 1, closed 3/2
/// (peer/server), reset 0, idle 0, half-open 0, answered 12, rejected 0,
/// in 100 B, out 100 B`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub active: u64,
    pub peak_active: u64,
    pub accepted: u64,
    pub busy: u64,
    pub closed_by_peer: u64,
    pub closed_by_server: u64,
    pub reset: u64,
    pub idle: u64,
    pub half_open: u64,
    pub answered: u64,
    pub rejected: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The words between the numbers, in order: a line is only taken for
/// counters if its text around the numbers is exactly this.
const SHAPE: &str = "active # (peak #), accepted #, busy #, closed #/# (peer/server), reset #, \
                     idle #, half-open #, answered #, rejected #, in # B, out # B";

impl Counters {
    /// Parses the counters from `text` (without a `stats: ` or `final: `
    /// prefix). `None` if the text does not have the expected shape.
    pub fn parse(text: &str) -> Option<Counters> {
        let mut numbers = Vec::new();
        let mut shape = String::new();
        let mut rest = text.trim();
        while let Some(c) = rest.chars().next() {
            if c.is_ascii_digit() {
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                numbers.push(rest[..end].parse::<u64>().ok()?);
                shape.push('#');
                rest = &rest[end..];
            } else {
                shape.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if shape != SHAPE {
            return None;
        }
        let [active, peak_active, accepted, busy, closed_by_peer, closed_by_server, reset, idle, half_open, answered, rejected, bytes_in, bytes_out] =
            numbers[..]
        else {
            return None;
        };
        Some(Counters {
            active,
            peak_active,
            accepted,
            busy,
            closed_by_peer,
            closed_by_server,
            reset,
            idle,
            half_open,
            answered,
            rejected,
            bytes_in,
            bytes_out,
        })
    }

    /// Parses a line the server prints: `stats: <counters>` or
    /// `final: <counters>`.
    pub fn from_line(line: &str) -> Option<Counters> {
        let text = line
            .strip_prefix("stats: ")
            .or_else(|| line.strip_prefix("final: "))?;
        Counters::parse(text)
    }

    /// Connections that are over, for any reason.
    pub fn ended(&self) -> u64 {
        self.closed_by_peer + self.closed_by_server + self.reset + self.idle
    }
}
