//! The TAP device: opening it with errors a person can act on, setting up
//! the Linux side, and a `smoltcp::phy::Device` over it.
//!
//! smoltcp's own `TunTapInterface` panics on a read or write error; this
//! device never does. A frame that cannot be written is dropped (TCP
//! retransmits it) and counted; an error that means the TAP is gone is kept
//! for the main loop to report and stop on.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use tun_tap::{Iface, Mode};

/// The longest interface name Linux takes (IFNAMSIZ - 1).
pub const MAX_NAME_LEN: usize = 15;

/// Ethernet MTU with the 14-byte header (no FCS).
const FRAME_LEN: usize = 1514;

/// Why the TAP could not be opened, in words that say what to do.
#[derive(Debug)]
pub enum OpenError {
    NameTooLong(String),
    NoTunDevice,
    PermissionDenied(String),
    Busy(String),
    NotATap(String),
    Other(String, io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NameTooLong(name) => write!(
                f,
                "interface name {name:?} is {} bytes, longer than {MAX_NAME_LEN} bytes \
                 (the Linux limit); choose a shorter --iface",
                name.len()
            ),
            OpenError::NoTunDevice => write!(
                f,
                "/dev/net/tun does not exist: load the tun module (modprobe tun); in a \
                 container, pass the device through (e.g. --device /dev/net/tun --cap-add NET_ADMIN)"
            ),
            OpenError::PermissionDenied(name) => write!(
                f,
                "permission denied opening TAP {name}: run as root, or create it once for \
                 your user and run without root:\n  \
                 sudo ip tuntap add name {name} mode tap user $USER\n  \
                 sudo ip link set {name} up\n  \
                 sudo ip addr add 192.168.69.100/24 dev {name}"
            ),
            OpenError::Busy(name) => write!(
                f,
                "TAP {name} is in use by another process (a TAP carries one program at a \
                 time): stop that process or choose another --iface"
            ),
            OpenError::NotATap(name) => write!(
                f,
                "{name} exists but is not a TAP device; choose another --iface"
            ),
            OpenError::Other(name, e) => write!(f, "cannot open TAP {name}: {e}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// What the device has seen go wrong, shared with the main loop (the
/// device itself may be wrapped in smoltcp's middleware by then).
#[derive(Default)]
pub struct Health {
    /// A fatal error seen while reading or writing: the TAP is gone.
    error: RefCell<Option<io::Error>>,
    /// Frames that could not be written (the kernel's queue was full or
    /// the link was down); TCP sends them again.
    tx_dropped: Cell<u64>,
}

impl Health {
    /// The fatal error seen, if any.
    pub fn take_error(&self) -> Option<io::Error> {
        self.error.borrow_mut().take()
    }

    /// Frames dropped on write so far.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped.get()
    }

    fn record(&self, e: io::Error) {
        if is_fatal(&e) {
            let mut slot = self.error.borrow_mut();
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }
}

/// An open TAP, as a smoltcp device.
pub struct TapDevice {
    iface: Iface,
    rx: Vec<u8>,
    tx: Vec<u8>,
    health: Rc<Health>,
}

/// Whether a network interface of this name exists.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

impl TapDevice {
    /// Open (or, if it does not exist and we may, create) the TAP `name`.
    /// A TAP created here is not persistent: it vanishes when the process
    /// exits.
    pub fn open(name: &str) -> Result<TapDevice, OpenError> {
        if name.len() > MAX_NAME_LEN {
            return Err(OpenError::NameTooLong(name.to_owned()));
        }
        if !Path::new("/dev/net/tun").exists() {
            return Err(OpenError::NoTunDevice);
        }
        let iface =
            Iface::without_packet_info(name, Mode::Tap).map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    OpenError::PermissionDenied(name.to_owned())
                }
                Some(libc::EBUSY) => OpenError::Busy(name.to_owned()),
                Some(libc::EINVAL) if exists(name) => OpenError::NotATap(name.to_owned()),
                _ => OpenError::Other(name.to_owned(), e),
            })?;
        iface
            .set_non_blocking()
            .map_err(|e| OpenError::Other(name.to_owned(), e))?;
        Ok(TapDevice {
            iface,
            rx: vec![0; FRAME_LEN],
            tx: vec![0; FRAME_LEN],
            health: Rc::default(),
        })
    }

    /// The file descriptor to wait on for received frames.
    pub fn fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }

    /// What went wrong so far; stays readable after the device is
    /// wrapped in middleware.
    pub fn health(&self) -> Rc<Health> {
        self.health.clone()
    }
}

/// Errors that say the TAP went away rather than that one frame failed.
fn is_fatal(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) && !matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::ENOBUFS))
}

pub struct RxToken<'a>(&'a [u8]);

pub struct TxToken<'a> {
    iface: &'a Iface,
    buf: &'a mut Vec<u8>,
    health: &'a Health,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let frame = &mut self.buf[..len];
        let result = f(frame);
        loop {
            match self.iface.send(frame) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.health.tx_dropped.set(self.health.tx_dropped.get() + 1);
                    self.health.record(e);
                    break;
                }
            }
        }
        result
    }
}

impl Device for TapDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = loop {
            match self.iface.recv(&mut self.rx) {
                Ok(len) => break len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.health.record(e);
                    return None;
                }
            }
        };
        Some((
            RxToken(&self.rx[..len]),
            TxToken {
                iface: &self.iface,
                buf: &mut self.tx,
                health: &self.health,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            iface: &self.iface,
            buf: &mut self.tx,
            health: &self.health,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_LEN;
        caps
    }
}

/// Run `ip` with `args`; an error says which command failed and why.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e} (install iproute2)", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Bring a TAP we created up and give the Linux side its addresses.
pub fn configure_linux_side(
    name: &str,
    host_ip: &str,
    host_ipv6: Option<&str>,
) -> Result<(), String> {
    ip(&["link", "set", "dev", name, "up"])?;
    ip(&["addr", "add", host_ip, "dev", name])?;
    if let Some(v6) = host_ipv6 {
        ip(&["-6", "addr", "add", v6, "dev", name, "nodad"])?;
    }
    Ok(())
}

/// The addresses Linux has on `name`, as `ADDR/PREFIX` strings.
pub fn linux_addresses(name: &str) -> Vec<String> {
    let Ok(out) = ip(&["-o", "addr", "show", "dev", name]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words.next().map(str::to_owned)
        })
        .collect()
}
