//! Any [embassy-net-driver](https://docs.rs/embassy-net-driver) [`Driver`]
//! as a smoltcp [`Device`], so a [`Server`](crate::Server) runs on the
//! network drivers written for embassy-net (feature `embassy-net-driver`).

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use embassy_net_driver::{Checksum, Driver, LinkState};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

/// An embassy-net-driver [`Driver`] as a smoltcp [`Device`]; see the
/// docs below.
///
/// A [`Driver`] differs from a [`Device`] in one way: each of its calls
/// takes a [`Context`], whose waker the driver wakes when what it could not
/// give now (a received frame, room to transmit, a link change) becomes
/// ready. [`DriverDevice`] keeps one [`Waker`] and hands it to every driver
/// call, so it can stand in wherever smoltcp wants a [`Device`]. Everything
/// else passes through unchanged: frames are not copied, the link is not
/// looked at on the way (a driver whose link is down does with frames what
/// it does, usually drop them), and [`DeviceCapabilities`] come from the
/// driver's [`Capabilities`](embassy_net_driver::Capabilities) (MTU, burst
/// size, checksum offload).
///
/// # Two ways to run the loop
///
/// **Without an executor** (a driver that needs no task of its own, e.g. a
/// DMA driver whose rings are served by the interrupt): keep the waker
/// [`DriverDevice::new`] starts with, [`Waker::noop`]. Nothing is woken,
/// so the loop sleeps until the server's deadline or the NIC's interrupt,
/// whichever comes first, as with any [`Device`]:
///
/// ```
/// use embassy_net_driver::Driver;
/// use multiserve::{DriverDevice, Server, Service};
/// use smoltcp::iface::{Interface, SocketSet};
/// use smoltcp::time::{Duration, Instant};
///
/// fn run<'a, D: Driver, S: Service>(
///     device: &mut DriverDevice<D>,
///     server: &mut Server<'a, S>,
///     iface: &mut Interface,
///     sockets: &mut SocketSet<'a>,
///     now: impl Fn() -> Instant,
///     // e.g. `wfi` until the deadline (`None`: none) or an interrupt.
///     mut sleep: impl FnMut(Option<Duration>),
/// ) {
///     loop {
///         let now = now();
///         server.poll(now, iface, device, sockets);
///         let delay = server.poll_delay(now, iface, sockets);
///         if server.is_shut_down() {
///             return;
///         }
///         // A full transmit queue frees up with an interrupt, not a time.
///         sleep(if device.tx_exhausted() { None } else { delay });
///     }
/// }
/// ```
///
/// **Inside an async task** (a driver with a runner task, such as a
/// channel-based Wi-Fi or SPI Ethernet driver, needs an executor): give the
/// adapter the task's own waker before each poll, then wait for the
/// server's deadline or for the driver to wake the task, whichever comes
/// first. [`woken`] is the second half of that wait:
///
/// ```
/// use core::future::poll_fn;
/// use core::task::Poll;
/// use embassy_net_driver::Driver;
/// use multiserve::{DriverDevice, Server, Service};
/// use smoltcp::iface::{Interface, SocketSet};
/// use smoltcp::time::{Duration, Instant};
///
/// async fn run<'a, D: Driver, S: Service>(
///     device: &mut DriverDevice<D>,
///     server: &mut Server<'a, S>,
///     iface: &mut Interface,
///     sockets: &mut SocketSet<'a>,
///     now: impl Fn() -> Instant,
///     // With embassy: `select(Timer::after(d), multiserve::woken())`
///     // for `Some(d)`, `woken()` alone for `None`.
///     mut sleep: impl AsyncFnMut(Option<Duration>),
/// ) {
///     loop {
///         // Whatever the driver cannot give now, it wakes this task for.
///         poll_fn(|cx| {
///             device.set_waker(cx.waker());
///             Poll::Ready(())
///         })
///         .await;
///         let now = now();
///         server.poll(now, iface, device, sockets);
///         let delay = server.poll_delay(now, iface, sockets);
///         if server.is_shut_down() {
///             return;
///         }
///         sleep(if device.tx_exhausted() { None } else { delay }).await;
///     }
/// }
/// ```
///
/// A wake that comes between the poll and the wait is not lost: the
/// executor polls the task again at once, which ends the wait.
///
/// # Link state
///
/// [`DriverDevice::link_state`] asks the driver (and registers the waker
/// for its next change). The adapter itself keeps sending and receiving
/// while the link is down: TCP connections survive a short loss of the link
/// by retransmitting once it is back. What addressing does on a link change
/// is the caller's to decide, e.g. with `Addressing` (feature
/// `dhcpv4`), which is told the link state on each poll.
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-net-driver")))]
pub struct DriverDevice<D> {
    driver: D,
    waker: Waker,
}

impl<D: Driver> DriverDevice<D> {
    /// Wrap `driver`, with [`Waker::noop`] as the waker until
    /// [`DriverDevice::set_waker`] gives another.
    pub fn new(driver: D) -> Self {
        DriverDevice {
            driver,
            waker: Waker::noop().clone(),
        }
    }

    /// The waker handed to the driver from now on: the driver wakes it when
    /// a frame arrives, transmit room frees up or the link changes, after a
    /// call that found none. Cheap when it is the same waker as before.
    pub fn set_waker(&mut self, waker: &Waker) {
        self.waker.clone_from(waker);
    }

    /// The waker handed to the driver.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// The driver's link state; the driver wakes the waker when it changes.
    pub fn link_state(&mut self) -> LinkState {
        self.driver
            .link_state(&mut Context::from_waker(&self.waker))
    }

    /// Whether the driver reports its link up.
    pub fn is_link_up(&mut self) -> bool {
        self.link_state() == LinkState::Up
    }

    /// The driver's hardware address for the smoltcp interface, or `None`
    /// if the driver's medium is not Ethernet (the only one this crate's
    /// smoltcp is built for).
    pub fn hardware_address(&self) -> Option<HardwareAddress> {
        match self.driver.hardware_address() {
            embassy_net_driver::HardwareAddress::Ethernet(mac) => {
                Some(HardwareAddress::Ethernet(EthernetAddress(mac)))
            }
            _ => None,
        }
    }

    /// Whether the driver's transmit queue is full now. The driver is
    /// asked (a transmit token taken and dropped unused sends nothing), so
    /// the answer is never left over from an earlier poll step; when the
    /// queue is full, the driver wakes the waker once room frees up, and
    /// until then a poll delay of zero (data waiting to be sent) is better
    /// slept through.
    pub fn tx_exhausted(&mut self) -> bool {
        let mut cx = Context::from_waker(&self.waker);
        self.driver.transmit(&mut cx).is_none()
    }

    /// The driver.
    pub fn get_ref(&self) -> &D {
        &self.driver
    }

    /// The driver.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The driver back.
    pub fn into_inner(self) -> D {
        self.driver
    }
}

impl<D: Driver> Device for DriverDevice<D> {
    type RxToken<'a>
        = RxToken<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut cx = Context::from_waker(&self.waker);
        self.driver
            .receive(&mut cx)
            .map(|(rx, tx)| (RxToken(rx), TxToken(tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        let mut cx = Context::from_waker(&self.waker);
        self.driver.transmit(&mut cx).map(TxToken)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let caps = self.driver.capabilities();
        let mut out = DeviceCapabilities::default();
        out.medium = Medium::Ethernet;
        out.max_transmission_unit = caps.max_transmission_unit;
        out.max_burst_size = caps.max_burst_size;
        out.checksum.ipv4 = checksum(caps.checksum.ipv4);
        out.checksum.udp = checksum(caps.checksum.udp);
        out.checksum.tcp = checksum(caps.checksum.tcp);
        #[cfg(feature = "ipv4")]
        {
            out.checksum.icmpv4 = checksum(caps.checksum.icmpv4);
        }
        #[cfg(feature = "ipv6")]
        {
            out.checksum.icmpv6 = checksum(caps.checksum.icmpv6);
        }
        out
    }
}

fn checksum(c: Checksum) -> phy::Checksum {
    match c {
        Checksum::Both => phy::Checksum::Both,
        Checksum::Tx => phy::Checksum::Tx,
        Checksum::Rx => phy::Checksum::Rx,
        Checksum::None => phy::Checksum::None,
    }
}

/// A driver's receive token as smoltcp's.
#[doc(hidden)]
pub struct RxToken<T>(T);

impl<T: embassy_net_driver::RxToken> phy::RxToken for RxToken<T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        self.0.consume(|frame| f(frame))
    }
}

/// A driver's transmit token as smoltcp's.
#[doc(hidden)]
pub struct TxToken<T>(T);

impl<T: embassy_net_driver::TxToken> phy::TxToken for TxToken<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.consume(len, f)
    }
}

/// A future that is pending once and ready when polled again: it ends when
/// the task is next woken, by the driver or by anything else. It wakes
/// nothing itself. See [`DriverDevice`] for its use.
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-net-driver")))]
pub fn woken() -> Woken {
    Woken { polled: false }
}

/// The future of [`woken`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-net-driver")))]
pub struct Woken {
    polled: bool,
}

impl Future for Woken {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            Poll::Ready(())
        } else {
            self.polled = true;
            Poll::Pending
        }
    }
}
