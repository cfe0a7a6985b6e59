//! What the loop serves: the service of `--service`, watched by the status
//! server unless `--status-port off`.

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::time::Instant;

use multiserve::{Services, Watched};

use super::device::Stack;

use super::pool::{AppServer, StatusServer, STATUS_ROWS};

/// Either way one type, so the loop is built once. There is one value for
/// the program's life, so the size of the smaller variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Served<'a> {
    Watched(Watched<'a, AppServer<'a>, STATUS_ROWS>),
    Alone(AppServer<'a>),
}

impl<'a> Served<'a> {
    pub fn new(app: AppServer<'a>, status: Option<StatusServer<'a>>) -> Served<'a> {
        match status {
            Some(status) => Served::Watched(Watched::new(app, status)),
            None => Served::Alone(app),
        }
    }

    /// The server of `--service`.
    pub fn app(&self) -> &AppServer<'a> {
        match self {
            Served::Watched(w) => &w.services,
            Served::Alone(app) => app,
        }
    }

    /// The status server, if there is one.
    pub fn status(&self) -> Option<&StatusServer<'a>> {
        match self {
            Served::Watched(w) => Some(&w.status),
            Served::Alone(_) => None,
        }
    }
}

/// `$body` with `$s` bound to whichever is served.
macro_rules! either {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Served::Watched($s) => $body,
            Served::Alone($s) => $body,
        }
    };
}

/// The poll step of whichever is served: [`Services`] over it.
impl<'a> Served<'a> {
    pub fn poll(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut Stack,
        sockets: &mut SocketSet<'a>,
    ) {
        either!(self, s => s.poll(now, iface, device, sockets))
    }

    pub fn poll_at(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'a>,
    ) -> Option<Instant> {
        either!(self, s => s.poll_at(now, iface, sockets))
    }

    pub fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        either!(self, s => Services::shutdown(s, sockets))
    }

    pub fn is_shut_down(&self) -> bool {
        either!(self, s => Services::is_shut_down(s))
    }
}
