//! The device under the interface: the TAP, and the middlewares every
//! frame passes through.

use std::os::fd::RawFd;
use std::rc::Rc;

use smoltcp::phy::{FaultInjector, PcapMode, PcapWriter};

use multiserve::PingLimiter;

use super::{random_seed, Args};
use crate::capture::Capture;
use crate::tap::{self, Health, TapDevice};

/// The one middleware stack, always present: faults injected (0 % unless
/// asked), every frame written to the capture (a sink that writes nothing
/// without `--pcap`), pings limited, the TAP. One type, so the loop is
/// built once, as smoltcp's examples build theirs.
pub type Stack = FaultInjector<PcapWriter<PingLimiter<TapDevice>, Capture>>;

/// The opened TAP, ready to serve.
pub struct Tap {
    pub device: Stack,
    /// The file descriptor the loop sleeps on.
    pub fd: RawFd,
    /// What went wrong with the TAP while serving.
    pub health: Rc<Health>,
}

/// Opens (creating it if missing) the TAP of `args`, and stacks the
/// middlewares on it.
pub fn open(args: &Args) -> Result<Tap, String> {
    let created = !tap::exists(&args.iface);
    let tap = TapDevice::open(&args.iface).map_err(|e| e.to_string())?;
    if created {
        tap::configure_linux_side(
            &args.iface,
            &args.host_ip.to_string(),
            Some(&args.host_ipv6.to_string()),
        )?;
    } else {
        check_linux_side(args)?;
    }
    let health = tap.health();
    let fd = tap.fd();
    Ok(Tap {
        device: stack(tap, args)?,
        fd,
        health,
    })
}

fn stack(tap: TapDevice, args: &Args) -> Result<Stack, String> {
    let device = PingLimiter::new(tap, args.ping_limit, args.ping_limit);
    let capture = match &args.pcap {
        Some(path) => Capture::create(path.clone())?,
        None => Capture::off(),
    };
    let device = PcapWriter::new(device, capture, PcapMode::Both);
    let mut device = FaultInjector::new(device, random_seed() as u32);
    device.set_drop_chance(args.drop_chance);
    device.set_corrupt_chance(args.corrupt_chance);
    Ok(device)
}

/// Refuse the classic mistake: the server's own address on the Linux side
/// of the TAP, where Linux would answer in the server's place.
fn check_linux_side(args: &Args) -> Result<(), String> {
    let own = [
        args.ip.address().to_string(),
        args.ipv6.address().to_string(),
    ];
    for cidr in tap::linux_addresses(&args.iface) {
        let addr = cidr.split('/').next().unwrap_or_default();
        if own.iter().any(|o| o == addr) {
            return Err(format!(
                "{addr} is assigned to {iface} on the Linux side, so Linux would answer in the \
                 server's place. Remove it (ip addr del {cidr} dev {iface}) and give Linux \
                 another address on that network, e.g. {host}",
                iface = args.iface,
                host = args.host_ip
            ));
        }
    }
    Ok(())
}
