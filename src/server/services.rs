//! Several services on one loop: the [`Services`] trait.

use smoltcp::iface::{Interface, PollIngressSingleResult, PollResult, SocketSet};
use smoltcp::phy::{Device, RxToken as _};
use smoltcp::time::{Duration, Instant};

use super::earliest;
use super::ingress::{self, OneFrame};
use super::report::View;

/// What a service does with a SYN looked at before the stack (part of the
/// sealed steps: not nameable outside the crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Syn {
    /// Not a port of these services.
    NotOurs,
    /// Hand it to the stack: a socket listens for it (or, on purpose, none
    /// does and the stack refuses it).
    Pass,
    /// Drop it: no socket can be had now; the client sends it again.
    Drop,
}

/// One or more servers served by one poll step; see the
/// docs below. Implemented by [`Server`](crate::Server),
/// [`Watched`](crate::Watched), tuples of them and `&mut` of one; sealed.
///
/// The methods are those of smoltcp's `Interface`: [`poll`](Self::poll)
/// is the whole loop body, [`poll_at`](Self::poll_at) and
/// [`poll_delay`](Self::poll_delay) say when it is next needed.
///
/// The lecture's `select()` watches any number of listening sockets. Here
/// each listening port is a [`Server`](crate::Server): its own port,
/// [`Service`](crate::Service), capacity, spare sockets and pool. All of
/// them add their sockets to one [`SocketSet`], and one call of
/// [`Services::poll`] serves every one of them:
///
/// ```text
///   (reverse, echo).poll(now, iface, device, sockets)
///     every frame → the stack (a SYN for a port with no listening socket
///                   first gets one of that port's sockets taken back)
///     then each server walks its own pool, in order; then send
///   (reverse, echo).poll_delay(now, iface, sockets): how long to sleep
/// ```
///
/// Admission is per port: each server counts its own clients against its
/// own capacity and takes sockets back only from its own pool, so a flood
/// on one port never costs another port a place or a socket.
///
/// A tuple of servers is itself [`Services`] (up to four, nested tuples for
/// more), as is `&mut` of one and [`Watched`](crate::Watched), so the
/// types are all known at compile time: no `dyn`, no heap. The trait is
/// sealed: its steps are the server's own.
pub trait Services<'a>: sealed::Steps<'a> {
    /// One turn of the loop: receive each frame (looking at it first while
    /// some server has no listening socket), walk every socket of every
    /// server once, send what was written.
    fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'a>,
    ) {
        // Every segment sent in this step carries `now` as its timestamp.
        crate::connection::set_clock(now);
        // Ingress, then the walk, then egress: answers leave with the ACK
        // of their request, and a handshake dropped during ingress never
        // sends its SYN-ACK.
        iface.poll_maintenance(now);
        // smoltcp gives a SYN to the first socket in the set listening on
        // its port, so each service watches that one between frames (one
        // socket state read per frame), and its walk passes every other
        // listening socket by. While some service has none, look at
        // each frame before the stack does: a SYN for that service's port
        // first gets a socket taken back to listen for it, if one can be.
        let mut look_first = self.prepare(sockets);
        loop {
            if look_first {
                let capabilities = device.capabilities();
                let Some((rx, tx)) = device.receive(now) else {
                    break;
                };
                let meta = rx.meta();
                rx.consume(|frame| {
                    if let Some(port) = ingress::syn_port(frame, iface, &capabilities) {
                        if self.syn(port, now, sockets) == Syn::Drop {
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
            look_first = self.frame_done(now, iface, sockets);
        }
        self.walk(now, sockets);
        while !matches!(iface.poll_egress(now, device, sockets), PollResult::None) {}
    }

    /// When [`poll`](Self::poll) is next needed (`None`: when the device
    /// has a frame), as smoltcp's [`Interface::poll_at`], taking the
    /// servers' own timers into account. A time not after `now` means at
    /// once.
    fn poll_at(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'a>,
    ) -> Option<Instant> {
        earliest(iface.poll_at(now, sockets), self.next_walk())
    }

    /// How long the caller may sleep before [`poll`](Self::poll) is next
    /// needed (`None`: until the device has a frame), as smoltcp's
    /// [`Interface::poll_delay`].
    fn poll_delay(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'a>,
    ) -> Option<Duration> {
        self.poll_at(now, iface, sockets)
            .map(|at| if at > now { at - now } else { Duration::ZERO })
    }

    /// Stop accepting clients everywhere; see
    /// [`Server::shutdown`](crate::Server::shutdown).
    fn shutdown(&mut self, sockets: &mut SocketSet<'a>) {
        self.stop(sockets);
    }

    /// Whether every server has shut down.
    fn is_shut_down(&self) -> bool {
        self.stopped()
    }
}

impl<'a, T: sealed::Steps<'a> + ?Sized> Services<'a> for T {}

pub(crate) mod sealed {
    use super::*;

    /// The steps of a poll, in the order [`Services::poll`] calls them:
    /// [`prepare`](Steps::prepare), then for each frame
    /// [`syn`](Steps::syn) (only while some server wants to look at frames
    /// first) and [`frame_done`](Steps::frame_done), then
    /// [`walk`](Steps::walk).
    pub trait Steps<'a> {
        /// Make the free sockets of every server listen. Returns whether
        /// some server has no listening socket and wants to see each frame
        /// before the stack does (to take a socket back for a SYN).
        fn prepare(&mut self, sockets: &mut SocketSet<'a>) -> bool;

        /// A SYN for `port` is about to reach the stack.
        fn syn(&mut self, port: u16, now: Instant, sockets: &mut SocketSet<'a>) -> Syn;

        /// A frame went through the stack: note a SYN taken by a listening
        /// socket (refused if its peer is not one the service answers,
        /// judged by the addresses of `iface`). Returns what
        /// [`prepare`](Steps::prepare) returns.
        fn frame_done(
            &mut self,
            now: Instant,
            iface: &Interface,
            sockets: &mut SocketSet<'a>,
        ) -> bool;

        /// Walk every socket of every server once. Returns when the
        /// servers' own timers next need a walk.
        fn walk(&mut self, now: Instant, sockets: &mut SocketSet<'a>) -> Option<Instant>;

        /// What the last [`walk`](Steps::walk) returned.
        fn next_walk(&self) -> Option<Instant>;

        /// Describe every server and every socket in use into `view`, in
        /// order (what the status service lists).
        fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>);

        /// Stop accepting clients everywhere.
        fn stop(&mut self, sockets: &mut SocketSet<'a>);

        /// Whether every server has shut down.
        fn stopped(&self) -> bool;
    }
}

use sealed::Steps;

impl<'a, T: Steps<'a> + ?Sized> Steps<'a> for &mut T {
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
    fn next_walk(&self) -> Option<Instant> {
        (**self).next_walk()
    }
    fn report<const R: usize>(&self, now: Instant, sockets: &SocketSet<'a>, view: &mut View<R>) {
        (**self).report(now, sockets, view)
    }
    fn stop(&mut self, sockets: &mut SocketSet<'a>) {
        (**self).stop(sockets)
    }
    fn stopped(&self) -> bool {
        (**self).stopped()
    }
}

/// Tuples of services: every member in order. Each member's step runs
/// whatever the others returned (`|`, not `||`).
macro_rules! tuple_services {
    ($($name:ident),+) => {
        impl<'a, $($name: Steps<'a>),+> Steps<'a> for ($($name,)+) {
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
                $(let next = earliest(next, $name.walk(now, sockets));)+
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
            fn next_walk(&self) -> Option<Instant> {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                let next = None;
                $(let next = earliest(next, $name.next_walk());)+
                next
            }
            fn stop(&mut self, sockets: &mut SocketSet<'a>) {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                $($name.stop(sockets);)+
            }
            fn stopped(&self) -> bool {
                #[allow(non_snake_case)]
                let ($($name,)+) = self;
                true $(&& $name.stopped())+
            }
        }
    };
}

tuple_services!(A);
tuple_services!(A, B);
tuple_services!(A, B, C);
tuple_services!(A, B, C, D);
