//! The STM32F4 Ethernet MAC as a [`smoltcp::phy::Device`], over stm32-eth's
//! DMA descriptor rings.
//!
//! stm32-eth's own `smoltcp-phy` feature implements the `Device` trait of
//! the smoltcp version it depends on (0.12), not the 0.14 this project
//! uses; this module is the same thin adapter against 0.14. It holds no
//! `unsafe`: stm32-eth owns the descriptors and registers.
//!
//! The MAC computes and inserts the IPv4/TCP/UDP/ICMP checksums of every
//! frame it sends (stm32-eth sets checksum insertion in each TX
//! descriptor), so smoltcp leaves them out. Received checksums are still
//! verified by smoltcp: stm32-eth configures the DMA to pass on frames whose
//! checksum check failed.

use core::sync::atomic::{AtomicBool, Ordering};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use stm32_eth::dma::{EthernetDMA, RxRing, TxRing};

/// Largest Ethernet frame without FCS (IP MTU 1500 + 14).
const MAX_FRAME: usize = 1514;

static IRQ_PENDING: AtomicBool = AtomicBool::new(false);

/// Interrupt-handler half: clears the DMA's interrupt flags (stm32-eth) and
/// tells the main loop to poll.
pub fn on_interrupt() {
    let _ = stm32_eth::eth_interrupt_handler();
    IRQ_PENDING.store(true, Ordering::Release);
}

/// Takes the flag set by [`on_interrupt`].
pub fn take_interrupt() -> bool {
    IRQ_PENDING.swap(false, Ordering::AcqRel)
}

/// Whether an interrupt arrived that the main loop has not seen yet.
pub fn interrupt_pending() -> bool {
    IRQ_PENDING.load(Ordering::Acquire)
}

/// Counters, for logging.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub rx_errors: u32,
    pub tx_errors: u32,
}

pub struct Eth<'rx, 'tx> {
    dma: EthernetDMA<'rx, 'tx>,
    rx_entries: usize,
    /// Where a frame goes that cannot be sent (cannot happen: a TX token is
    /// only made when a descriptor is free), so that no error path panics.
    spill: [u8; MAX_FRAME],
    rx_errors: u32,
    tx_errors: u32,
}

impl<'rx, 'tx> Eth<'rx, 'tx> {
    /// `rx_entries`: the RX ring's length, which bounds how many frames may
    /// arrive in one burst.
    pub fn new(dma: EthernetDMA<'rx, 'tx>, rx_entries: usize) -> Self {
        dma.enable_interrupt();
        Eth {
            dma,
            rx_entries,
            spill: [0; MAX_FRAME],
            rx_errors: 0,
            tx_errors: 0,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            rx_errors: self.rx_errors,
            tx_errors: self.tx_errors,
        }
    }

    /// Whether a received frame waits in the RX ring.
    pub fn rx_pending(&mut self) -> bool {
        self.dma.rx_available()
    }
}

pub struct RxToken<'a, 'rx> {
    ring: &'a mut RxRing<'rx>,
    errors: &'a mut u32,
}

impl phy::RxToken for RxToken<'_, '_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        match self.ring.recv_next(None) {
            Ok(packet) => {
                let result = f(&packet);
                packet.free();
                result
            }
            // A truncated or erroneous frame: smoltcp drops an empty one.
            Err(_) => {
                *self.errors = self.errors.wrapping_add(1);
                f(&[])
            }
        }
    }
}

pub struct TxToken<'a, 'tx> {
    ring: &'a mut TxRing<'tx>,
    spill: &'a mut [u8; MAX_FRAME],
    errors: &'a mut u32,
}

impl phy::TxToken for TxToken<'_, '_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU we report.
        let len = len.min(MAX_FRAME);
        match self.ring.send_next(len, None) {
            Ok(mut packet) => {
                let result = f(&mut packet);
                packet.send();
                result
            }
            Err(_) => {
                *self.errors = self.errors.wrapping_add(1);
                f(&mut self.spill[..len])
            }
        }
    }
}

impl<'rx, 'tx> Device for Eth<'rx, 'tx> {
    type RxToken<'a>
        = RxToken<'a, 'rx>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, 'tx>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Eth {
            dma,
            spill,
            rx_errors,
            tx_errors,
            ..
        } = self;
        let (rx, tx) = dma.split();
        if !(rx.next_entry_available() && tx.next_entry_available()) {
            return None;
        }
        Some((
            RxToken {
                ring: rx,
                errors: rx_errors,
            },
            TxToken {
                ring: tx,
                spill,
                errors: tx_errors,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let Eth {
            dma,
            spill,
            tx_errors,
            ..
        } = self;
        let (_, tx) = dma.split();
        if !tx.next_entry_available() {
            return None;
        }
        Some(TxToken {
            ring: tx,
            spill,
            errors: tx_errors,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(self.rx_entries);
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = Checksum::Rx;
        checksum.tcp = Checksum::Rx;
        checksum.udp = Checksum::Rx;
        checksum.icmpv4 = Checksum::Rx;
        caps.checksum = checksum;
        caps
    }
}
