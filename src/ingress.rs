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

use smoltcp::phy::{self, Device, DeviceCapabilities, PacketMeta};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, TcpPacket};

/// The destination port of a TCP SYN without ACK (the start of a new
/// connection) carried by `frame` (Ethernet), if it carries one. Malformed
/// frames do not, nor do IPv4 fragments or IPv6 packets with extension
/// headers before TCP (such a SYN goes to the stack as it is, and gets a
/// socket only if one listens).
pub(crate) fn syn_port(frame: &[u8]) -> Option<u16> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let segment = match eth.ethertype() {
        #[cfg(feature = "ipv4")]
        EthernetProtocol::Ipv4 => {
            let ip = smoltcp::wire::Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            ip.payload()
        }
        #[cfg(feature = "ipv6")]
        EthernetProtocol::Ipv6 => {
            let ip = smoltcp::wire::Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            ip.payload()
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(segment).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
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
