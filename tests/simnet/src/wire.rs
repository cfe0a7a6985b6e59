//! An in-memory Ethernet wire between two smoltcp interfaces.
//!
//! Besides carrying frames, the wire can be programmed: a [`Filter`] sees
//! every frame as it is put on the wire and decides whether it arrives, and
//! [`InFlight::inject`] puts arbitrary bytes on it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, TcpRepr,
    TcpTimestampRepr,
};

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the client host to the server host.
    ToServer,
    /// From the server host to the client host.
    ToClient,
}

/// Decides, per frame, whether it reaches the other end (`true`) or is
/// lost (`false`). It may also just look (and record).
pub type Filter = Box<dyn FnMut(Dir, &[u8]) -> bool>;

type SharedFilter = Rc<RefCell<Option<Filter>>>;

/// One end of the wire: frames sent here arrive at the other end.
pub struct Port {
    inbound: Queue,
    outbound: Queue,
    /// The direction of what this end sends.
    dir: Dir,
    filter: SharedFilter,
}

/// Counts the frames on the wire, in either direction, and programs it.
#[derive(Clone)]
pub struct InFlight {
    to_server: Queue,
    to_client: Queue,
    filter: SharedFilter,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.to_server.borrow().len() + self.to_client.borrow().len()
    }

    /// Frames on their way to the server.
    pub fn to_server(&self) -> usize {
        self.to_server.borrow().len()
    }

    /// Let `filter` decide the fate of every frame from now on.
    pub fn set_filter(&self, filter: impl FnMut(Dir, &[u8]) -> bool + 'static) {
        *self.filter.borrow_mut() = Some(Box::new(filter));
    }

    /// Take the current filter off the wire (to wrap it in another).
    pub fn take_filter(&self) -> Option<Filter> {
        self.filter.borrow_mut().take()
    }

    /// Deliver every frame again.
    pub fn clear_filter(&self) {
        *self.filter.borrow_mut() = None;
    }

    /// Put `frame` on the wire as it is, bypassing the filter.
    pub fn inject(&self, dir: Dir, frame: Vec<u8>) {
        match dir {
            Dir::ToServer => self.to_server.borrow_mut().push_back(frame),
            Dir::ToClient => self.to_client.borrow_mut().push_back(frame),
        }
    }
}

/// A wire: two ports joined back to back. The first is the server's.
pub fn wire() -> (Port, Port, InFlight) {
    let a: Queue = Rc::default();
    let b: Queue = Rc::default();
    let filter: SharedFilter = Rc::default();
    let in_flight = InFlight {
        to_server: a.clone(),
        to_client: b.clone(),
        filter: filter.clone(),
    };
    (
        Port {
            inbound: a.clone(),
            outbound: b.clone(),
            dir: Dir::ToClient,
            filter: filter.clone(),
        },
        Port {
            inbound: b,
            outbound: a,
            dir: Dir::ToServer,
            filter,
        },
        in_flight,
    )
}

pub struct RxToken(Vec<u8>);
pub struct TxToken(Queue, Dir, SharedFilter);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        let deliver = match self.2.borrow_mut().as_mut() {
            Some(filter) => filter(self.1, &frame),
            None => true,
        };
        if deliver {
            self.0.borrow_mut().push_back(frame);
        }
        r
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken)> {
        let frame = self.inbound.borrow_mut().pop_front()?;
        Some((RxToken(frame), self.tx()))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken> {
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

impl Port {
    fn tx(&self) -> TxToken {
        TxToken(self.outbound.clone(), self.dir, self.filter.clone())
    }
}

/// The TCP header fields of a frame, for filters and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload_len: usize,
    /// The timestamp option (RFC 7323), if the segment carries one (and
    /// its options parse).
    pub timestamp: Option<TcpTimestampRepr>,
}

/// Parse an Ethernet frame carrying IPv4 and TCP; `None` for anything else.
pub fn tcp_segment(frame: &[u8]) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let timestamp = TcpRepr::parse(
        &tcp,
        &IpAddress::Ipv4(ip.src_addr()),
        &IpAddress::Ipv4(ip.dst_addr()),
        &ChecksumCapabilities::ignored(),
    )
    .ok()
    .and_then(|repr| repr.timestamp);
    Some(Segment {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq_number().0 as u32,
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload_len: tcp.payload().len(),
        timestamp,
    })
}
