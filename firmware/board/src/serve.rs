//! The server, its address, and the main loop, the same on every board.
//!
//! [`serve`] makes the interface, asks for a DHCPv4 lease (taking the
//! board's static address after [`DHCP_TIMEOUT`]
//! without one), makes the [`Server`] in the static [`Memory`] (all of it
//! a [`Stack`]), and then loops forever:
//!
//! 1. ask the board about its link ([`Link`]; the board also services its
//!    NIC's interrupt here);
//! 2. run the server's poll step (with the feature `status`, one
//!    [`Services::poll`](multiserve::Services::poll) step over the reverse server and the status
//!    server), then the addressing step; log `serving on IP:PORT` once an
//!    address is up;
//! 3. sleep through the board's hook until the earliest deadline of the
//!    three (server, addressing, next link check), or until the NIC has
//!    work; no deadline means the NIC alone wakes it.
//!
//! The loop is [`Stack::run`]; [`Stack::run_async`] is the same loop for a
//! board whose driver runs on an executor: an `async fn` that awaits the
//! board's [`Wait::sleep`] (its timer, or the driver's wake) instead of
//! blocking. Step 2 is [`Stack::poll`].

use core::convert::Infallible;
use core::fmt;
use core::future::{poll_fn, Future};
use core::task::{Poll, Waker};

use multiserve::{AddressChange, Addressing};
use multiserve::{Config as ServerConfig, Reverse, Server};
#[cfg(feature = "status")]
use multiserve::{Services as _, Status, Watched};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use crate::memory::Memory;
use crate::{idle_timeout, CLIENTS, DHCP_TIMEOUT, FRAMING, MAX_LINE, PORT, SPARE};
#[cfg(feature = "status")]
use crate::{STATUS_CLIENTS, STATUS_PORT, STATUS_ROWS, STATUS_SPARE};

/// What a board brings to [`serve`].
pub struct Board<D> {
    /// The NIC, as a smoltcp device.
    pub device: D,
    /// The NIC's MAC address.
    pub mac: EthernetAddress,
    /// Seeds smoltcp's TCP initial sequence numbers and local ports: from a
    /// hardware random source where the board has one.
    pub random_seed: u64,
    /// The board's clock (a millisecond tick or finer).
    pub now: fn() -> Instant,
    /// The address taken when no DHCP lease comes in time.
    pub fallback: Ipv4Cidr,
    /// The default gateway that goes with `fallback`, if any.
    pub gateway: Option<Ipv4Address>,
}

/// What the board's link query found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Whether the link is up. A board that cannot tell says up.
    pub up: bool,
    /// When to ask again even if nothing else wakes the loop (a PHY that
    /// has no interrupt line is polled); `None`: on the next wake-up.
    pub check_again: Option<Instant>,
}

/// Why [`serve`] could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// [`serve`] was called a second time: the static memory is taken.
    MemoryTaken,
    /// The server refused its configuration or buffers.
    Server(multiserve::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MemoryTaken => write!(f, "the server's memory is already taken"),
            Error::Server(e) => write!(f, "server: {}", e),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Error::MemoryTaken => defmt::write!(f, "the server's memory is already taken"),
            Error::Server(e) => defmt::write!(f, "server: {}", e),
        }
    }
}

/// A server's settings on every board: its port, its clients and spare
/// sockets, the board's idle timeout, the core's defaults for the rest.
/// One function for both servers (not inlined into each: flash).
#[inline(never)]
fn server_config(port: u16, clients: usize, spare: usize) -> ServerConfig {
    ServerConfig {
        port,
        clients: Some(clients),
        spare: Some(spare),
        idle_timeout: Some(idle_timeout()),
        ..ServerConfig::default()
    }
}

/// The reverse server, watched by the status server (feature `status`).
#[cfg(feature = "status")]
type Services = Watched<'static, Server<'static, Reverse>, STATUS_ROWS>;
/// The reverse server alone (without the feature `status`).
#[cfg(not(feature = "status"))]
type Services = Server<'static, Reverse>;

/// Runs the board's server for ever; returns only if it cannot start.
///
/// `link` is called once per loop turn with the device and the time;
/// `sleep` is called with the device and the deadline (`None`: no
/// deadline) and returns at the deadline or as soon as the NIC has work,
/// whichever is first. It may return early: the loop then polls once more
/// and sleeps again. The loop is [`Stack::run`].
pub fn serve<D, L, S>(board: Board<D>, link: L, sleep: S) -> Result<Infallible, Error>
where
    D: Device,
    L: FnMut(&mut D, Instant) -> Link,
    S: FnMut(&mut D, Option<Instant>),
{
    let mut stack = Stack::new(board)?;
    stack.run(link, sleep)
}

/// What a board whose loop is an async task (its driver runs on an
/// executor) brings to [`Stack::run_async`]: the link query, and a sleep
/// that a timer or the driver's wake ends. The board layer depends on no
/// executor: the board's timer is the board's.
pub trait Wait<D> {
    /// Called once per loop turn, before the poll step, with the device,
    /// the time and the waker of the task that runs the loop: the board
    /// hands the waker to its driver here (what the driver cannot do now,
    /// it wakes the task for), feeds its watchdog, and returns its link.
    fn link(&mut self, device: &mut D, now: Instant, waker: &Waker) -> Link;

    /// Sleeps until `deadline` (`None`: no deadline) or until the driver
    /// wakes the task, whichever is first. It may end early: the loop then
    /// polls once more and sleeps again.
    fn sleep(&mut self, device: &mut D, deadline: Option<Instant>) -> impl Future<Output = ()>;
}

/// The interface, its sockets, the addressing and the server of a board:
/// what [`serve`] runs, one [`Stack::poll`] per loop turn, in
/// [`Stack::run`], or in [`Stack::run_async`] for a board whose loop is an
/// async task woken by its driver.
pub struct Stack<D> {
    device: D,
    now: fn() -> Instant,
    iface: Interface,
    sockets: SocketSet<'static>,
    addressing: Addressing,
    services: Services,
    announced: bool,
    link_up: bool,
}

impl<D: Device> Stack<D> {
    /// Makes the interface, asks for a DHCPv4 lease (once the link is up),
    /// and makes the server in the static [`Memory`]; fails if the memory
    /// is taken (a second call) or the server refuses its configuration.
    pub fn new(board: Board<D>) -> Result<Self, Error> {
        let Board {
            mut device,
            mac,
            random_seed,
            now,
            fallback,
            gateway,
        } = board;
        let memory = Memory::take().ok_or(Error::MemoryTaken)?;

        let mut config = Config::new(mac.into());
        config.random_seed = random_seed;
        let iface = Interface::new(config, &mut device, now());
        let mut sockets = SocketSet::new(&mut memory.sockets[..]);
        // DHCP first: the server wants its sockets last in the set.
        let addressing = Addressing::new(&mut sockets, DHCP_TIMEOUT, fallback, gateway);
        let service = Reverse::new(FRAMING, MAX_LINE);
        let server = Server::new(
            server_config(PORT, CLIENTS, SPARE),
            service,
            memory.resources,
            &mut sockets,
        )
        .map_err(Error::Server)?;
        #[cfg(feature = "status")]
        let services = Watched::new(
            server,
            Server::new(
                server_config(STATUS_PORT, STATUS_CLIENTS, STATUS_SPARE),
                Status::new(),
                memory.status,
                &mut sockets,
            )
            .map_err(Error::Server)?,
        );
        #[cfg(not(feature = "status"))]
        let services = server;
        Ok(Stack {
            device,
            now,
            iface,
            sockets,
            addressing,
            services,
            announced: false,
            link_up: false,
        })
    }

    /// The device.
    pub fn device(&mut self) -> &mut D {
        &mut self.device
    }

    /// The board's time.
    pub fn now(&self) -> Instant {
        (self.now)()
    }

    /// One loop turn, the same for [`Stack::run`] and
    /// [`Stack::run_async`]: asks the board about its link (`link`, with
    /// the device and the time), runs [`Stack::poll`], and returns until
    /// when the loop may sleep: the earlier of the poll step's deadline
    /// and the link's next check (`None`: until the NIC has work).
    fn turn(&mut self, link: impl FnOnce(&mut D, Instant) -> Link) -> Option<Instant> {
        let now = self.now();
        let link = link(&mut self.device, now);
        let deadline = self.poll(now, link.up);
        earliest(deadline, link.check_again)
    }

    /// The loop of [`serve`], for ever: a turn, then `sleep` with the
    /// device until the turn's deadline.
    pub fn run<L, S>(&mut self, mut link: L, mut sleep: S) -> !
    where
        L: FnMut(&mut D, Instant) -> Link,
        S: FnMut(&mut D, Option<Instant>),
    {
        loop {
            let until = self.turn(&mut link);
            sleep(&mut self.device, until);
        }
    }

    /// The same loop as an async task, for a board whose driver runs on an
    /// executor: each turn runs with the task's waker (handed to the
    /// board's [`Wait::link`]), then the task awaits [`Wait::sleep`] until
    /// the turn's deadline or the driver's wake. It borrows the stack: a
    /// future that held it by value would hold a second copy of it beside
    /// the caller's.
    pub async fn run_async<W: Wait<D>>(&mut self, mut wait: W) -> ! {
        loop {
            let until = poll_fn(|cx| {
                Poll::Ready(self.turn(|device, now| wait.link(device, now, cx.waker())))
            })
            .await;
            wait.sleep(&mut self.device, until).await;
        }
    }

    /// One loop turn at `now`, with the link as the board found it: logs a
    /// link change, runs the server's poll step, then the addressing step,
    /// and logs `serving on IP:PORT` once an address is up. Returns when to
    /// poll again at the latest (the earlier of the server's and the
    /// addressing's deadlines; `None`: only when the NIC has work).
    pub fn poll(&mut self, now: Instant, link_up: bool) -> Option<Instant> {
        if link_up != self.link_up {
            self.link_up = link_up;
            if link_up {
                info!("link up");
            } else {
                warn!("link down");
            }
        }

        self.services
            .poll(now, &mut self.iface, &mut self.device, &mut self.sockets);
        let mut deadline = self.services.poll_at(now, &mut self.iface, &self.sockets);
        let (change, wake) = self
            .addressing
            .poll(now, link_up, &mut self.iface, &mut self.sockets);
        match change {
            AddressChange::Leased(address) | AddressChange::Fallback(address) => {
                announce(address, &mut self.announced);
                // The address changed what the stack may send: poll again.
                deadline = Some(now);
            }
            // Addressing logs the loss; serving resumes with a new lease.
            AddressChange::Lost | AddressChange::None => {}
        }
        earliest(deadline, wake)
    }
}

/// The earlier of two deadlines, where `None` is "never".
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Logs the one `serving on IP:PORT` line the first time an address is up
/// (`serving on IP:PORT, status on IP:STATUS_PORT` with the feature
/// `status`), and each new address after it.
fn announce(address: Ipv4Cidr, announced: &mut bool) {
    if *announced {
        info!("address now {}", address.address());
    } else {
        #[cfg(feature = "status")]
        info!(
            "serving on {}:{}, status on {}:{}",
            address.address(),
            PORT,
            address.address(),
            STATUS_PORT
        );
        #[cfg(not(feature = "status"))]
        info!("serving on {}:{}", address.address(), PORT);
        *announced = true;
    }
}
