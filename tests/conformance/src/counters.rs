//! The server's counters, read back from the text it prints.

/// The counters of a multiserve server, parsed from the `Display` of its
/// `Stats`: `label value` pairs joined by `, ` (`active 0, peak 2,
/// accepted 5, busy 1, …`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub active: u64,
    pub peak_active: u64,
    pub accepted: u64,
    pub busy: u64,
    pub refused: u64,
    pub refused_foreign: u64,
    pub queued: u64,
    pub served_after_waiting: u64,
    pub reset_while_queued: u64,
    pub closed_by_peer: u64,
    pub closed_by_server: u64,
    pub reset: u64,
    pub idle: u64,
    pub half_open: u64,
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
            let (label, value) = item.rsplit_once(' ')?;
            let value: u64 = value.parse().ok()?;
            let (bit, field) = match label {
                "active" => (0, &mut c.active),
                "peak" => (1, &mut c.peak_active),
                "accepted" => (2, &mut c.accepted),
                "busy" => (3, &mut c.busy),
                "refused" => (4, &mut c.refused),
                "queued" => (5, &mut c.queued),
                "served after waiting" => (6, &mut c.served_after_waiting),
                "closed by peer" => (7, &mut c.closed_by_peer),
                "closed by server" => (8, &mut c.closed_by_server),
                "reset" => (9, &mut c.reset),
                "idle" => (10, &mut c.idle),
                "half-open dropped" => (11, &mut c.half_open),
                "close aborted" => (12, &mut c.close_aborted),
                "reclaimed half-open" => (13, &mut c.reclaimed_half_open),
                "reclaimed lingering" => (14, &mut c.reclaimed_lingering),
                "lingering" => (15, &mut c.lingering),
                "answered" => (16, &mut c.answered),
                "rejected" => (17, &mut c.rejected),
                "bytes in" => (18, &mut c.bytes_in),
                "bytes out" => (19, &mut c.bytes_out),
                "SYN dropped" => (20, &mut c.syn_dropped),
                "reset while queued" => (21, &mut c.reset_while_queued),
                "refused foreign" => (22, &mut c.refused_foreign),
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
        self.closed_by_peer + self.closed_by_server + self.reset + self.idle
    }
}
