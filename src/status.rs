//! The status service: the loop's sockets and counters, live, over TCP.
//!
//! [`Status`] is a [`Service`] like any other, run by its own
//! [`Server`] on its own port (7001 by convention). [`Watched`] puts it
//! beside the services it reports on, in one poll step:
//!
//! ```text
//!   let mut watched = Watched::new((reverse, echo), status_server);
//!   loop { poll(now, &mut iface, &mut device, &mut sockets, &mut watched); … }
//! ```
//!
//! # Protocol
//!
//! A client that connects gets one text snapshot. Each line it sends then
//! asks for one more: an empty line or `text` for a text snapshot, `json`
//! for a JSON one (a `\r` before the `\n` is ignored; a last line without
//! `\n` counts once the client has closed its side). Anything else gets
//! `error: unknown request; send an empty line, "text" or "json"`, a line
//! longer than [`MAX_REQUEST`] bytes gets `error: request longer than 64
//! bytes` and is discarded up to its end. Requests are answered in order,
//! one snapshot at a time; nothing a client sends changes anything.
//!
//! # Text snapshot
//!
//! One record per line, fields separated by one space, no field with a
//! space in it, so `awk '$1 == "socket" && $4 == "serving"'` lists the
//! served connections:
//!
//! ```text
//! status uptime_ms 81234 services 2 sockets 27 unlisted 0
//! service 7000 reverse clients 16 spare 8
//! counters 7000 active 3 peak 3 accepted 3 busy 0 … bytes_in 36 bytes_out 36
//! service 7001 status clients 2 spare 1
//! counters 7001 active 1 …
//! socket 0 7000 serving ESTABLISHED 192.168.69.100:50312 12 12 350
//! socket 1 7000 listening LISTEN - 0 0 81234
//! …
//! end
//! ```
//!
//! - `status`: milliseconds since the first poll step, the
//!   services listed, the sockets in use and how many of them did not fit
//!   the listing (see [`Status`]).
//! - `service PORT NAME clients N spare N`, then `counters PORT` and every
//!   counter of [`Stats`] as `key value` (keys are the labels of
//!   [`Stats::fields`] in lower case with `_` for spaces and hyphens).
//! - `socket INDEX PORT ROLE STATE PEER BYTES_IN BYTES_OUT IDLE_MS`: ROLE
//!   is the [`Role`] word (`listening`, `half-open`, `queued`, `serving`,
//!   `busy`, `lingering`, `off`), STATE the TCP state (`LISTEN`,
//!   `ESTABLISHED`, `TIME-WAIT`, …), PEER `address:port`, `[address]:port`
//!   for IPv6, or `-`; the bytes are those the service consumed from and
//!   wrote to the socket's current (or last) connection; IDLE_MS is the
//!   time since a served connection last moved a byte, or since the socket
//!   took its role.
//! - `end` closes the snapshot.
//!
//! # JSON snapshot
//!
//! One line per snapshot, the same fields:
//! `{"uptime_ms":81234,"sockets_in_use":27,"services":[{"port":7000,"name":"reverse","clients":16,"spare":8,"counters":{"active":3,…}}],"sockets":[{"index":0,"port":7000,"role":"serving","state":"ESTABLISHED","peer":"192.168.69.100:50312","bytes_in":12,"bytes_out":12,"idle_ms":350}],"unlisted":0}`
//! (`"peer":null` when there is none).
//!
//! # Backpressure and memory
//!
//! A snapshot is written record by record into the connection's transmit
//! buffer as room frees up; one longer than the buffer is finished on later
//! poll steps (its later records may then be a few milliseconds newer).
//! While a snapshot is being written, no further request is read: a client
//! that never reads fills its transmit buffer, its requests wait in its
//! receive buffer, its window closes, and the idle timeout closes it.
//! Until it reads it costs the poll steps nothing but a look at its queues:
//! the view is described only for a client with room for its next record
//! or a request to read. The [`View`] the snapshots are written from is
//! part of the [`Status`] value: [`View::SIZE`] bytes for `R` rows.
//!
//! # Security
//!
//! The snapshot shows the peers' addresses and ports, so the status
//! service answers only peers on the interface's own subnets unless its
//! [`Config::peers`](crate::Config::peers) says otherwise (see
//! [`Peers`]): a peer across a router is refused with a reset. Leave the
//! status server out where even the local network must not see them.

use core::fmt;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::socket::tcp::State;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::config::Peers;
use crate::connection::{Peer, Role};
use crate::server::Server;
use crate::service::{Output, OutputFull, Progress, Service};
use crate::services::{Services, Syn};
use crate::stats::Stats;

/// The longest request line, in bytes, without its line end.
pub const MAX_REQUEST: usize = 64;

/// The most services a [`View`] lists; more are left out.
pub const MAX_SERVICES: usize = 6;

/// The longest service name shown; longer names are cut.
const MAX_NAME: usize = 32;

/// One service as a snapshot lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceView {
    /// Its port.
    pub port: u16,
    /// [`Service::name`].
    pub name: &'static str,
    /// Its capacity: clients served at once.
    pub clients: usize,
    /// Its spare sockets.
    pub spare: usize,
    /// Its counters.
    pub stats: Stats,
}

/// One socket as a snapshot lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketView {
    /// Its place in the listing, from 0, across all services.
    pub index: usize,
    /// The port of its service.
    pub port: u16,
    /// Its role.
    pub role: Role,
    /// Its TCP state.
    pub state: State,
    /// The peer, if it has one.
    pub peer: Option<IpEndpoint>,
    /// Bytes the service consumed from its current (or last) connection.
    pub bytes_in: u64,
    /// Bytes written to its current (or last) connection.
    pub bytes_out: u64,
    /// Time since a served connection last moved a byte, or since the
    /// socket took its role.
    pub idle: Duration,
}

/// What the status service shows: every service and up to `R` sockets,
/// as [`Services::report`] describes them.
#[derive(Debug, Clone, Default)]
pub struct View<const R: usize> {
    started: Option<Instant>,
    uptime: Duration,
    services: heapless::Vec<ServiceView, MAX_SERVICES>,
    sockets: heapless::Vec<SocketView, R>,
    in_use: usize,
}

impl<const R: usize> View<R> {
    /// Bytes of a view with room for `R` sockets.
    pub const SIZE: usize = core::mem::size_of::<Self>();

    /// Count the uptime from `now`, unless it is counted already.
    pub fn start_clock(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Start a new description at `now`: no services, no sockets.
    pub fn clear(&mut self, now: Instant) {
        let started = *self.started.get_or_insert(now);
        self.uptime = if now > started {
            now - started
        } else {
            Duration::ZERO
        };
        self.services.clear();
        self.sockets.clear();
        self.in_use = 0;
    }

    /// Add a service (left out beyond [`MAX_SERVICES`]).
    pub fn push_service(&mut self, service: ServiceView) {
        let _ = self.services.push(service);
    }

    /// Add a socket; its `index` is set to its place. Beyond `R` sockets
    /// it is only counted (see [`View::unlisted`]).
    pub fn push_socket(&mut self, mut socket: SocketView) {
        socket.index = self.in_use;
        self.in_use = self.in_use.saturating_add(1);
        let _ = self.sockets.push(socket);
    }

    /// Time since the first description.
    pub fn uptime(&self) -> Duration {
        self.uptime
    }

    /// The services described.
    pub fn services(&self) -> &[ServiceView] {
        &self.services
    }

    /// The sockets listed.
    pub fn sockets(&self) -> &[SocketView] {
        &self.sockets
    }

    /// Sockets described but not listed: more than `R`.
    pub fn unlisted(&self) -> usize {
        self.in_use.saturating_sub(self.sockets.len())
    }

    /// Write the next record of `snapshot`, all of it or nothing. Returns
    /// whether the snapshot is complete.
    fn write_next(
        &self,
        snapshot: &mut Snapshot,
        out: &mut Output<'_>,
    ) -> Result<bool, OutputFull> {
        let json = snapshot.json;
        let next = match snapshot.part {
            Part::Head => {
                let ms = self.uptime.total_millis();
                if json {
                    out.write_all_fmt(format_args!(
                        "{{\"uptime_ms\":{ms},\"sockets_in_use\":{},\"services\":[",
                        self.in_use
                    ))?;
                } else {
                    out.write_all_fmt(format_args!(
                        "status uptime_ms {ms} services {} sockets {} unlisted {}\n",
                        self.services.len(),
                        self.in_use,
                        self.unlisted()
                    ))?;
                }
                Part::Service(0)
            }
            Part::Service(i) => match self.services.get(i) {
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
                if let Some(s) = self.services.get(i) {
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
            Part::Socket(i) => match self.sockets.get(i) {
                None => Part::Tail,
                Some(s) => {
                    let peer = s.peer.map(Peer);
                    let idle = s.idle.total_millis();
                    if json {
                        let comma = if i > 0 { "," } else { "" };
                        out.write_all_fmt(format_args!(
                            "{comma}{{\"index\":{},\"port\":{},\"role\":\"{}\",\"state\":\"{}\",\
                             \"peer\":{},\"bytes_in\":{},\"bytes_out\":{},\"idle_ms\":{idle}}}",
                            s.index,
                            s.port,
                            s.role.as_str(),
                            s.state,
                            OrNone(peer.as_ref(), true),
                            s.bytes_in,
                            s.bytes_out,
                        ))?;
                    } else {
                        out.write_all_fmt(format_args!(
                            "socket {} {} {} {} {} {} {} {idle}\n",
                            s.index,
                            s.port,
                            s.role.as_str(),
                            s.state,
                            OrNone(peer.as_ref(), false),
                            s.bytes_in,
                            s.bytes_out,
                        ))?;
                    }
                    Part::Socket(i.saturating_add(1))
                }
            },
            Part::Tail => {
                if json {
                    out.write_all_fmt(format_args!("],\"unlisted\":{}}}\n", self.unlisted()))?;
                } else {
                    out.write(b"end\n")?;
                }
                return Ok(true);
            }
        };
        snapshot.part = next;
        Ok(false)
    }
}

/// A snapshot being written: its form and the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    json: bool,
    part: Part,
}

impl Snapshot {
    fn new(json: bool) -> Self {
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

/// A status connection's state: the snapshot being written, if any, and
/// whether an overlong request is being discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSession {
    snapshot: Option<Snapshot>,
    discarding: bool,
    /// Asked while the view was not described yet: answered later in the
    /// same poll step.
    waiting: bool,
    /// The room, in bytes, in which the snapshot's next record did not
    /// fit: until there is more, the view is not described for it.
    stalled: Option<u16>,
}

/// A new connection is greeted with a text snapshot.
impl Default for StatusSession {
    fn default() -> Self {
        StatusSession {
            snapshot: Some(Snapshot::new(false)),
            discarding: false,
            waiting: false,
            stalled: None,
        }
    }
}

/// The status service; see the [module docs](self). It lists up to `R`
/// sockets: give it at least every socket in use of every service watched,
/// its own included.
#[derive(Debug, Clone, Default)]
pub struct Status<const R: usize> {
    view: View<R>,
    /// The view was described in this poll step, after the status
    /// server's own walk (so its own sockets show their new roles).
    fresh: bool,
    /// A session had something to do while the view was not fresh.
    declined: bool,
}

const UNKNOWN: &[u8] = b"error: unknown request; send an empty line, \"text\" or \"json\"\n";
const TOO_LONG: &[u8] = b"error: request longer than 64 bytes\n";

impl<const R: usize> Status<R> {
    /// A status service with nothing described yet.
    pub fn new() -> Self {
        Status {
            view: View::default(),
            fresh: false,
            declined: false,
        }
    }

    /// What the next snapshot is written from.
    pub fn view(&self) -> &View<R> {
        &self.view
    }

    /// Count the uptime from `now`, the first time.
    pub(crate) fn start_clock(&mut self, now: Instant) {
        self.view.start_clock(now);
    }

    /// Whether a session had something to do while the view was not
    /// described: the view must be, and the status server walked again.
    pub(crate) fn declined(&self) -> bool {
        self.declined
    }

    /// The view to describe into; it counts as fresh until [`Status::settle`].
    pub(crate) fn describe(&mut self) -> &mut View<R> {
        self.fresh = true;
        &mut self.view
    }

    /// The poll step is over: the view is old from now on.
    pub(crate) fn settle(&mut self) {
        self.fresh = false;
        self.declined = false;
    }
}

impl<const R: usize> Service for Status<R> {
    type Session = StatusSession;

    fn name(&self) -> &'static str {
        "status"
    }

    /// Only the local subnets: the snapshots list every client's address.
    fn peers(&self) -> Peers {
        Peers::LocalSubnets
    }

    /// A request and its line end (`\r\n`).
    fn input_window(&self) -> usize {
        MAX_REQUEST + 2
    }

    /// The longest record: a service's counters in JSON, about 850 bytes.
    fn output_window(&self) -> usize {
        1024
    }

    fn wants_output(&self, session: &StatusSession) -> bool {
        session.snapshot.is_some() || session.waiting
    }

    fn receive(
        &mut self,
        session: &mut StatusSession,
        input: &[u8],
        finished: bool,
        output: &mut Output<'_>,
    ) -> Progress {
        let mut progress = Progress::default();
        if !self.fresh {
            // Walked before the view was described: come back after,
            // unless the snapshot's next record did not fit in this room
            // already (its requests wait behind it).
            let stalled = session.snapshot.is_some()
                && session
                    .stalled
                    .is_some_and(|room| output.remaining() <= usize::from(room));
            session.waiting = !stalled && (session.snapshot.is_some() || !input.is_empty());
            self.declined |= session.waiting;
            return progress;
        }
        session.waiting = false;
        session.stalled = None;
        loop {
            if let Some(mut snapshot) = session.snapshot {
                loop {
                    match self.view.write_next(&mut snapshot, output) {
                        Ok(true) => break,
                        Ok(false) => {}
                        Err(OutputFull) => {
                            session.snapshot = Some(snapshot);
                            // Less than a record: at most the output
                            // window, 1024 bytes.
                            let room = u16::try_from(output.remaining()).unwrap_or(u16::MAX);
                            session.stalled = Some(room);
                            return progress;
                        }
                    }
                }
                session.snapshot = None;
                progress.answered = progress.answered.saturating_add(1);
            }
            let rest = input.get(progress.consumed..).unwrap_or_default();
            if rest.is_empty() {
                return progress;
            }
            let newline = rest.iter().position(|&b| b == b'\n');
            if session.discarding {
                match newline {
                    Some(end) => {
                        session.discarding = false;
                        progress.consumed = progress.consumed.saturating_add(end + 1);
                        continue;
                    }
                    None => {
                        progress.consumed = input.len();
                        return progress;
                    }
                }
            }
            let (line, taken) = match newline {
                Some(end) => (rest.get(..end).unwrap_or_default(), end + 1),
                None if rest.len() > MAX_REQUEST + 1 => {
                    // No end in sight: refuse it and skip to its end.
                    if output.write(TOO_LONG).is_err() {
                        return progress;
                    }
                    progress.rejected = progress.rejected.saturating_add(1);
                    session.discarding = true;
                    continue;
                }
                None if finished => (rest, rest.len()),
                None => return progress,
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match line {
                _ if line.len() > MAX_REQUEST => {
                    if output.write(TOO_LONG).is_err() {
                        return progress;
                    }
                    progress.rejected = progress.rejected.saturating_add(1);
                }
                b"" | b"text" => session.snapshot = Some(Snapshot::new(false)),
                b"json" => session.snapshot = Some(Snapshot::new(true)),
                _ => {
                    if output.write(UNKNOWN).is_err() {
                        return progress;
                    }
                    progress.rejected = progress.rejected.saturating_add(1);
                }
            }
            progress.consumed = progress.consumed.saturating_add(taken);
        }
    }
}

/// Services and the status server that reports on them, as one
/// [`Services`]: each poll step walks `services`, then the status server;
/// when a status client is owed a snapshot, it then describes every socket
/// into the status service's [`View`] and walks the status server once
/// more to write it. A [`Status`] polled without `Watched` answers nothing.
pub struct Watched<'a, P, const R: usize, const M: usize> {
    /// The services watched.
    pub services: P,
    /// The status server.
    pub status: Server<'a, Status<R>, M>,
}

impl<'a, P: Services<'a>, const R: usize, const M: usize> Watched<'a, P, R, M> {
    /// Watch `services` with `status`.
    pub fn new(services: P, status: Server<'a, Status<R>, M>) -> Self {
        Watched { services, status }
    }
}

impl<'a, P: Services<'a>, const R: usize, const M: usize> Services<'a> for Watched<'a, P, R, M> {
    fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool {
        self.services.prepare(sockets) | self.status.prepare(sockets)
    }

    fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn {
        match self.services.syn(port, now, sockets) {
            Syn::NotOurs => self.status.syn(port, now, sockets),
            verdict => verdict,
        }
    }

    fn frame_done(&mut self, now: Instant, iface: &Interface, sockets: &mut SocketSet<'a>) -> bool {
        self.services.frame_done(now, iface, sockets) | self.status.frame_done(now, iface, sockets)
    }

    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        self.status.start_clock(now);
        let next = self.services.walk(now, sockets);
        let mut own = self.status.walk(now, sockets);
        if self.status.service().declined() {
            self.status.describe_into_view(&self.services, now, sockets);
            own = self.status.walk(now, sockets);
        }
        self.status.settle();
        crate::server::earliest(next, own)
    }

    fn report<const V: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<V>) {
        self.services.report(now, sockets, view);
        self.status.report(now, sockets, view);
    }

    fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        self.services.shutdown(sockets);
        self.status.shutdown(sockets);
    }

    fn is_shut_down(&self) -> bool {
        self.services.is_shut_down() && self.status.is_shut_down()
    }
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
        if json {
            f.write_str("{")?;
        }
        for (n, (label, value)) in self.0.fields().iter().enumerate() {
            match (json, n) {
                (true, 0) => write!(f, "\"{}\":{value}", Key(label))?,
                (true, _) => write!(f, ",\"{}\":{value}", Key(label))?,
                (false, 0) => write!(f, "{} {value}", Key(label))?,
                (false, _) => write!(f, " {} {value}", Key(label))?,
            }
        }
        if json {
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// A counter's label as a key: lower case, `_` for spaces and hyphens.
struct Key<'s>(&'s str);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            let c = match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// A peer, or `-` (text) / `null` (JSON) without one.
struct OrNone<'p>(Option<&'p Peer>, bool);

impl fmt::Display for OrNone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(peer), true) => write!(f, "\"{peer}\""),
            (Some(peer), false) => write!(f, "{peer}"),
            (None, true) => f.write_str("null"),
            (None, false) => f.write_str("-"),
        }
    }
}
