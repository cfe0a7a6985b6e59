//! The status service: the loop's sockets and counters, live, over TCP.

mod snapshot;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::time::Instant;

use crate::config::Peers;
use crate::server::{earliest, Server, Steps, Syn, View};
use crate::service::{Output, OutputFull, Progress, Service};
use snapshot::{write_next, Snapshot};

/// The longest status request line, in bytes, without its line end.
pub const MAX_STATUS_REQUEST: usize = 64;

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

/// The status service. It lists up to `R`
/// sockets: give it at least every socket in use of every service watched,
/// its own included.
///
/// [`Status`] is a [`Service`] like any other, run by its own
/// [`Server`] on its own port (7001 by convention). [`Watched`] puts it
/// beside the services it reports on, in one poll step:
///
/// ```text
///   let mut watched = Watched::new((reverse, echo), status_server);
///   loop { watched.poll(now, &mut iface, &mut device, &mut sockets); … }
/// ```
///
/// # Protocol
///
/// A client that connects gets one text snapshot. Each line it sends then
/// asks for one more: an empty line or `text` for a text snapshot, `json`
/// for a JSON one (a `\r` before the `\n` is ignored; a last line without
/// `\n` counts once the client has closed its side). Anything else gets
/// `error: unknown request; send an empty line, "text" or "json"`, a line
/// longer than [`MAX_STATUS_REQUEST`] bytes gets `error: request longer than 64
/// bytes` and is discarded up to its end. Requests are answered in order,
/// one snapshot at a time; nothing a client sends changes anything.
///
/// # Text snapshot
///
/// One record per line, fields separated by one space, no field with a
/// space in it, so `awk '$1 == "socket" && $4 == "serving"'` lists the
/// served connections:
///
/// ```text
/// status uptime_ms 81234 services 2 sockets 27 unlisted 0
/// service 7000 reverse clients 16 spare 8
/// counters 7000 active 3 peak_active 3 accepted 3 refused_busy 0 … bytes_in 36 bytes_out 36
/// service 7001 status clients 2 spare 1
/// counters 7001 active 1 …
/// socket 0 7000 serving ESTABLISHED 192.168.69.100:50312 12 12 350
/// socket 1 7000 listening LISTEN - 0 0 81234
/// …
/// end
/// ```
///
/// - `status`: milliseconds since the first poll step, the
///   services listed, the sockets in use and how many of them did not fit
///   the listing (see [`Status`]).
/// - `service PORT NAME clients N spare N`, then `counters PORT` and every
///   counter of [`Stats`](crate::Stats) as `name value`, the names of
///   [`Stats::fields`](crate::Stats::fields), which are the fields'.
/// - `socket INDEX PORT ROLE STATE PEER BYTES_IN BYTES_OUT IDLE_MS`: ROLE
///   is the [`Role`](crate::Role) word (`listening`, `half-open`, `queued`, `serving`,
///   `busy`, `lingering`, `off`), STATE the TCP state (`LISTEN`,
///   `ESTABLISHED`, `TIME-WAIT`, …), PEER `address:port`, `[address]:port`
///   for IPv6, or `-`; the bytes are those the service consumed from and
///   wrote to the socket's current (or last) connection; IDLE_MS is the
///   time since a served connection last moved a byte, or since the socket
///   took its role.
/// - `end` closes the snapshot.
///
/// # JSON snapshot
///
/// One line per snapshot, the same fields:
/// `{"uptime_ms":81234,"sockets_in_use":27,"services":[{"port":7000,"name":"reverse","clients":16,"spare":8,"counters":{"active":3,…}}],"sockets":[{"index":0,"port":7000,"role":"serving","state":"ESTABLISHED","peer":"192.168.69.100:50312","bytes_in":12,"bytes_out":12,"idle_ms":350}],"unlisted":0}`
/// (`"peer":null` when there is none).
///
/// # Backpressure and memory
///
/// A snapshot is written record by record into the connection's transmit
/// buffer as room frees up; one longer than the buffer is finished on later
/// poll steps (its later records may then be a few milliseconds newer).
/// While a snapshot is being written, no further request is read: a client
/// that never reads fills its transmit buffer, its requests wait in its
/// receive buffer, its window closes, and the idle timeout closes it.
/// Until it reads it costs the poll steps nothing but a look at its queues:
/// the view is described only for a client with room for its next record
/// or a request to read.
///
/// Its sockets and scratch buffers need at least
/// [`MAX_STATUS_REQUEST`]` + 2` = 66 bytes for input (a request and its
/// `\r\n`: each receive buffer and the input scratch) and 1,024 bytes for
/// output (the longest record: each transmit buffer and the output
/// scratch), its [`input_window`](Service::input_window) and
/// [`output_window`](Service::output_window); smaller ones make
/// [`Server::new`] fail with [`Error::BufferTooSmall`](crate::Error::BufferTooSmall).
///
/// The [`View`] the snapshots are written from is part of the [`Status`]
/// value: [`View::SIZE`] bytes for `R` rows. On a 32-bit board (IPv4 only,
/// as the boards build it) a `Server<Status<14>>` is 2,184 bytes, 1,760
/// of them its `View<14>`, besides its [`SlotStorage`](crate::SlotStorage)
/// entries; `core::mem::size_of` gives the figure for another target.
///
/// # Security
///
/// The snapshot shows the peers' addresses and ports, so the status
/// service answers only peers on the interface's own subnets unless its
/// [`Config::peers`](crate::Config::peers) says otherwise (see
/// [`Peers`]): a peer across a router is refused with a reset. Leave the
/// status server out where even the local network must not see them.
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
        MAX_STATUS_REQUEST + 2
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
                    match write_next(&self.view, &mut snapshot, output) {
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
                None if rest.len() > MAX_STATUS_REQUEST + 1 => {
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
                _ if line.len() > MAX_STATUS_REQUEST => {
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
/// [`Services`](crate::Services): each poll step walks `services`, then the status server;
/// when a status client is owed a snapshot, it then describes every socket
/// into the status service's [`View`] and walks the status server once
/// more to write it. A [`Status`] polled without `Watched` answers nothing.
pub struct Watched<'a, P, const R: usize> {
    /// The services watched.
    pub services: P,
    /// The status server.
    pub status: Server<'a, Status<R>>,
}

impl<'a, P: Steps<'a>, const R: usize> Watched<'a, P, R> {
    /// Watch `services` with `status`.
    pub fn new(services: P, status: Server<'a, Status<R>>) -> Self {
        Watched { services, status }
    }
}

impl<'a, P: Steps<'a>, const R: usize> Steps<'a> for Watched<'a, P, R> {
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
        self.status.service_mut().start_clock(now);
        let next = self.services.walk(now, sockets);
        let mut own = Steps::walk(&mut self.status, now, sockets);
        if self.status.service().declined() {
            // Describe the services watched, then the status server itself,
            // into the status service's view.
            let services = &self.services;
            self.status.report_into(now, sockets, |status| {
                let view = status.describe();
                view.clear(now);
                services.report(now, sockets, view);
                view
            });
            own = Steps::walk(&mut self.status, now, sockets);
        }
        self.status.service_mut().settle();
        earliest(next, own)
    }

    fn next_walk(&self) -> Option<Instant> {
        earliest(self.services.next_walk(), self.status.next_walk())
    }

    fn report<const V: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<V>) {
        self.services.report(now, sockets, view);
        self.status.report(now, sockets, view);
    }

    fn stop(&mut self, sockets: &mut SocketSet<'a>) {
        self.services.stop(sockets);
        self.status.stop(sockets);
    }

    fn stopped(&self) -> bool {
        self.services.stopped() && self.status.stopped()
    }
}
