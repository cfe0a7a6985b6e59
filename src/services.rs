//! Several services on one loop: [`poll`] and the [`Services`] trait.
//!
//! The lecture's `select()` watches any number of listening sockets. Here
//! each listening port is a [`Server`](crate::Server): its own port,
//! [`Service`](crate::Service), capacity, spare sockets and pool. All of
//! them add their sockets to one [`SocketSet`], and one call of [`poll`]
//! serves every one of them and returns one delay:
//!
//! ```text
//!   poll(now, iface, device, sockets, &mut (reverse, echo))
//!     every frame → the stack (a SYN for a port with no listening socket
//!                   first gets one of that port's sockets taken back)
//!     then each server walks its own pool, in order; then send
//! ```
//!
//! Admission is per port: each server counts its own clients against its
//! own capacity and takes sockets back only from its own pool, so a flood
//! on one port never costs another port a place or a socket.
//!
//! A tuple of servers is itself [`Services`] (up to four, nested tuples for
//! more), as is `&mut` of one, so the types are all known at compile time:
//! no `dyn`, no heap. [`Server::poll`](crate::Server::poll) is `poll` over
//! one server.

use smoltcp::iface::{Interface, PollIngressSingleResult, PollResult, SocketSet};
use smoltcp::phy::{Device, RxToken as _};
use smoltcp::time::{Duration, Instant};

use crate::ingress::{self, OneFrame};
use crate::status::View;

/// What a service does with a SYN looked at before the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syn {
    /// Not a port of these services.
    NotOurs,
    /// Hand it to the stack: a socket listens for it (or, on purpose, none
    /// does and the stack refuses it).
    Pass,
    /// Drop it: no socket can be had now; the client sends it again.
    Drop,
}

/// One or more services served by one poll step; see the
/// [module docs](self).
///
/// [`poll`] calls the steps in this order: [`prepare`](Services::prepare),
/// then for each frame [`syn`](Services::syn) (only while some service
/// wants to look at frames first) and [`frame_done`](Services::frame_done),
/// then [`walk`](Services::walk). Callers that drive the interface
/// themselves can call them the same way.
pub trait Services<'a> {
    /// Make the free sockets of every service listen. Returns whether some
    /// service has no listening socket and wants to see each frame before
    /// the stack does (to take a socket back for a SYN).
    fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool;

    /// A SYN for `port` is about to reach the stack.
    fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn;

    /// A frame went through the stack: note a SYN taken by a listening
    /// socket (refused if its peer is not one the service answers, judged
    /// by the addresses of `iface`). Returns what
    /// [`prepare`](Services::prepare) returns.
    fn frame_done(&mut self, now: Instant, iface: &Interface, sockets: &mut SocketSet<'a>) -> bool;

    /// Walk every socket of every service once (see
    /// [`Server::serve`](crate::Server::serve)). Returns when the services'
    /// own timers next need a call.
    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant>;

    /// Describe every service and every socket in use into `view`, in
    /// order (what the status service lists).
    fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>);

    /// Stop accepting clients everywhere; see
    /// [`Server::shutdown`](crate::Server::shutdown).
    fn shutdown(&mut self, sockets: &mut SocketSet<'a>);

    /// Whether every service has shut down.
    fn is_shut_down(&self) -> bool;
}

/// One turn of the loop for several services: poll the interface, serve
/// every socket of every service, send what was written. Returns how long
/// the caller may sleep before the next call (`None`: until the device has
/// a frame), taking the services' own timers into account.
pub fn poll<'a, D, S>(
    now: Instant,
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'a>,
    services: &mut S,
) -> Option<Duration>
where
    D: Device + ?Sized,
    S: Services<'a> + ?Sized,
{
    // Ingress, then the walk, then egress: answers leave with the ACK of
    // their request, and a handshake dropped during ingress never sends
    // its SYN-ACK.
    iface.poll_maintenance(now);
    // smoltcp gives a SYN to the first socket listening on its port, so
    // each service watches its first listening socket between frames (one
    // socket state read per frame). While some service has none, look at
    // each frame before the stack does: a SYN for that service's port
    // first gets a socket taken back to listen for it, if one can be.
    let mut look_first = services.prepare(sockets);
    loop {
        if look_first {
            let capabilities = device.capabilities();
            let Some((rx, tx)) = device.receive(now) else {
                break;
            };
            let meta = rx.meta();
            rx.consume(|frame| {
                if let Some(port) = ingress::syn_port(frame, iface, &capabilities) {
                    if services.syn(port, now, sockets) == Syn::Drop {
                        return;
                    }
                }
                let mut one = OneFrame::new(frame, meta, tx, capabilities);
                iface.poll_ingress_single(now, &mut one, sockets);
            });
        } else if matches!(
            iface.poll_ingress_single(now, device, sockets),
            PollIngressSingleResult::None
        ) {
            break;
        }
        look_first = services.frame_done(now, iface, sockets);
    }
    let deadline = services.walk(now, sockets);
    while !matches!(iface.poll_egress(now, device, sockets), PollResult::None) {}
    let own = deadline.map(|at| if at > now { at - now } else { Duration::ZERO });
    match (iface.poll_delay(now, sockets), own) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<'a, T: Services<'a> + ?Sized> Services<'a> for &mut T {
    fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool {
        (**self).prepare(sockets)
    }
    fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn {
        (**self).syn(port, now, sockets)
    }
    fn frame_done(&mut self, now: Instant, iface: &Interface, sockets: &mut SocketSet<'a>) -> bool {
        (**self).frame_done(now, iface, sockets)
    }
    fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
        (**self).walk(now, sockets)
    }
    fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>) {
        (**self).report(now, sockets, view)
    }
    fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        (**self).shutdown(sockets)
    }
    fn is_shut_down(&self) -> bool {
        (**self).is_shut_down()
    }
}

/// Tuples of services: every member in order. Each member's step runs
/// whatever the others returned (`|`, not `||`).
macro_rules! tuple_services {
    ($($name:ident),+) => {
        impl<'a, $($name: Services<'a>),+> Services<'a> for ($($name,)+) {
            fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                false $(| $name.prepare(sockets))+
            }
            fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                $(
                    match $name.syn(port, now, sockets) {
                        Syn::NotOurs => {}
                        verdict => return verdict,
                    }
                )+
                Syn::NotOurs
            }
            fn frame_done(
                &mut self,
                now: Instant,
                iface: &Interface,
                sockets: &mut SocketSet<'a>,
            ) -> bool {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                false $(| $name.frame_done(now, iface, sockets))+
            }
            fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant> {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                let next = None;
                $(let next = crate::server::earliest(next, $name.walk(now, sockets));)+
                next
            }
            fn report<const R: usize>(
                &self,
                now: Instant,
                sockets: &SocketSet<'a>,
                view: &mut View<R>,
            ) {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                $($name.report(now, sockets, view);)+
            }
            fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                $($name.shutdown(sockets);)+
            }
            fn is_shut_down(&self) -> bool {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                true $(&& $name.is_shut_down())+
            }
        }
    };
}

tuple_services!(A);
tuple_services!(A, B);
tuple_services!(A, B, C);
tuple_services!(A, B, C, D);
