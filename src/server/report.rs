//! What a server reports of itself: its services, counters and sockets,
//! as the status service lists them.

use smoltcp::socket::tcp::State;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::connection::Role;
use crate::stats::Stats;

/// The most services a [`View`] lists; more are left out.
pub const MAX_SERVICES: usize = 6;

/// One service as a snapshot lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceView {
    /// Its port.
    pub port: u16,
    /// [`Service::name`](crate::Service::name).
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
/// as each server describes itself.
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
    /// Sockets described, listed or not.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
}
