//! The server's counters, read back from the text it prints.

/// The counters of a multiserve server, parsed from the `Display` of its
/// `Stats`: `name value` pairs joined by `, ` (`active 0, peak_active 2,
/// accepted 5, refused_busy 1, …`). The names are `Stats`' fields, and so
/// are the fields here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub active: u64,
    pub peak_active: u64,
    pub accepted: u64,
    pub refused_busy: u64,
    pub refused_reset: u64,
    pub refused_foreign: u64,
    pub queued: u64,
    pub queued_then_served: u64,
    pub queued_reset: u64,
    pub closed_by_peer: u64,
    pub closed_by_server: u64,
    pub reset: u64,
    pub timed_out: u64,
    pub half_open_dropped: u64,
    pub close_aborted: u64,
    pub reclaimed_half_open: u64,
    pub reclaimed_lingering: u64,
    pub syn_dropped: u64,
    pub lingering: u64,
    pub answered: u64,
    pub rejected: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Counters {
    /// Parses the counters from `text` (without a `stats: ` or `final: `
    /// prefix). `None` unless every counter is there exactly once, and
    /// nothing else.
    pub fn parse(text: &str) -> Option<Counters> {
        let mut c = Counters::default();
        let mut seen = 0u32;
        for item in text.trim().split(", ") {
            let (name, value) = item.split_once(' ')?;
            let value: u64 = value.parse().ok()?;
            let (bit, field) = match name {
                "active" => (0, &mut c.active),
                "peak_active" => (1, &mut c.peak_active),
                "accepted" => (2, &mut c.accepted),
                "refused_busy" => (3, &mut c.refused_busy),
                "refused_reset" => (4, &mut c.refused_reset),
                "queued" => (5, &mut c.queued),
                "queued_then_served" => (6, &mut c.queued_then_served),
                "closed_by_peer" => (7, &mut c.closed_by_peer),
                "closed_by_server" => (8, &mut c.closed_by_server),
                "reset" => (9, &mut c.reset),
                "timed_out" => (10, &mut c.timed_out),
                "half_open_dropped" => (11, &mut c.half_open_dropped),
                "close_aborted" => (12, &mut c.close_aborted),
                "reclaimed_half_open" => (13, &mut c.reclaimed_half_open),
                "reclaimed_lingering" => (14, &mut c.reclaimed_lingering),
                "lingering" => (15, &mut c.lingering),
                "answered" => (16, &mut c.answered),
                "rejected" => (17, &mut c.rejected),
                "bytes_in" => (18, &mut c.bytes_in),
                "bytes_out" => (19, &mut c.bytes_out),
                "syn_dropped" => (20, &mut c.syn_dropped),
                "queued_reset" => (21, &mut c.queued_reset),
                "refused_foreign" => (22, &mut c.refused_foreign),
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            *field = value;
        }
        (seen == (1 << 23) - 1).then_some(c)
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
        self.closed_by_peer + self.closed_by_server + self.reset + self.timed_out
    }
}
