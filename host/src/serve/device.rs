//! The device under the interface: the TAP, and the middlewares every
//! frame passes through.

use std::os::fd::RawFd;
use std::rc::Rc;

use smoltcp::phy::{self, Device, DeviceCapabilities, PcapMode, PcapWriter};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};

use multiserve::PingLimiter;

use super::faults::Faults;
use super::{random_seed, Args};
use crate::capture::Capture;
use crate::tap::{self, Health, TapDevice};

/// The one middleware stack, always present: faults injected (none unless
/// asked: [`Faults`]), the first SYN-ACKs dropped (none unless asked), every frame
/// written to the capture (a sink that writes nothing without `--pcap`),
/// pings limited, the TAP. One type, so the loop is built once, as
/// smoltcp's examples build theirs.
pub type Stack = Faults<SynAckDropper<PcapWriter<PingLimiter<TapDevice>, Capture>>>;

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
    let device = SynAckDropper::new(device, args.drop_syn_acks);
    Ok(Faults::new(
        device,
        args.drop_chance,
        args.corrupt_chance,
        random_seed() as u32,
    ))
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

/// Fault injection: drops the first `left` SYN-ACKs the server sends
/// (`--drop-syn-acks`), so that a client must send its SYN again. Every
/// other frame, and every frame once `left` is 0, passes as it is.
pub struct SynAckDropper<D> {
    inner: D,
    /// SYN-ACKs still to drop.
    left: u32,
}

impl<D> SynAckDropper<D> {
    pub fn new(inner: D, left: u32) -> Self {
        SynAckDropper { inner, left }
    }
}

impl<D: Device> Device for SynAckDropper<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = DropperTxToken<'a, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let left = &mut self.left;
        self.inner
            .receive(now)
            .map(|(rx, tx)| (rx, DropperTxToken { inner: tx, left }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let left = &mut self.left;
        self.inner
            .transmit(now)
            .map(|tx| DropperTxToken { inner: tx, left })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

pub struct DropperTxToken<'a, T> {
    inner: T,
    left: &'a mut u32,
}

impl<T: phy::TxToken> phy::TxToken for DropperTxToken<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if *self.left == 0 {
            return self.inner.consume(len, f);
        }
        // Build the frame aside: only a frame that is not dropped goes on.
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        if is_syn_ack(&frame) {
            *self.left -= 1;
        } else {
            self.inner.consume(len, |buf| buf.copy_from_slice(&frame));
        }
        result
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.inner.set_meta(meta);
    }
}

/// Whether `frame` (Ethernet) carries a TCP segment with SYN and ACK set,
/// over IPv4 or IPv6 (no extension headers: the server sends none).
fn is_syn_ack(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    // The SYN and ACK flags of a TCP segment in an IP packet's payload.
    let flags = |next: IpProtocol, payload: &[u8]| {
        (next == IpProtocol::Tcp)
            .then(|| TcpPacket::new_checked(payload).ok())
            .flatten()
            .map(|t| (t.syn(), t.ack()))
    };
    let tcp = match eth.ethertype() {
        EthernetProtocol::Ipv4 => Ipv4Packet::new_checked(eth.payload())
            .ok()
            .and_then(|ip| flags(ip.next_header(), ip.payload())),
        EthernetProtocol::Ipv6 => Ipv6Packet::new_checked(eth.payload())
            .ok()
            .and_then(|ip| flags(ip.next_header(), ip.payload())),
        _ => None,
    };
    tcp == Some((true, true))
}
