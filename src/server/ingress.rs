//! Looking at a frame before the stack does.
//!
//! smoltcp answers a SYN that finds no listening socket with a reset, at
//! once, inside its ingress. To take a socket back for a new client only
//! when one actually knocks (and not on the chance that one might), the
//! server takes the frame from the device itself while no socket listens,
//! sees whether it is a SYN for the service port, makes a socket listen if
//! one can be had, and only then hands the frame to the interface through
//! [`OneFrame`], a device that holds just that frame and the device's
//! transmit token for the stack's reply.

use smoltcp::iface::Interface;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, HardwareAddress, IpAddress, IpProtocol, TcpControl, TcpPacket,
    TcpRepr,
};

/// The destination port of a TCP SYN without ACK (the start of a new
/// connection) carried by `frame`, if it carries one that the interface's
/// stack would itself take, as smoltcp checks it: an Ethernet frame
/// (`capabilities` of the device) for the interface's MAC address (or
/// broadcast, or multicast), from a unicast IP address to one of the
/// interface's own, with valid IPv4 and TCP checksums (as far as the
/// device leaves them to the stack). Only such a SYN may take a socket
/// back; a corrupt or foreign one goes to the stack, which drops it.
/// Malformed frames carry none, nor do IPv4 fragments, IPv6 packets with
/// extension headers before TCP, or packets for a broadcast or multicast
/// address (such a SYN goes to the stack as it is, and gets a socket only
/// if one listens).
pub(crate) fn syn_port(
    frame: &[u8],
    iface: &Interface,
    capabilities: &DeviceCapabilities,
) -> Option<u16> {
    if capabilities.medium != Medium::Ethernet {
        return None;
    }
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let to = eth.dst_addr();
    if !to.is_broadcast()
        && !to.is_multicast()
        && HardwareAddress::Ethernet(to) != iface.hardware_addr()
    {
        return None;
    }
    let checksum = &capabilities.checksum;
    let (src, dst, segment) = match eth.ethertype() {
        #[cfg(feature = "ipv4")]
        EthernetProtocol::Ipv4 => {
            let ip = smoltcp::wire::Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            // Checks the header checksum, as the stack does.
            let repr = smoltcp::wire::Ipv4Repr::parse(&ip, checksum).ok()?;
            let src = IpAddress::Ipv4(repr.src_addr);
            if is_subnet_broadcast(iface, src) {
                return None;
            }
            (src, IpAddress::Ipv4(repr.dst_addr), ip.payload())
        }
        #[cfg(feature = "ipv6")]
        EthernetProtocol::Ipv6 => {
            let ip = smoltcp::wire::Ipv6Packet::new_checked(eth.payload()).ok()?;
            let repr = smoltcp::wire::Ipv6Repr::parse(&ip).ok()?;
            if repr.next_header != IpProtocol::Tcp {
                return None;
            }
            (
                IpAddress::Ipv6(repr.src_addr),
                IpAddress::Ipv6(repr.dst_addr),
                ip.payload(),
            )
        }
        _ => return None,
    };
    if !src.is_unicast() || !iface.has_ip_addr(dst) {
        return None;
    }
    let tcp = TcpPacket::new_checked(segment).ok()?;
    if !tcp.syn() || tcp.ack() {
        return None;
    }
    // Checks the TCP checksum (over the pseudo-header), as the stack does.
    let repr = TcpRepr::parse(&tcp, &src, &dst, checksum).ok()?;
    (repr.control == TcpControl::Syn && repr.ack_number.is_none()).then_some(repr.dst_port)
}

/// Whether `addr` is the broadcast address of one of the interface's IPv4
/// subnets (the stack drops packets from one).
#[cfg(feature = "ipv4")]
fn is_subnet_broadcast(iface: &Interface, addr: IpAddress) -> bool {
    use smoltcp::wire::IpCidr;
    iface.ip_addrs().iter().any(|cidr| match (cidr, addr) {
        (IpCidr::Ipv4(cidr), IpAddress::Ipv4(addr)) => cidr.broadcast() == Some(addr),
        #[allow(unreachable_patterns)]
        _ => false,
    })
}

/// A device that yields one frame already received, with the transmit
/// token that came with it (for the stack's immediate reply), and nothing
/// else.
pub(crate) struct OneFrame<'f, T> {
    frame: Option<(&'f [u8], PacketMeta)>,
    tx: Option<T>,
    capabilities: DeviceCapabilities,
}

impl<'f, T: phy::TxToken> OneFrame<'f, T> {
    pub(crate) fn new(
        frame: &'f [u8],
        meta: PacketMeta,
        tx: T,
        capabilities: DeviceCapabilities,
    ) -> Self {
        OneFrame {
            frame: Some((frame, meta)),
            tx: Some(tx),
            capabilities,
        }
    }
}

/// The receive token of [`OneFrame`].
pub(crate) struct Frame<'f>(&'f [u8], PacketMeta);

impl phy::RxToken for Frame<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }

    fn meta(&self) -> PacketMeta {
        self.1
    }
}

impl<'f, T: phy::TxToken> Device for OneFrame<'f, T> {
    type RxToken<'a>
        = Frame<'f>
    where
        Self: 'a;
    type TxToken<'a>
        = T
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (frame, meta) = self.frame.take()?;
        let tx = self.tx.take()?;
        Some((Frame(frame, meta), tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.tx.take()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.capabilities.clone()
    }
}
