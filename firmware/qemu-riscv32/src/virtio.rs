//! virtio-net over MMIO as a [`smoltcp::phy::Device`], on `virtio-drivers`'
//! [`VirtIONetRaw`], with the DMA memory it needs and the probe that finds
//! the devices.
//!
//! * **DMA** ([`DmaHal`]): the program runs in M-mode without paging, so a
//!   physical address is the address itself. The queues come from a static,
//!   page-aligned arena, handed out page by page and never given back
//!   (queues live as long as their device; a device dropped at start, the
//!   entropy source, leaks its pages). Frame buffers are this module's own
//!   statics, shared with the device in place.
//! * **Receive**: [`RX_BUFFERS`] buffers are posted to the receive queue;
//!   the device fills them in order, each with a virtio-net header and one
//!   frame. A buffer whose frame smoltcp has consumed is posted again on
//!   the next call into the driver.
//! * **Transmit**: [`TX_BUFFERS`] buffers; a transmit token fills one with
//!   a header and the frame and submits it; the buffer is free again once
//!   the device has put it on its used ring.
//!
//! # `unsafe`
//!
//! * [`DmaHal`] implements virtio-drivers' `unsafe trait Hal`: each
//!   allocation is a fresh, zeroed, page-aligned range of the arena, never
//!   handed out twice; `share` returns a buffer's own address, which is its
//!   physical address (identity-mapped M-mode).
//! * [`probe`] makes an `MmioTransport` for each of the `virt` machine's 8
//!   virtio-mmio slots (0x1000_1000 + 0x1000·n, 0x1000 bytes each, fixed by
//!   the machine), once each: no two transports alias a slot.
//! * [`VirtioNet`] passes buffers to `receive_begin` / `transmit_begin`,
//!   which the device uses until they come back on a used ring. A buffer is
//!   not touched between begin and complete: a posted receive buffer is
//!   marked by its token in `rx_token`, a submitted transmit buffer by its
//!   entry in `tx_used`, and only buffers without either are handed to
//!   smoltcp. `receive_complete` / `transmit_complete` get the very buffer
//!   (and length) that was begun with that token.

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use multiserve_board::RxFrame;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Pages of the DMA arena: two per virtqueue (descriptors and available
/// ring in one, used ring in the other; or both in two pages with the
/// legacy layout) for the NIC's two queues and the entropy source's one.
/// The NIC is set up first; should the entropy source find the arena
/// empty, the seed falls back to the clock.
const ARENA_PAGES: usize = 6;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_PAGES * PAGE_SIZE]>);

// SAFETY: the arena is only reached through `DmaHal::dma_alloc`, which
// hands every page out once (an atomic counter), and then by the device
// and the driver that owns the queue.
unsafe impl Sync for Arena {}

/// All zeros (`.bss`): pages are zeroed as `Hal` requires, since none is
/// reused.
static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_PAGES * PAGE_SIZE]));
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

/// virtio-drivers' platform layer for identity-mapped M-mode.
pub struct DmaHal;

// SAFETY: see the module docs: allocations are distinct, zeroed,
// page-aligned ranges of a static; addresses are physical addresses.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let taken = ARENA_USED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(pages).filter(|&end| end <= ARENA_PAGES)
        });
        let Ok(first) = taken else {
            // Physical address 0 is virtio-drivers' "no memory" (DmaError).
            return (0, NonNull::dangling());
        };
        // SAFETY: `first + pages <= ARENA_PAGES`, so the offset stays in the
        // arena.
        let start = unsafe { ARENA.0.get().cast::<u8>().add(first * PAGE_SIZE) };
        match NonNull::new(start) {
            Some(start) => (start.as_ptr() as usize as PhysAddr, start),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Never reused: the pages stay allocated (see the module docs).
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Identity-mapped; MMIO is never at address 0 here.
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The `virt` machine's virtio-mmio slots.
const MMIO_BASE: usize = 0x1000_1000;
const MMIO_SIZE: usize = 0x1000;
const MMIO_SLOTS: usize = 8;
/// The PLIC interrupt of slot 0; slot n has `MMIO_IRQ_BASE + n`.
const MMIO_IRQ_BASE: u32 = 1;

/// A virtio device found by [`probe`], with its PLIC interrupt number.
pub struct Found {
    pub transport: MmioTransport<'static>,
    pub irq: u32,
}

/// The NIC and the entropy source among the virtio-mmio slots, if present.
/// Call once (see the module docs).
pub fn probe() -> (Option<Found>, Option<Found>) {
    let (mut net, mut rng) = (None, None);
    for slot in 0..MMIO_SLOTS {
        let address = MMIO_BASE + slot * MMIO_SIZE;
        let Some(header) = NonNull::new(address as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: a virtio-mmio slot of the `virt` machine, valid for the
        // whole program, made into a transport once (module docs).
        let Ok(transport) = (unsafe { MmioTransport::new(header, MMIO_SIZE) }) else {
            continue; // an empty slot (device ID 0) or not virtio
        };
        let found = Found {
            irq: MMIO_IRQ_BASE + slot as u32,
            transport,
        };
        match found.transport.device_type() {
            DeviceType::Network if net.is_none() => net = Some(found),
            DeviceType::EntropySource if rng.is_none() => rng = Some(found),
            _ => {}
        }
    }
    (net, rng)
}

/// 64 bits from the virtio entropy source.
pub fn entropy(found: Found) -> Option<u64> {
    let mut rng = VirtIORng::<DmaHal, _>::new(found.transport).ok()?;
    let mut seed = [0u8; 8];
    let mut filled = 0;
    for _ in 0..100 {
        if filled == seed.len() {
            return Some(u64::from_le_bytes(seed));
        }
        filled += rng.request_entropy(seed.get_mut(filled..)?).ok()?;
    }
    None
}

/// Queue length (a power of two, at least [`RX_BUFFERS`]).
const QUEUE_SIZE: usize = 8;
/// Receive buffers posted to the device.
pub const RX_BUFFERS: usize = 8;
/// Transmit buffers.
pub const TX_BUFFERS: usize = 4;
/// Largest Ethernet frame without FCS (IP MTU 1500 + 14).
const MAX_FRAME: usize = 1514;
/// A buffer: the 12-byte virtio-net header, then a frame. virtio-drivers
/// wants receive buffers of at least 1526 bytes.
const BUF_LEN: usize = 1536;

type Buffer = [u8; BUF_LEN];

struct Buffers {
    rx: [Buffer; RX_BUFFERS],
    tx: [Buffer; TX_BUFFERS],
}

static BUFFERS: static_cell::ConstStaticCell<Buffers> =
    static_cell::ConstStaticCell::new(Buffers {
        rx: [[0; BUF_LEN]; RX_BUFFERS],
        tx: [[0; BUF_LEN]; TX_BUFFERS],
    });

/// Counters, for logging. Each wraps around at `u32::MAX`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub rx_errors: u32,
    pub tx_errors: u32,
}

/// Why the NIC could not be brought up.
#[derive(Debug)]
pub enum Error {
    /// The frame buffers were already handed out.
    Taken,
    /// virtio-drivers refused the device.
    Virtio(virtio_drivers::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Taken => write!(f, "the frame buffers are already taken"),
            Error::Virtio(e) => write!(f, "{}", e),
        }
    }
}

/// The NIC: the raw driver and the frame buffers.
pub struct VirtioNet {
    raw: VirtIONetRaw<DmaHal, MmioTransport<'static>, QUEUE_SIZE>,
    irq: u32,
    rx: &'static mut [Buffer; RX_BUFFERS],
    /// The token of each posted receive buffer; `None`: not posted.
    rx_token: [Option<u16>; RX_BUFFERS],
    tx: &'static mut [Buffer; TX_BUFFERS],
    /// The token and length of each submitted transmit buffer.
    tx_used: [Option<(u16, usize)>; TX_BUFFERS],
    stats: Stats,
}

impl VirtioNet {
    /// Initialises the device and posts every receive buffer.
    pub fn new(found: Found) -> Result<VirtioNet, Error> {
        let raw = VirtIONetRaw::new(found.transport).map_err(Error::Virtio)?;
        let buffers = BUFFERS.try_take().ok_or(Error::Taken)?;
        let mut nic = VirtioNet {
            raw,
            irq: found.irq,
            rx: &mut buffers.rx,
            rx_token: [None; RX_BUFFERS],
            tx: &mut buffers.tx,
            tx_used: [None; TX_BUFFERS],
            stats: Stats::default(),
        };
        nic.post_receive_buffers();
        Ok(nic)
    }

    pub fn mac_address(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// The device's PLIC interrupt.
    pub fn irq(&self) -> u32 {
        self.irq
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Acknowledges the device's interrupt and says whether the main loop
    /// has work: a frame received, a transmit buffer done, a receive buffer
    /// to post again.
    pub fn has_work(&mut self) -> bool {
        let _ = self.raw.ack_interrupt();
        self.raw.poll_receive().is_some()
            || self.raw.poll_transmit().is_some()
            || self.rx_token.iter().any(Option::is_none)
    }

    /// Posts every receive buffer that is not posted.
    fn post_receive_buffers(&mut self) {
        for (buf, token) in self.rx.iter_mut().zip(self.rx_token.iter_mut()) {
            if token.is_none() {
                // SAFETY: the buffer is not posted (no token), and is not
                // touched until its token comes back (module docs).
                match unsafe { self.raw.receive_begin(buf) } {
                    Ok(t) => *token = Some(t),
                    Err(_) => self.stats.rx_errors = self.stats.rx_errors.wrapping_add(1),
                }
            }
        }
    }

    /// Frees the transmit buffers the device is done with.
    fn reap_transmitted(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some(i) = self
                .tx_used
                .iter()
                .position(|u| matches!(u, Some((t, _)) if *t == token))
            else {
                break; // not ours: cannot happen, and cannot be completed
            };
            let (Some(Some((_, len))), Some(buf)) = (self.tx_used.get(i), self.tx.get(i)) else {
                break;
            };
            let frame = buf.get(..*len).unwrap_or_default();
            // SAFETY: the buffer and length submitted with this token.
            if unsafe { self.raw.transmit_complete(token, frame) }.is_err() {
                self.stats.tx_errors = self.stats.tx_errors.wrapping_add(1);
            }
            if let Some(used) = self.tx_used.get_mut(i) {
                *used = None;
            }
        }
    }

    /// Housekeeping before handing out tokens.
    fn service(&mut self) {
        self.post_receive_buffers();
        self.reap_transmitted();
    }
}

pub struct TxToken<'a> {
    raw: &'a mut VirtIONetRaw<DmaHal, MmioTransport<'static>, QUEUE_SIZE>,
    buf: &'a mut Buffer,
    used: &'a mut Option<(u16, usize)>,
    errors: &'a mut u32,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU we report.
        let len = len.min(MAX_FRAME);
        // Cannot fail: the buffer is longer than any header.
        let header = self.raw.fill_buffer_header(self.buf).unwrap_or(0);
        let end = header + len;
        let result = f(&mut self.buf[header..end]);
        // SAFETY: the buffer is free (no `used` entry) and is not touched
        // until the device returns it (module docs).
        match unsafe { self.raw.transmit_begin(&self.buf[..end]) } {
            Ok(token) => *self.used = Some((token, end)),
            Err(_) => *self.errors = self.errors.wrapping_add(1),
        }
        result
    }
}

/// A free transmit buffer, as a token.
fn free_tx<'a>(
    raw: &'a mut VirtIONetRaw<DmaHal, MmioTransport<'static>, QUEUE_SIZE>,
    tx: &'a mut [Buffer; TX_BUFFERS],
    tx_used: &'a mut [Option<(u16, usize)>; TX_BUFFERS],
    errors: &'a mut u32,
) -> Option<TxToken<'a>> {
    if !raw.can_send() {
        return None;
    }
    let (buf, used) = tx
        .iter_mut()
        .zip(tx_used.iter_mut())
        .find(|(_, u)| u.is_none())?;
    Some(TxToken {
        raw,
        buf,
        used,
        errors,
    })
}

impl Device for VirtioNet {
    type RxToken<'a> = RxFrame<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxFrame<'_>, TxToken<'_>)> {
        self.service();
        // The reply token must be able to send: leave frames in the queue
        // until a transmit buffer is free.
        if !self.raw.can_send() || self.tx_used.iter().all(Option::is_some) {
            return None;
        }
        let token = self.raw.poll_receive()?;
        let VirtioNet {
            raw,
            rx,
            rx_token,
            tx,
            tx_used,
            stats,
            ..
        } = self;
        let i = rx_token.iter().position(|t| *t == Some(token))?;
        let (Some(buf), Some(slot)) = (rx.get_mut(i), rx_token.get_mut(i)) else {
            return None;
        };
        // SAFETY: the buffer posted with this token.
        let completed = unsafe { raw.receive_complete(token, buf) };
        *slot = None;
        let frame = match completed {
            Ok((header, len)) => buf.get(header..header + len),
            Err(_) => None,
        };
        let Some(frame) = frame else {
            stats.rx_errors = stats.rx_errors.wrapping_add(1);
            return None;
        };
        let tx = free_tx(raw, tx, tx_used, &mut stats.tx_errors)?;
        Some((RxFrame(frame), tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        self.service();
        let VirtioNet {
            raw,
            tx,
            tx_used,
            stats,
            ..
        } = self;
        free_tx(raw, tx, tx_used, &mut stats.tx_errors)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // No burst limit: while no receive buffer is posted, QEMU keeps
        // frames queued for the device instead of dropping them.
        caps
    }
}
