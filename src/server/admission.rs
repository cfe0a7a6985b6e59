//! Admission: who holds a client place, who waits for one, which socket
//! listens, and what is taken back for a SYN when none does.
//!
//! Written once over the slots as [`Slots`], whatever the service and
//! pool size; [`Server`](crate::Server) owns one [`Admission`] and calls it
//! around each walk.

/// The longest busy line: `busy: all ` + 20 digits + ` slots are in use, try again later\n`.
use core::cmp::Reverse;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

use super::error::{check, Buffer, Error};
use super::report::{ServiceView, SocketView, View};
use super::storage::Slots;
use super::{earliest, Syn};
use crate::config::{Config, FullPolicy, Peers};
use crate::connection::{configure, holds_place, CloseReason, Cx, Phase, Reclaim, Slot};
use crate::stats::Stats;

const BUSY_LINE_CAPACITY: usize = 80;

/// A server's state besides its service, sessions, slots and scratch
/// buffers. What the server does without its service (admission,
/// listening, reclaiming, SYNs, the queue, counting, describing) is
/// written once, here, over the slots as [`Slots`]: the same code for
/// every service and pool size.
pub(super) struct Admission {
    pub(super) config: Config,
    /// The peers answered: [`Config::peers`], or the service's choice.
    pub(super) peers: Peers,
    /// The capacity: connections served at once.
    pub(super) clients: usize,
    /// Sockets used: the capacity plus the spare sockets.
    pub(super) in_use: usize,
    pub(super) busy_line: heapless::String<BUSY_LINE_CAPACITY>,
    pub(super) stats: Stats,
    pub(super) shutting_down: bool,
    /// The listening socket that takes the next SYN (the first in handle
    /// order, as smoltcp looks for one), watched between frames.
    pub(super) watch: Option<usize>,
    /// Whether sockets may listen now (see `may_listen`).
    pub(super) may_listen: bool,
    /// The receive buffer each socket in use needs, in bytes.
    receive_needed: usize,
    /// The transmit buffer each socket in use needs, in bytes: an answer,
    /// or the busy line.
    transmit_needed: usize,
}

impl Admission {
    /// Check the configuration for a pool of `pool` sockets, and the
    /// scratch buffers (`input`, `output` bytes) for a service with these
    /// windows; each socket's buffers are checked as it is added
    /// ([`Admission::check_socket`]).
    pub(super) fn new(
        config: Config,
        input_window: usize,
        output_window: usize,
        peers: Peers,
        pool: usize,
        input: usize,
        output: usize,
    ) -> Result<Admission, Error> {
        if config.port == 0 {
            return Err(Error::PortZero);
        }
        let (clients, spare) = config.split(pool).ok_or(Error::PoolTooSmall {
            clients: config.clients,
            spare: config.spare,
            pool,
        })?;
        let in_use = clients + spare;
        let mut busy_line = heapless::String::new();
        // Cannot fail: the capacity holds the longest number.
        let _ = core::fmt::Write::write_fmt(
            &mut busy_line,
            format_args!("busy: all {clients} slots are in use, try again later\n"),
        );
        let need_out = output_window.max(busy_line.len());
        check(Buffer::Input, input_window, input)?;
        check(Buffer::Output, output_window, output)?;
        Ok(Admission {
            config,
            peers: config.peers.unwrap_or(peers),
            clients,
            in_use,
            busy_line,
            stats: Stats::default(),
            shutting_down: false,
            watch: None,
            may_listen: true,
            receive_needed: input_window,
            transmit_needed: need_out,
        })
    }

    /// Add the sockets of `pool` to `sockets`, one for each entry of
    /// `slots` (the pool must fill them exactly), and make the sockets in
    /// use listen.
    pub(super) fn add_pool<'a>(
        &self,
        pool: &mut dyn Iterator<Item = tcp::Socket<'a>>,
        slots: &mut dyn Slots,
        sockets: &mut SocketSet<'a>,
        slot_size: usize,
    ) -> Result<(), Error> {
        let entries = slots.count();
        let mismatch = |sockets| Error::PoolMismatch {
            sockets,
            storage: entries,
        };
        let mut previous = None;
        for index in 0..entries {
            let socket = pool.next().ok_or(mismatch(index))?;
            let slot = self.add(index, socket, previous, sockets)?;
            previous = Some(slot.handle);
            slots.fill(index, slot);
        }
        if pool.next().is_some() {
            return Err(mismatch(entries.saturating_add(1)));
        }
        self.arm_pool(slots, sockets, slot_size);
        Ok(())
    }

    /// Check pool socket `index` (a socket in use needs a client's
    /// buffers), configure it and add it to `sockets`, where it must come
    /// after the pool's socket before it, `previous`.
    fn add<'a>(
        &self,
        index: usize,
        mut socket: tcp::Socket<'a>,
        previous: Option<SocketHandle>,
        sockets: &mut SocketSet<'a>,
    ) -> Result<Slot, Error> {
        if index < self.in_use {
            check(
                Buffer::Receive(index),
                self.receive_needed,
                socket.recv_capacity(),
            )?;
            check(
                Buffer::Transmit(index),
                self.transmit_needed,
                socket.send_capacity(),
            )?;
        }
        configure(&mut socket, &self.config);
        let handle = sockets.add(socket);
        if previous.is_some_and(|before| before >= handle) {
            return Err(Error::SocketOrder);
        }
        Ok(Slot::new(index, handle))
    }

    /// The pool was added: make the sockets in use listen.
    fn arm_pool(&self, slots: &mut dyn Slots, sockets: &mut SocketSet<'_>, slot_size: usize) {
        for i in 0..self.in_use {
            if let Some(slot) = slots.at_mut(i) {
                slot.arm(sockets.get_mut::<tcp::Socket>(slot.handle), &self.config);
            }
        }
        debug!(
            "pool of {} sockets: {} clients, {} spare, listening on port {}, {} bytes per slot",
            slots.count(),
            self.clients,
            self.spare(),
            self.config.port,
            slot_size
        );
    }

    /// The spare sockets: those in use beyond the capacity.
    pub(super) fn spare(&self) -> usize {
        self.in_use - self.clients
    }

    /// What a slot's step borrows.
    pub(super) fn cx(&mut self, now: Instant) -> Cx<'_> {
        Cx {
            stats: &mut self.stats,
            config: &self.config,
            now,
            shutting_down: self.shutting_down,
        }
    }

    /// Note every SYN a listening socket took since the last look.
    pub(super) fn syns_taken(
        &mut self,
        slots: &mut dyn Slots,
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) {
        for i in 0..self.in_use {
            if phase(slots, i) == Some(Phase::Listening)
                && socket_state(slots, i, sockets) != Some(State::Listen)
            {
                self.syn_arrived(slots, i, now, local, sockets);
            }
        }
    }

    /// The queued connection to give a place to next, if a place is free
    /// (`serving` are taken): the one that has waited longest.
    pub(super) fn next_admitted(&self, slots: &dyn Slots, serving: usize) -> Option<usize> {
        if serving < self.clients && !self.shutting_down {
            oldest_queued(slots, self.in_use)
        } else {
            None
        }
    }

    /// Answer the queued connections that waited too long (or all of them,
    /// when shutting down). Returns when the next wait is over.
    pub(super) fn refuse_waiting(
        &mut self,
        slots: &mut dyn Slots,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<Instant> {
        let mut next = None;
        for i in 0..self.in_use {
            let Some(Phase::Queued { since }) = phase(slots, i) else {
                continue;
            };
            let until = since + self.config.queue_wait;
            if now >= until || self.shutting_down {
                next = earliest(next, self.refuse(slots, i, now, sockets));
            } else {
                next = earliest(next, Some(until));
            }
        }
        next
    }

    /// Give queued connection `i` the full-server answer (see
    /// [`Slot::refuse`]).
    pub(super) fn refuse(
        &mut self,
        slots: &mut dyn Slots,
        i: usize,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<Instant> {
        let busy_line = match self.config.when_full {
            FullPolicy::Busy => Some(self.busy_line.as_bytes()),
            FullPolicy::Reset => None,
        };
        match slots.at_mut(i) {
            Some(slot) => {
                let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
                slot.refuse(socket, busy_line, now, &self.config, &mut self.stats)
            }
            None => None,
        }
    }

    /// The walk is over: keep sockets listening, note every role, and
    /// count the lingering and queued sockets, in one pass over the pool.
    pub(super) fn end_walk(
        &mut self,
        slots: &mut dyn Slots,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) {
        let (mut lingering, mut queued) = (0u32, 0u32);
        self.listen_pass(slots, sockets, &mut |slot| {
            slot.note_role(now);
            match slot.phase {
                Phase::Busy { .. } | Phase::Lingering { .. } => lingering += 1,
                Phase::Queued { .. } => queued += 1,
                _ => {}
            }
        });
        self.stats.lingering = lingering;
        self.stats.queued = queued;
    }

    /// Make every free socket listen (or none, when no socket may listen
    /// now), and watch the listening socket that takes the next SYN: the
    /// one first in the socket set (smoltcp gives a SYN to the first
    /// listening socket it finds there, in handle order). Returns whether
    /// a frame must be looked at before the stack: no socket listens, and
    /// one may.
    ///
    /// Watching that one socket is what lets a walk pass every other
    /// listening socket by ([`Slot::at_rest`]): after each frame, only the
    /// watched socket can have left LISTEN.
    pub(super) fn listener(&mut self, slots: &mut dyn Slots, sockets: &mut SocketSet<'_>) -> bool {
        self.listen_pass(slots, sockets, &mut |_| {})
    }

    /// Before a poll step's frames: [`listener`](Self::listener), unless
    /// the last pass (at the end of the last walk, or after the last SYN)
    /// left a socket listening and watched, which nothing between two
    /// steps changes ([`shutdown`](Self::shutdown) forgets it).
    pub(super) fn prepare(&mut self, slots: &mut dyn Slots, sockets: &mut SocketSet<'_>) -> bool {
        if self.watch.is_some() {
            return false;
        }
        self.listener(slots, sockets)
    }

    /// [`listener`](Self::listener)'s pass over the pool, calling `also`
    /// with each slot once it is settled.
    fn listen_pass(
        &mut self,
        slots: &mut dyn Slots,
        sockets: &mut SocketSet<'_>,
        also: &mut dyn FnMut(&mut Slot),
    ) -> bool {
        let may_listen = self.may_listen(slots, sockets);
        let mut first: Option<(SocketHandle, usize)> = None;
        let config = &self.config;
        slots.for_each_mut(self.in_use, &mut |i, slot| {
            match slot.phase {
                Phase::Off if may_listen => {
                    slot.arm(sockets.get_mut::<tcp::Socket>(slot.handle), config)
                }
                Phase::Listening if !may_listen => {
                    slot.disarm(sockets.get_mut::<tcp::Socket>(slot.handle))
                }
                _ => {}
            }
            if matches!(slot.phase, Phase::Listening) && first.is_none_or(|(h, _)| slot.handle < h)
            {
                first = Some((slot.handle, i));
            }
            also(slot);
        });
        self.watch = first.map(|(_, i)| i);
        self.may_listen = may_listen;
        first.is_none() && may_listen
    }

    /// A SYN for `port` is about to reach the stack (see [`Services::syn`]).
    pub(super) fn syn(
        &mut self,
        slots: &mut dyn Slots,
        port: u16,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Syn {
        if port != self.config.port {
            return Syn::NotOurs;
        }
        if self.watch.is_some() || !self.may_listen {
            return Syn::Pass;
        }
        self.watch = self.reclaim_listener(slots, now, sockets);
        if self.watch.is_some() {
            Syn::Pass
        } else {
            // No socket can be had now: drop the SYN, as a full SYN queue
            // does; the client sends it again (after 1 s, then 2 s, ...)
            // and finds one then.
            self.stats.syn_dropped = self.stats.syn_dropped.saturating_add(1);
            Syn::Drop
        }
    }

    /// A frame went through the stack (see [`Services::frame_done`]).
    pub(super) fn frame_done(
        &mut self,
        slots: &mut dyn Slots,
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        if let Some(i) = self.watch {
            if socket_state(slots, i, sockets) == Some(State::Listen) {
                return false;
            }
            self.syn_arrived(slots, i, now, local, sockets);
        }
        self.listener(slots, sockets)
    }

    /// A SYN arrived and no socket listens: take one back for it, in this
    /// order (lwIP's, in `tcp_alloc`): a socket closed since the last walk,
    /// a closing socket with nothing unacknowledged left, a closing socket
    /// with only our FIN unacknowledged, a served connection that is done
    /// but not yet closed, and last a half-open handshake (from the address
    /// with the most of them, the oldest first). Never a connection being served or
    /// waiting for a place, never one with answer bytes the peer has not
    /// acknowledged. Returns the socket that listens, if one could be had.
    pub(super) fn reclaim_listener(
        &mut self,
        slots: &mut dyn Slots,
        now: Instant,
        sockets: &mut SocketSet<'_>,
    ) -> Option<usize> {
        let in_use = || slots.iter().take(self.in_use);
        // Half-open handshakes from `addr`: of those, the address holding
        // the most gives one up first, so a flood from one address never
        // costs another client its handshake.
        let half_open_from = |addr: IpAddress| {
            in_use()
                .filter(|other| {
                    let theirs = sockets.get::<tcp::Socket>(other.handle);
                    matches!(
                        other.reclaim_rank(theirs, now),
                        Some((Reclaim::HalfOpen, _))
                    ) && theirs.remote_endpoint().map(|e| e.addr) == Some(addr)
                })
                .count()
        };
        // The last address counted: a flood's handshakes come from few
        // addresses, so each is counted once, not once per handshake.
        let mut counted: Option<(IpAddress, usize)> = None;
        let mut best: Option<(ReclaimKey, usize)> = None;
        for (i, slot) in in_use().enumerate() {
            let socket = sockets.get::<tcp::Socket>(slot.handle);
            let Some((rank, at)) = slot.reclaim_rank(socket, now) else {
                continue;
            };
            let crowd = match (rank, socket.remote_endpoint()) {
                (Reclaim::HalfOpen, Some(remote)) => match counted {
                    Some((addr, n)) if addr == remote.addr => n,
                    _ => {
                        let n = half_open_from(remote.addr);
                        counted = Some((remote.addr, n));
                        n
                    }
                },
                _ => 0,
            };
            let key = (rank, Reverse(crowd), at);
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, i));
            }
        }
        let ((rank, _, _), i) = best?;
        let slot = slots.at_mut(i)?;
        if let Phase::Serving { .. } = slot.phase {
            slot.end_served(CloseReason::PeerClosed, now, &self.config, &mut self.stats);
        }
        let counter = match rank {
            Reclaim::Free => None,
            Reclaim::HalfOpen => Some(&mut self.stats.reclaimed_half_open),
            Reclaim::Finished | Reclaim::FinOnly | Reclaim::Unclosed => {
                Some(&mut self.stats.reclaimed_lingering)
            }
        };
        if let Some(counter) = counter {
            *counter = counter.saturating_add(1);
        }
        debug!("slot {}: reclaimed ({:?}) to listen", i, rank);
        slot.recycle(sockets, &self.config);
        (slot.phase == Phase::Listening).then_some(i)
    }

    /// Whether sockets should listen now: not while shutting down, and
    /// with the reset policy and no queue wait, not while every place is
    /// taken (the SYN is then refused by the stack).
    pub(super) fn may_listen(&self, slots: &dyn Slots, sockets: &SocketSet<'_>) -> bool {
        !self.shutting_down
            && (self.config.when_full == FullPolicy::Busy
                || self.config.queue_wait > Duration::ZERO
                || serving_count(slots, sockets) < self.clients)
    }

    /// Socket `i` (watched as the first listening one) left LISTEN. If it
    /// took a SYN from a client that another socket already holds (a
    /// retransmitted SYN whose first copy was taken, or whose connection
    /// is served), the new handshake is dropped silently before it sends
    /// a SYN-ACK: the client only ever sees one server sequence number,
    /// so its ACK is never answered with a reset by the wrong socket. A
    /// SYN from a peer the server does not answer (not on the `local`
    /// subnets, see [`Config::peers`]) is refused with a reset instead of
    /// the SYN-ACK.
    pub(super) fn syn_arrived(
        &mut self,
        slots: &mut dyn Slots,
        i: usize,
        now: Instant,
        local: &[IpCidr],
        sockets: &mut SocketSet<'_>,
    ) {
        let Some(slot) = slots.at(i) else {
            return;
        };
        let socket = sockets.get::<tcp::Socket>(slot.handle);
        let (State::SynReceived, Some(remote)) = (socket.state(), socket.remote_endpoint()) else {
            // No handshake in progress: a caller's own poll went further
            // (or the handshake failed). What the socket is now decides
            // the slot's phase, by the rule of the walk.
            if let Some(slot) = slots.at_mut(i) {
                let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
                slot.await_client(socket, now, &self.config, &mut self.stats);
            }
            return;
        };
        let held = slots.iter().enumerate().any(|(j, other)| {
            j != i
                && holds_client(other.phase)
                && sockets.get::<tcp::Socket>(other.handle).remote_endpoint() == Some(remote)
        });
        let Some(slot) = slots.at_mut(i) else {
            return;
        };
        if held {
            debug!(
                "slot {}: retransmitted SYN from a client already in a slot, dropped",
                i
            );
            self.stats.half_open_dropped = self.stats.half_open_dropped.saturating_add(1);
            slot.arm(sockets.get_mut::<tcp::Socket>(slot.handle), &self.config);
        } else if !self.peers.admits(remote.addr, local) {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            slot.refuse_foreign(socket, now, &self.config, &mut self.stats);
        } else {
            slot.phase = Phase::HalfOpen { since: now };
        }
    }

    /// Stop accepting clients (see [`Server::shutdown`]).
    pub(super) fn shutdown(&mut self, slots: &mut dyn Slots, sockets: &mut SocketSet<'_>) {
        self.shutting_down = true;
        self.watch = None;
        for i in 0..slots.count() {
            let Some(slot) = slots.at_mut(i) else {
                continue;
            };
            slot.disarm(sockets.get_mut::<tcp::Socket>(slot.handle));
        }
    }

    /// Whether a shutdown has finished: every connection is closed.
    pub(super) fn is_shut_down(&self, slots: &dyn Slots) -> bool {
        self.shutting_down && slots.iter().all(|s| s.phase == Phase::Off)
    }

    /// Describe the service `name` and the sockets in use of its pool.
    pub(super) fn describe<const R: usize>(
        &self,
        name: &'static str,
        slots: &dyn Slots,
        now: Instant,
        sockets: &SocketSet<'_>,
        view: &mut View<R>,
    ) {
        let service = ServiceView {
            port: self.config.port,
            name,
            clients: self.clients,
            spare: self.spare(),
            stats: self.stats,
        };
        view.push_service(service);
        for slot in slots.iter().take(self.in_use) {
            let socket = sockets.get::<tcp::Socket>(slot.handle);
            view.push_socket(SocketView {
                index: 0,
                port: service.port,
                role: slot.phase.role(),
                state: socket.state(),
                peer: socket.remote_endpoint(),
                bytes_in: slot.bytes_in,
                bytes_out: slot.bytes_out,
                idle: slot.idle(now),
            });
        }
    }
}

/// The queued connection among the first `in_use` slots that has waited
/// longest.
fn oldest_queued(slots: &dyn Slots, in_use: usize) -> Option<usize> {
    slots
        .iter()
        .enumerate()
        .take(in_use)
        .filter_map(|(i, slot)| match slot.phase {
            Phase::Queued { since } => Some((since, i)),
            _ => None,
        })
        .min()
        .map(|(_, i)| i)
}

/// Connections holding a client place.
pub(super) fn serving_count(slots: &dyn Slots, sockets: &SocketSet<'_>) -> usize {
    slots
        .iter()
        .filter(|s| holds_place(s.phase, sockets.get::<tcp::Socket>(s.handle)))
        .count()
}

fn phase(slots: &dyn Slots, i: usize) -> Option<Phase> {
    slots.at(i).map(|s| s.phase)
}

fn socket_state(slots: &dyn Slots, i: usize, sockets: &SocketSet<'_>) -> Option<State> {
    slots
        .at(i)
        .map(|s| sockets.get::<tcp::Socket>(s.handle).state())
}

/// The order in which sockets are taken back: by rank, then (half-open
/// ones) the address with the most handshakes first, then the oldest.
type ReclaimKey = (Reclaim, Reverse<usize>, Instant);

/// Whether a socket in this phase holds a client: one whose new SYN is a
/// retransmission, not a new connection.
fn holds_client(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::HalfOpen { .. } | Phase::Queued { .. } | Phase::Serving { .. }
    )
}
