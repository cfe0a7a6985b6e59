//! SMSC LAN9118 (and its successor LAN9220) Ethernet controller as a
//! [`smoltcp::phy::Device`].
//!
//! The chip is a memory-mapped FIFO device without DMA:
//!
//! * **Receive**: the MAC writes each accepted frame into the RX data FIFO and
//!   then a status word into the RX status FIFO. We pop the status word (frame
//!   length in bits 29:16, *including* the 4-byte FCS), then pop
//!   `ceil(length / 4)` data words.
//! * **Transmit**: we push command word A (first/last segment, buffer size),
//!   command word B (packet tag, packet length) and the frame as little-endian
//!   words into the TX data FIFO. With `TX_CFG.TXSAO` set the TX status FIFO
//!   may overflow harmlessly; we still drain it to count transmit errors.
//! * **MAC and PHY** registers are reached indirectly through `MAC_CSR_CMD` /
//!   `MAC_CSR_DATA`, and the PHY through the MAC's `MII_ACC` / `MII_DATA`.
//!
//! Every FIFO pop is preceded by a look at the FIFO-information registers
//! (`RX_FIFO_INF`, `TX_FIFO_INF`): an empty FIFO does not fail on read, it
//! returns stale words (QEMU's model does exactly that), which would be
//! taken for a frame.
//!
//! # `unsafe`
//!
//! This module holds the crate's register access. [`Regs`] is the only place
//! that dereferences a raw pointer: it reads and writes 32-bit registers at
//! `BASE + offset` with volatile accesses. That is sound because
//! * `BASE` is the NIC's fixed MMIO window on the AN385 (0x4020_0000, 256
//!   bytes), present whenever the board is, and every offset used is one of
//!   the register constants below (all `< 0x100`, 4-byte aligned);
//! * there is only one driver instance ([`Lan9118::take`] hands it out once);
//!   the interrupt handler touches only `INT_EN`, with a single store (see
//!   [`on_interrupt`]).
//!
//! The other `unsafe` here is [`enable_interrupt`], which unmasks the NIC's
//! line in the NVIC, and the `DefaultHandler` signature cortex-m-rt
//! demands; see there.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use multiserve_board::RxFrame;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Base address of the LAN9118 on the AN385 (and in QEMU's `mps2-an385`).
const BASE: usize = 0x4020_0000;

/// The NIC's interrupt number (external interrupt 13 on the AN385).
pub const IRQ_NUMBER: u16 = 13;

/// Largest Ethernet frame we send or accept, without the FCS (MTU 1500 + 14).
const MAX_FRAME: usize = 1514;
/// Frame buffer size: room for a frame + FCS rounded up to whole words.
const BUF_LEN: usize = 1524;

/// Frames the host side may have in flight towards us before QEMU's RX FIFO
/// overflows. QEMU's model has a 2640-word (~10 KiB) RX data FIFO and drops
/// frames silently once it is full, so advertising more than a handful of
/// full-size segments per connection only produces losses and
/// retransmissions. smoltcp caps every TCP window it advertises at
/// `max_burst_size * MSS`; keep the socket receive buffers modest as well
/// (the board uses 2 KiB), since several connections share the one FIFO.
const MAX_BURST: usize = 4;

mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const TX_STATUS_FIFO: usize = 0x48;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_STS: usize = 0x58;
    pub const INT_EN: usize = 0x5C;
    pub const BYTE_TEST: usize = 0x64;
    pub const FIFO_INT: usize = 0x68;
    pub const RX_CFG: usize = 0x6C;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7C;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const FREE_RUN: usize = 0x9C;
    pub const MAC_CSR_CMD: usize = 0xA4;
    pub const MAC_CSR_DATA: usize = 0xA8;
    pub const AFC_CFG: usize = 0xAC;
}

/// Indices of the MAC registers behind `MAC_CSR_CMD`.
mod mac {
    pub const CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;

    pub const CR_FDPX: u32 = 1 << 20;
    pub const CR_TXEN: u32 = 1 << 3;
    pub const CR_RXEN: u32 = 1 << 2;
}

/// Registers of the internal PHY (address 1).
mod phy_reg {
    pub const ADDR: u32 = 1;
    pub const BMCR: u32 = 0;
    pub const BMSR: u32 = 1;
    pub const ANAR: u32 = 4;
    pub const ANLPAR: u32 = 5;
    pub const INT_SRC: u32 = 29;
    pub const INT_MASK: u32 = 30;

    pub const BMCR_ANENABLE: u16 = 1 << 12;
    pub const BMCR_ANRESTART: u16 = 1 << 9;
    pub const BMSR_LINK: u16 = 1 << 2;
    /// 802.3 selector + 10/100 half/full.
    pub const ANAR_ALL: u16 = 0x01E1;
    pub const AN_100FULL: u16 = 1 << 8;
    pub const AN_100HALF: u16 = 1 << 7;
    pub const AN_10FULL: u16 = 1 << 6;
    pub const INT_AUTONEG_DONE: u16 = 1 << 6;
    pub const INT_LINK_DOWN: u16 = 1 << 4;
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1 << 0;
/// "Must be one" bit of HW_CFG on the LAN9118 family.
const HW_CFG_MBO: u32 = 1 << 20;
/// TX FIFO size 5 KiB (the reset value; leaves 10 KiB for RX).
const HW_CFG_TX_FIF_SZ_5K: u32 = 5 << 16;
const PMT_CTRL_READY: u32 = 1 << 0;
/// Interrupt output enabled, push-pull, active high: the NVIC line is level
/// sensitive and QEMU drives it inverted otherwise.
const IRQ_CFG_ENABLE_PUSHPULL_HIGH: u32 = (1 << 8) | (1 << 4) | (1 << 0);
const INT_RSFL: u32 = 1 << 3;
const INT_PHY: u32 = 1 << 18;
const INT_MASK: u32 = INT_RSFL | INT_PHY;
/// TX data-available level 0x48 (reset value), RX status level 0: interrupt
/// as soon as one frame has been received.
const FIFO_INT_LEVELS: u32 = 0x4800_0000;
const RX_CFG_DUMP: u32 = 1 << 15;
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_TXSAO: u32 = 1 << 2;
/// Flow-control thresholds recommended by the data sheet.
const AFC_CFG_DEFAULT: u32 = 0x006E_3740;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MII_BUSY: u32 = 1 << 0;
const MII_WRITE: u32 = 1 << 1;
const RX_STS_ERROR: u32 = 1 << 15;
const TX_STS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

/// How often to poll a busy bit before giving up.
const SPIN_LIMIT: u32 = 100_000;

/// Why the controller could not be brought up. Logged by its `Display`,
/// not a derived `Debug`: the image then has no `Debug` machinery.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The driver was already handed out.
    Taken,
    /// `BYTE_TEST` never read back its fixed pattern: no chip, or the bus
    /// is not set up.
    NotResponding,
    /// `ID_REV` names a chip this driver does not know.
    UnknownChip(u32),
    /// A busy bit (reset, MAC CSR, MII) did not clear in time.
    Timeout,
}

/// Link state as read from the PHY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    pub full_duplex: bool,
    pub mbps_100: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Taken => f.write_str("already taken"),
            Error::NotResponding => f.write_str("not responding"),
            Error::UnknownChip(id) => write!(f, "unknown chip id {:08x}", id),
            Error::Timeout => f.write_str("timed out"),
        }
    }
}

/// Counters, for logging (by `Display`). Each wraps around at `u32::MAX`.
#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub rx_frames: u32,
    pub rx_errors: u32,
    pub tx_frames: u32,
    pub tx_errors: u32,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx {} frames, {} errors; tx {} frames, {} errors",
            self.rx_frames, self.rx_errors, self.tx_frames, self.tx_errors
        )
    }
}

/// The register window. See the module docs for why access is sound.
#[derive(Clone, Copy)]
struct Regs {
    base: usize,
}

impl Regs {
    #[inline(always)]
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base + offset` is a register of the NIC's MMIO window
        // (module docs); volatile because reads pop FIFOs.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    #[inline(always)]
    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn spin_until(self, mut done: impl FnMut(Regs) -> bool) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if done(self) {
                return Ok(());
            }
        }
        Err(Error::Timeout)
    }

    fn mac_read(self, index: u32) -> Result<u32, Error> {
        self.spin_until(|r| r.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0)?;
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        // The data sheet asks for a dummy read before polling the busy bit.
        let _ = self.read(reg::BYTE_TEST);
        self.spin_until(|r| r.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0)?;
        Ok(self.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(self, index: u32, value: u32) -> Result<(), Error> {
        self.spin_until(|r| r.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0)?;
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | index);
        let _ = self.read(reg::BYTE_TEST);
        self.spin_until(|r| r.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0)
    }

    fn mii_wait(self) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if self.mac_read(mac::MII_ACC)? & MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::Timeout)
    }

    fn phy_read(self, register: u32) -> Result<u16, Error> {
        self.mii_wait()?;
        self.mac_write(
            mac::MII_ACC,
            (phy_reg::ADDR << 11) | (register << 6) | MII_BUSY,
        )?;
        self.mii_wait()?;
        Ok(self.mac_read(mac::MII_DATA)? as u16)
    }

    fn phy_write(self, register: u32, value: u16) -> Result<(), Error> {
        self.mii_wait()?;
        self.mac_write(mac::MII_DATA, u32::from(value))?;
        self.mac_write(
            mac::MII_ACC,
            (phy_reg::ADDR << 11) | (register << 6) | MII_WRITE | MII_BUSY,
        )?;
        self.mii_wait()
    }
}

/// Set by [`on_interrupt`], taken by [`Lan9118::service`].
static IRQ_PENDING: AtomicBool = AtomicBool::new(false);
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Interrupt-handler half of the driver: masks the chip's interrupt output
/// (so the level-triggered line drops) and notes that the main loop has work.
/// [`Lan9118::service`] acknowledges the causes and unmasks again.
pub fn on_interrupt() {
    Regs { base: BASE }.write(reg::INT_EN, 0);
    IRQ_PENDING.store(true, Ordering::Release);
}

/// Whether an interrupt arrived that [`Lan9118::service`] has not handled.
/// The main loop checks this with interrupts masked right before `wfi`.
pub fn interrupt_pending() -> bool {
    IRQ_PENDING.load(Ordering::Acquire)
}

/// cortex-m-rt's handler for every device interrupt without a handler of
/// its own (this crate has no device crate, so that is all of them). Only
/// the NIC's line is ever unmasked; it is passed on to [`on_interrupt`].
/// cortex-m-rt requires this handler to be declared `unsafe`; its body does
/// nothing unsafe.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == IRQ_NUMBER as i16 {
        on_interrupt();
    }
}

/// Interrupt number type for the NVIC.
#[derive(Clone, Copy)]
struct NicIrq;

// SAFETY: returns the AN385's valid external interrupt number for the NIC.
unsafe impl cortex_m::interrupt::InterruptNumber for NicIrq {
    fn number(self) -> u16 {
        IRQ_NUMBER
    }
}

/// Unmasks the NIC's interrupt in the NVIC. Call after [`Lan9118::take`]
/// succeeded, with the handler for [`IRQ_NUMBER`] calling [`on_interrupt`]
/// (the board routes it through cortex-m-rt's `DefaultHandler`).
pub fn enable_interrupt() {
    // SAFETY: unmasking can break a critical section that relies on this
    // line being masked; no code here does. The handler only stores to
    // INT_EN and an atomic flag.
    unsafe { cortex_m::peripheral::NVIC::unmask(NicIrq) }
}

/// The driver: owns the chip and one frame buffer each way.
pub struct Lan9118 {
    regs: Regs,
    mac_address: [u8; 6],
    rx_buf: [u8; BUF_LEN],
    tx_buf: [u8; BUF_LEN],
    tx_tag: u16,
    stats: Stats,
    chip_id: u32,
    /// The link state the PHY last reported.
    link_up: bool,
    /// The error counts last logged by [`Lan9118::check_link`].
    logged_errors: (u32, u32),
}

impl Lan9118 {
    /// Resets and configures the controller and starts its PHY's
    /// auto-negotiation. Uses the MAC address the chip loaded from its EEPROM
    /// (QEMU provides one), or `fallback_mac` if there is none.
    ///
    /// Returns the driver once; later calls give [`Error::Taken`].
    pub fn take(fallback_mac: [u8; 6]) -> Result<Self, Error> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(Error::Taken);
        }
        let regs = Regs { base: BASE };

        // The chip answers BYTE_TEST once its bus interface is ready.
        regs.spin_until(|r| r.read(reg::BYTE_TEST) == BYTE_TEST_VALUE)
            .map_err(|_| Error::NotResponding)?;
        let chip_id = regs.read(reg::ID_REV);
        match chip_id >> 16 {
            0x0118 | 0x9220 => {}
            _ => return Err(Error::UnknownChip(chip_id)),
        }

        regs.write(reg::HW_CFG, HW_CFG_SRST);
        regs.spin_until(|r| r.read(reg::HW_CFG) & HW_CFG_SRST == 0)?;
        regs.spin_until(|r| r.read(reg::PMT_CTRL) & PMT_CTRL_READY != 0)?;

        regs.write(reg::HW_CFG, HW_CFG_MBO | HW_CFG_TX_FIF_SZ_5K);
        regs.write(reg::AFC_CFG, AFC_CFG_DEFAULT);
        regs.write(reg::INT_EN, 0);
        regs.write(reg::INT_STS, u32::MAX);
        regs.write(reg::FIFO_INT, FIFO_INT_LEVELS);
        regs.write(reg::IRQ_CFG, IRQ_CFG_ENABLE_PUSHPULL_HIGH);
        regs.write(reg::RX_CFG, 0); // no offset, 4-byte end alignment
        regs.write(reg::TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);

        let mac_address = {
            let lo = regs.mac_read(mac::ADDRL)?.to_le_bytes();
            let hi = regs.mac_read(mac::ADDRH)?.to_le_bytes();
            let loaded = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]];
            let usable = loaded[0] & 1 == 0 && loaded != [0; 6];
            let address = if usable { loaded } else { fallback_mac };
            regs.mac_write(
                mac::ADDRL,
                u32::from_le_bytes([address[0], address[1], address[2], address[3]]),
            )?;
            regs.mac_write(
                mac::ADDRH,
                u32::from_le_bytes([address[4], address[5], 0, 0]),
            )?;
            address
        };

        // Advertise 10/100 half/full, interrupt on negotiation and link loss.
        regs.phy_write(phy_reg::ANAR, phy_reg::ANAR_ALL)?;
        regs.phy_write(
            phy_reg::INT_MASK,
            phy_reg::INT_AUTONEG_DONE | phy_reg::INT_LINK_DOWN,
        )?;
        regs.phy_write(
            phy_reg::BMCR,
            phy_reg::BMCR_ANENABLE | phy_reg::BMCR_ANRESTART,
        )?;

        // Unicast to us and broadcast only (no promiscuous mode). Duplex is
        // set once the PHY reports the negotiated mode, see `service`.
        regs.mac_write(mac::CR, mac::CR_TXEN | mac::CR_RXEN)?;
        regs.write(reg::INT_EN, INT_MASK);

        Ok(Lan9118 {
            regs,
            mac_address,
            rx_buf: [0; BUF_LEN],
            tx_buf: [0; BUF_LEN],
            tx_tag: 0,
            stats: Stats::default(),
            chip_id,
            link_up: false,
            logged_errors: (0, 0),
        })
    }

    pub fn mac_address(&self) -> [u8; 6] {
        self.mac_address
    }

    /// `ID_REV`: chip ID in the top half, revision in the bottom.
    pub fn chip_id(&self) -> u32 {
        self.chip_id
    }

    /// The free-running 25 MHz counter: different on every boot, for
    /// seeding smoltcp's sequence numbers and ports.
    pub fn entropy(&self) -> u32 {
        self.regs.read(reg::FREE_RUN)
    }

    /// Whether a received frame waits in the RX FIFO.
    pub fn rx_pending(&self) -> bool {
        (self.regs.read(reg::RX_FIFO_INF) >> 16) & 0xFF != 0
    }

    /// Handles what the interrupt reported: acknowledges the causes,
    /// re-reads the PHY after a link change (adjusting the MAC's duplex) and
    /// unmasks the interrupt again. Frames are left for `receive`. Returns
    /// the new link state after a link change.
    pub fn service(&mut self) -> Result<Option<Link>, Error> {
        if !IRQ_PENDING.swap(false, Ordering::AcqRel) {
            return Ok(None);
        }
        let status = self.regs.read(reg::INT_STS);
        // Acknowledge before draining, so a frame arriving from now on
        // raises the interrupt again.
        self.regs.write(reg::INT_STS, status);
        let link = if status & INT_PHY != 0 {
            Some(self.update_link()?)
        } else {
            None
        };
        self.regs.write(reg::INT_EN, INT_MASK);
        Ok(link)
    }

    /// The main loop's link query: runs [`Lan9118::service`], logs the
    /// negotiated mode after a link change and the counters when the error
    /// counts changed, and returns whether the link is up.
    pub fn check_link(&mut self) -> bool {
        match self.service() {
            Ok(Some(link)) => {
                self.link_up = link.up;
                if link.up {
                    let mbps = if link.mbps_100 { 100 } else { 10 };
                    let duplex = if link.full_duplex { "full" } else { "half" };
                    multiserve_board::info!("LAN9118: {} Mbit/s {} duplex", mbps, duplex);
                }
            }
            Ok(None) => {}
            Err(e) => multiserve_board::warn!("LAN9118: {}", e),
        }
        let errors = (self.stats.rx_errors, self.stats.tx_errors);
        if errors != self.logged_errors {
            self.logged_errors = errors;
            multiserve_board::warn!("LAN9118: {}", self.stats);
        }
        self.link_up
    }

    fn update_link(&mut self) -> Result<Link, Error> {
        let regs = self.regs;
        // Reading the source register clears the PHY interrupt.
        let _ = regs.phy_read(phy_reg::INT_SRC)?;
        // BMSR's link bit latches low: the second read is the current state.
        let _ = regs.phy_read(phy_reg::BMSR)?;
        let up = regs.phy_read(phy_reg::BMSR)? & phy_reg::BMSR_LINK != 0;
        let common = regs.phy_read(phy_reg::ANAR)? & regs.phy_read(phy_reg::ANLPAR)?;
        let mbps_100 = common & (phy_reg::AN_100FULL | phy_reg::AN_100HALF) != 0;
        let full_duplex = if mbps_100 {
            common & phy_reg::AN_100FULL != 0
        } else {
            common & phy_reg::AN_10FULL != 0
        };
        let cr = regs.mac_read(mac::CR)?;
        let wanted = if full_duplex {
            cr | mac::CR_FDPX
        } else {
            cr & !mac::CR_FDPX
        };
        if wanted != cr {
            regs.mac_write(mac::CR, wanted)?;
        }
        Ok(Link {
            up,
            full_duplex,
            mbps_100,
        })
    }

    /// Drops everything in the RX FIFOs (used when they disagree).
    fn rx_dump(&mut self) {
        self.regs.write(reg::RX_CFG, RX_CFG_DUMP);
        let _ = self
            .regs
            .spin_until(|r| r.read(reg::RX_CFG) & RX_CFG_DUMP == 0);
        self.stats.rx_errors = self.stats.rx_errors.wrapping_add(1);
    }

    /// Pops the next good frame (without FCS) into `rx_buf`; returns its
    /// length. Bad or oversized frames are discarded and counted.
    fn pop_frame(&mut self) -> Option<usize> {
        // Each pass pops one status word, so this ends.
        loop {
            let info = self.regs.read(reg::RX_FIFO_INF);
            if (info >> 16) & 0xFF == 0 {
                return None;
            }
            let data_bytes = (info & 0xFFFF) as usize;
            let status = self.regs.read(reg::RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3FFF) as usize; // includes the FCS
            let words = len.div_ceil(4);
            if data_bytes < words * 4 {
                // Status and data FIFO out of step: start afresh.
                self.rx_dump();
                return None;
            }
            if status & RX_STS_ERROR != 0 || len < 14 + 4 || words * 4 > BUF_LEN {
                for _ in 0..words {
                    let _ = self.regs.read(reg::RX_DATA_FIFO);
                }
                self.stats.rx_errors = self.stats.rx_errors.wrapping_add(1);
                continue;
            }
            for chunk in self.rx_buf[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&self.regs.read(reg::RX_DATA_FIFO).to_le_bytes());
            }
            self.stats.rx_frames = self.stats.rx_frames.wrapping_add(1);
            return Some(len - 4);
        }
    }

    /// Drains the TX status FIFO, counting failed transmissions.
    fn reap_tx_status(&mut self) {
        let used = (self.regs.read(reg::TX_FIFO_INF) >> 16) & 0xFF;
        for _ in 0..used {
            if self.regs.read(reg::TX_STATUS_FIFO) & TX_STS_ERROR != 0 {
                self.stats.tx_errors = self.stats.tx_errors.wrapping_add(1);
            }
        }
    }

    /// Whether the TX data FIFO has room for a full frame plus command words.
    fn tx_space(&self) -> bool {
        (self.regs.read(reg::TX_FIFO_INF) & 0xFFFF) as usize >= BUF_LEN + 8
    }
}

pub struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u8; BUF_LEN],
    tag: &'a mut u16,
    stats: &'a mut Stats,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp never asks for more than the MTU we report (MAX_FRAME).
        let len = len.min(MAX_FRAME);
        let frame = &mut self.buf[..len];
        let result = f(frame);
        *self.tag = self.tag.wrapping_add(1);
        let regs = self.regs;
        regs.write(
            reg::TX_DATA_FIFO,
            TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32,
        );
        regs.write(reg::TX_DATA_FIFO, (u32::from(*self.tag) << 16) | len as u32);
        for chunk in frame.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            regs.write(reg::TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        self.stats.tx_frames = self.stats.tx_frames.wrapping_add(1);
        result
    }
}

impl Device for Lan9118 {
    type RxToken<'a> = RxFrame<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxFrame<'_>, TxToken<'_>)> {
        // The reply token must be able to send, so only take a frame off
        // the FIFO when the TX FIFO has room for a full one (it drains at
        // wire speed; until then the frame waits in the chip).
        self.reap_tx_status();
        if !self.tx_space() {
            return None;
        }
        let len = self.pop_frame()?;
        let Lan9118 {
            regs,
            rx_buf,
            tx_buf,
            tx_tag,
            stats,
            ..
        } = self;
        Some((
            RxFrame(&rx_buf[..len]),
            TxToken {
                regs: *regs,
                buf: tx_buf,
                tag: tx_tag,
                stats,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        self.reap_tx_status();
        if !self.tx_space() {
            return None;
        }
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.tx_buf,
            tag: &mut self.tx_tag,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(MAX_BURST);
        caps
    }
}
