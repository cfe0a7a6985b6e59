//! An in-memory Ethernet wire between two smoltcp interfaces.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of the wire: frames sent here arrive at the other end.
pub struct Port {
    inbound: Queue,
    outbound: Queue,
}

/// Counts the frames on the wire, in either direction.
#[derive(Clone)]
pub struct InFlight(Queue, Queue);

impl InFlight {
    pub fn count(&self) -> usize {
        self.0.borrow().len() + self.1.borrow().len()
    }
}

/// A wire: two ports joined back to back.
pub fn wire() -> (Port, Port, InFlight) {
    let a: Queue = Rc::default();
    let b: Queue = Rc::default();
    let in_flight = InFlight(a.clone(), b.clone());
    (
        Port {
            inbound: a.clone(),
            outbound: b.clone(),
        },
        Port {
            inbound: b,
            outbound: a,
        },
        in_flight,
    )
}

pub struct RxToken(Vec<u8>);
pub struct TxToken(Queue);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.borrow_mut().push_back(frame);
        r
    }
}

impl Device for Port {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken)> {
        let frame = self.inbound.borrow_mut().pop_front()?;
        Some((RxToken(frame), TxToken(self.outbound.clone())))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken> {
        Some(TxToken(self.outbound.clone()))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}
