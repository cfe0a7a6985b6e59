//! The status service's snapshots: the records of a [`View`], as text
//! lines or one JSON line (see the [module docs](super)).

use core::fmt;

use crate::connection::Peer;
use smoltcp::socket::tcp::State;

use crate::server::{SocketView, View};
use crate::service::{Output, OutputFull};
use crate::stats::Stats;

/// The longest service name shown; longer names are cut.
const MAX_NAME: usize = 32;

/// A snapshot being written: its form and the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    json: bool,
    part: Part,
}

impl Snapshot {
    pub(super) fn new(json: bool) -> Self {
        Snapshot {
            json,
            part: Part::Head,
        }
    }
}

/// The records of a snapshot, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Head,
    /// A service's line (text), or its object with its counters (JSON).
    Service(usize),
    /// A service's counters (text only).
    Counters(usize),
    /// Between the services and the sockets.
    Between,
    Socket(usize),
    Tail,
}

/// Write the next record of `snapshot` from `view`, all of it or nothing.
/// Returns whether the snapshot is complete.
pub(super) fn write_next<const R: usize>(
    view: &View<R>,
    snapshot: &mut Snapshot,
    out: &mut Output<'_>,
) -> Result<bool, OutputFull> {
    let json = snapshot.json;
    let next = match snapshot.part {
        Part::Head => {
            let ms = view.uptime().total_millis();
            if json {
                out.write_all_fmt(format_args!(
                    "{{\"uptime_ms\":{ms},\"sockets_in_use\":{},\"services\":[",
                    view.in_use()
                ))?;
            } else {
                out.write_all_fmt(format_args!(
                    "status uptime_ms {ms} services {} sockets {} unlisted {}\n",
                    view.services().len(),
                    view.in_use(),
                    view.unlisted()
                ))?;
            }
            Part::Service(0)
        }
        Part::Service(i) => match view.services().get(i) {
            None => Part::Between,
            Some(s) if json => {
                let comma = if i > 0 { "," } else { "" };
                out.write_all_fmt(format_args!(
                    "{comma}{{\"port\":{},\"name\":\"{}\",\"clients\":{},\"spare\":{},\
                     \"counters\":{}}}",
                    s.port,
                    Word(s.name),
                    s.clients,
                    s.spare,
                    Counters(&s.stats, true)
                ))?;
                Part::Service(i.saturating_add(1))
            }
            Some(s) => {
                out.write_all_fmt(format_args!(
                    "service {} {} clients {} spare {}\n",
                    s.port,
                    Word(s.name),
                    s.clients,
                    s.spare
                ))?;
                Part::Counters(i)
            }
        },
        Part::Counters(i) => {
            if let Some(s) = view.services().get(i) {
                out.write_all_fmt(format_args!(
                    "counters {} {}\n",
                    s.port,
                    Counters(&s.stats, false)
                ))?;
            }
            Part::Service(i.saturating_add(1))
        }
        Part::Between => {
            if json {
                out.write(b"],\"sockets\":[")?;
            }
            Part::Socket(0)
        }
        Part::Socket(i) => match view.sockets().get(i) {
            None => Part::Tail,
            Some(s) => {
                // All of the record or nothing: the comma before it too.
                let comma = if json && i > 0 { "," } else { "" };
                out.write_all_fmt(format_args!("{comma}{}", SocketRecord(s, json)))?;
                Part::Socket(i.saturating_add(1))
            }
        },
        Part::Tail => {
            if json {
                out.write_all_fmt(format_args!("],\"unlisted\":{}}}\n", view.unlisted()))?;
            } else {
                out.write(b"end\n")?;
            }
            return Ok(true);
        }
    };
    snapshot.part = next;
    Ok(false)
}

/// A name as one word: letters, digits, `.`, `_` and `-` as they are,
/// anything else as `_`, at most [`MAX_NAME`] characters.
struct Word(&'static str);

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(MAX_NAME) {
            let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// Every counter as `key value …` (text) or `{"key":value,…}` (JSON).
struct Counters<'s>(&'s Stats, bool);

impl fmt::Display for Counters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = self.1;
        // Between the fields, around a key, after it.
        let (comma, quote, colon) = if json {
            (",", "\"", "\":")
        } else {
            (" ", "", " ")
        };
        if json {
            f.write_str("{")?;
        }
        for (n, (name, value)) in self.0.fields().iter().enumerate() {
            if n > 0 {
                f.write_str(comma)?;
            }
            f.write_str(quote)?;
            f.write_str(name)?;
            f.write_str(colon)?;
            fmt::Display::fmt(value, f)?;
        }
        if json {
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// One socket's record, its fields written once for both forms: text
/// `socket INDEX PORT ROLE STATE PEER BYTES_IN BYTES_OUT IDLE_MS\n`, or
/// JSON `{"index":…,"port":…,…,"idle_ms":…}`.
struct SocketRecord<'s>(&'s SocketView, bool);

/// A field's value: a number, a word (quoted in JSON), or a peer (`-` in
/// text and `null` in JSON without one).
enum Value<'v> {
    Number(u64),
    Word(&'v str),
    State(State),
    Peer(Option<Peer>),
}

impl fmt::Display for SocketRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SocketRecord(s, json) = *self;
        let fields = [
            ("index", Value::Number(s.index as u64)),
            ("port", Value::Number(u64::from(s.port))),
            ("role", Value::Word(s.role.as_str())),
            ("state", Value::State(s.state)),
            ("peer", Value::Peer(s.peer.map(Peer))),
            ("bytes_in", Value::Number(s.bytes_in)),
            ("bytes_out", Value::Number(s.bytes_out)),
            ("idle_ms", Value::Number(s.idle.total_millis())),
        ];
        f.write_str(if json { "{" } else { "socket" })?;
        for (n, (key, value)) in fields.iter().enumerate() {
            if json {
                f.write_str(if n > 0 { ",\"" } else { "\"" })?;
                f.write_str(key)?;
                f.write_str("\":")?;
            } else {
                f.write_str(" ")?;
            }
            // Words, states and peers are strings in JSON.
            let quote = match value {
                Value::Word(_) | Value::State(_) | Value::Peer(Some(_)) if json => "\"",
                _ => "",
            };
            f.write_str(quote)?;
            match value {
                Value::Number(v) => fmt::Display::fmt(v, f)?,
                Value::Word(w) => f.write_str(w)?,
                Value::State(state) => fmt::Display::fmt(state, f)?,
                Value::Peer(Some(peer)) => fmt::Display::fmt(peer, f)?,
                Value::Peer(None) => f.write_str(if json { "null" } else { "-" })?,
            }
            f.write_str(quote)?;
        }
        f.write_str(if json { "}" } else { "\n" })
    }
}
