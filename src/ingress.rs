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

/// Whether `frame` (Ethernet) carries a TCP SYN without ACK to `port`:
/// the start of a new connection. Malformed frames are not, nor are IPv4
/// fragments or IPv6 packets with extension headers before TCP (such a SYN
/// goes to the stack as it is, and gets a socket only if one listens).
pub(crate) fn is_syn_to(frame: &[u8], port: u16) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let segment = match eth.ethertype() {
        #[cfg(feature = "ipv4")]
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = smoltcp::wire::Ipv4Packet::new_checked(eth.payload()) else {
                return false;
            };
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return false;
            }
            ip.payload()
        }
        #[cfg(feature = "ipv6")]
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = smoltcp::wire::Ipv6Packet::new_checked(eth.payload()) else {
                return false;
            };
            if ip.next_header() != IpProtocol::Tcp {
                return false;
            }
            ip.payload()
        }
        _ => return false,
    };
    match TcpPacket::new_checked(segment) {
        Ok(tcp) => tcp.syn() && !tcp.ack() && tcp.dst_port() == port,
        Err(_) => false,
    }
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
