//! The board's Microchip LAN8742A PHY, as embassy-stm32's [`Phy`], over
//! the MAC's MDIO bus ([`StationManagement`]).
//!
//! - [`Lan8742a::probe`] looks for the PHY identifier (registers 2 and 3)
//!   before anything else, at every MDIO address for up to 1 s
//!   ([`multiserve_board::mdio::find_phy`]): the PHY shares the MCU's
//!   reset, and its address straps are known to latch wrongly after some
//!   resets, so it may answer late or at another address than 0. A dead
//!   or unwired MDIO bus reads as all ones (or zeros), and a basic-status
//!   register of all ones says "link up, negotiation done"; checking the
//!   identifier turns that into a clear error at start instead of a board
//!   that looks up and never answers.
//! - The PHY advertises 100BASE-TX full duplex only, and the link counts as
//!   up only once negotiation gave exactly that: embassy-stm32 0.6 sets the
//!   MAC to 100 Mbit/s full duplex and never changes it, so any other mode
//!   would be a link on which frames are garbled.
//! - Nothing here waits on a waker: the board asks [`Phy::poll_link`] at
//!   its own pace (the PHY's interrupt pin is not wired on this board).

use core::task::Context;

use embassy_stm32::eth::{Phy, StationManagement};
use multiserve_board::mdio::{find_phy, NotFound, PhyId};
use multiserve_board::systick;
use smoltcp::time::Duration;

/// Basic control register.
const BCR: u8 = 0;
/// Basic status register.
const BSR: u8 = 1;
/// Auto-negotiation advertisement register.
const ANAR: u8 = 4;
/// PHY special control/status register (LAN8742A).
const PSCSR: u8 = 31;

const BCR_RESET: u16 = 1 << 15;
const BCR_AUTONEG: u16 = 1 << 12;
const BCR_RESTART_AUTONEG: u16 = 1 << 9;
const BSR_LINK: u16 = 1 << 2;
const BSR_AUTONEG_DONE: u16 = 1 << 5;
/// IEEE 802.3 selector and 100BASE-TX full duplex, nothing else.
const ANAR_100_FULL: u16 = 0x0001 | 1 << 8;
/// PSCSR bits 4:2, the negotiated speed and duplex.
const PSCSR_SPEED_MASK: u16 = 0b111 << 2;
const PSCSR_100_FULL: u16 = 0b110 << 2;

/// The LAN8742A's identifier: OUI 00:80:0F, model 0x13; the low four bits
/// of `ID2` are the revision.
const LAN8742A_ID1: u16 = 0x0007;
const LAN8742A_ID2: u16 = 0xc130;
const ID2_REVISION_MASK: u16 = 0x000f;

/// How long a reset may take (the datasheet gives 500 ms at most after
/// power-up, far less after a software reset).
const RESET_TIMEOUT: Duration = Duration::from_millis(500);

/// How long to wait between two rounds of the scan for the PHY.
const SCAN_PAUSE: Duration = Duration::from_millis(10);

/// What the last link check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No link, or negotiation not finished.
    Down,
    /// 100BASE-TX full duplex: the MAC's mode.
    Full100,
    /// A link in another mode (the raw PSCSR speed bits); the MAC cannot
    /// use it.
    Other(u16),
}

impl defmt::Format for Mode {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Mode::Down => defmt::write!(f, "no link"),
            Mode::Full100 => defmt::write!(f, "100BASE-TX full duplex"),
            Mode::Other(bits) => {
                let mode = match bits >> 2 {
                    0b001 => "10BASE-T half duplex",
                    0b101 => "10BASE-T full duplex",
                    0b010 => "100BASE-TX half duplex",
                    _ => "an unknown mode",
                };
                defmt::write!(f, "{=str} (the MAC runs 100 Mbit/s full duplex only)", mode)
            }
        }
    }
}

/// The LAN8742A on an MDIO bus.
pub struct Lan8742a<S> {
    mdio: S,
    /// Its MDIO address (0 when the straps latched as designed).
    address: u8,
    revision: u16,
    mode: Mode,
}

impl<S: StationManagement> Lan8742a<S> {
    /// Looks for a LAN8742A on `mdio`, at any address, for up to 1 s.
    pub fn probe(mut mdio: S) -> Result<Self, NotFound> {
        let found = find_phy(
            |address, register| mdio.smi_read(address, register),
            |id: PhyId| id.id1 == LAN8742A_ID1 && id.id2 & !ID2_REVISION_MASK == LAN8742A_ID2,
            systick::now,
            || {
                let start = systick::now();
                while systick::now() - start < SCAN_PAUSE {}
            },
        )?;
        Ok(Lan8742a {
            mdio,
            address: found.address,
            revision: found.id.id2 & ID2_REVISION_MASK,
            mode: Mode::Down,
        })
    }

    /// Its MDIO address.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// The silicon revision (the low four bits of register 3).
    pub fn revision(&self) -> u16 {
        self.revision
    }

    /// What the last [`Phy::poll_link`] found.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl<S: StationManagement> Phy for Lan8742a<S> {
    fn phy_reset(&mut self) {
        self.mdio.smi_write(self.address, BCR, BCR_RESET);
        let start = systick::now();
        while self.mdio.smi_read(self.address, BCR) & BCR_RESET != 0 {
            if systick::now() - start > RESET_TIMEOUT {
                defmt::warn!(
                    "PHY reset did not finish in {=u64} ms",
                    RESET_TIMEOUT.millis()
                );
                return;
            }
        }
    }

    fn phy_init(&mut self) {
        self.mdio.smi_write(self.address, ANAR, ANAR_100_FULL);
        self.mdio
            .smi_write(self.address, BCR, BCR_AUTONEG | BCR_RESTART_AUTONEG);
    }

    /// Reads the link from the PHY (two MDIO reads, under 0.1 ms). The
    /// waker is not used: the board polls.
    fn poll_link(&mut self, _cx: &mut Context) -> bool {
        let bsr = self.mdio.smi_read(self.address, BSR);
        self.mode = if bsr & (BSR_LINK | BSR_AUTONEG_DONE) != BSR_LINK | BSR_AUTONEG_DONE {
            Mode::Down
        } else {
            match self.mdio.smi_read(self.address, PSCSR) & PSCSR_SPEED_MASK {
                PSCSR_100_FULL => Mode::Full100,
                other => Mode::Other(other),
            }
        };
        self.mode == Mode::Full100
    }
}
