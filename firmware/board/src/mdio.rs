//! Finding a PHY on an MDIO bus: every address, 0 to 31, read again and
//! again until the wanted identifier answers or a time limit passes.
//!
//! A PHY whose address straps latched wrongly at reset answers at another
//! address than the board's; one that is still in reset answers nowhere
//! yet (the bus reads all ones). A single read at one address turns both
//! into a failed start; [`find_phy`] does not.

use core::fmt;

use smoltcp::time::{Duration, Instant};

/// How long [`find_phy`] looks for the PHY: 1 s.
pub const PHY_SCAN_TIME: Duration = Duration::from_secs(1);
/// MDIO addresses: 0 to 31.
pub const MDIO_ADDRESSES: u8 = 32;
/// PHY identifier 1 (IEEE 802.3 register 2).
pub const PHY_ID1: u8 = 2;
/// PHY identifier 2 (IEEE 802.3 register 3).
pub const PHY_ID2: u8 = 3;

/// A PHY's identifier registers 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhyId {
    /// Register 2.
    pub id1: u16,
    /// Register 3.
    pub id2: u16,
}

impl PhyId {
    /// Whether nothing answered: an idle bus reads all ones (or, shorted,
    /// all zeros).
    pub fn is_blank(self) -> bool {
        matches!((self.id1, self.id2), (0xffff, 0xffff) | (0, 0))
    }
}

impl fmt::Display for PhyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.id1, self.id2)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PhyId {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u16:04x}:{=u16:04x}", self.id1, self.id2)
    }
}

/// Where the wanted PHY answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Its MDIO address.
    pub address: u8,
    /// Its identifier.
    pub id: PhyId,
}

/// No wanted PHY within [`PHY_SCAN_TIME`]: what the bus showed instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotFound {
    /// Rounds over all 32 addresses.
    pub rounds: u32,
    /// The last address that answered with another identifier, if any.
    pub other: Option<Found>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no PHY found at MDIO addresses 0-31 in {} ms ({} rounds)",
            PHY_SCAN_TIME.total_millis(),
            self.rounds
        )?;
        match self.other {
            Some(other) => write!(f, "; address {} has ID {}", other.address, other.id),
            None => write!(f, ": nothing answers on the MDIO bus"),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for NotFound {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "no PHY found at MDIO addresses 0-31 in {=u64} ms ({=u32} rounds)",
            PHY_SCAN_TIME.total_millis(),
            self.rounds
        );
        match self.other {
            Some(other) => defmt::write!(f, "; address {=u8} has ID {}", other.address, other.id),
            None => defmt::write!(f, ": nothing answers on the MDIO bus"),
        }
    }
}

/// Reads registers 2 and 3 at every MDIO address in turn (`read(address,
/// register)`), round after round, until `wanted` accepts an identifier or
/// [`PHY_SCAN_TIME`] has passed by `now`; calls `pause` between rounds.
/// The first round starts at address 0, so a PHY at its strapped address
/// is found with two reads.
pub fn find_phy(
    mut read: impl FnMut(u8, u8) -> u16,
    wanted: impl Fn(PhyId) -> bool,
    mut now: impl FnMut() -> Instant,
    mut pause: impl FnMut(),
) -> Result<Found, NotFound> {
    let start = now();
    let mut not_found = NotFound {
        rounds: 0,
        other: None,
    };
    loop {
        for address in 0..MDIO_ADDRESSES {
            let id = PhyId {
                id1: read(address, PHY_ID1),
                id2: read(address, PHY_ID2),
            };
            if wanted(id) {
                return Ok(Found { address, id });
            }
            if !id.is_blank() {
                not_found.other = Some(Found { address, id });
            }
        }
        not_found.rounds = not_found.rounds.saturating_add(1);
        if now() - start >= PHY_SCAN_TIME {
            return Err(not_found);
        }
        pause();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    const ID: PhyId = PhyId {
        id1: 0x0007,
        id2: 0xc131,
    };

    fn is_ours(id: PhyId) -> bool {
        id == ID
    }

    /// A bus with the PHY at `address`, answering from round `from` on
    /// (counted in reads of address 0); 10 ms per round.
    fn run(address: u8, from: u32) -> (Result<Found, NotFound>, u32) {
        let rounds = Cell::new(0u32);
        let millis = Cell::new(0i64);
        let read = |a: u8, register: u8| {
            if a == 0 && register == PHY_ID1 {
                rounds.set(rounds.get() + 1);
            }
            match (a == address && rounds.get() > from, register) {
                (true, PHY_ID1) => ID.id1,
                (true, _) => ID.id2,
                (false, _) => 0xffff,
            }
        };
        let result = find_phy(
            read,
            is_ours,
            || Instant::from_millis(millis.get()),
            || millis.set(millis.get() + 10),
        );
        (result, rounds.get())
    }

    #[test]
    fn finds_the_phy_at_its_strapped_address_at_once() {
        assert_eq!(run(0, 0), (Ok(Found { address: 0, id: ID }), 1));
    }

    #[test]
    fn finds_a_phy_whose_straps_latched_another_address() {
        assert_eq!(
            run(17, 0),
            (
                Ok(Found {
                    address: 17,
                    id: ID
                }),
                1
            )
        );
    }

    #[test]
    fn waits_for_a_phy_that_answers_late() {
        assert_eq!(run(0, 40), (Ok(Found { address: 0, id: ID }), 41));
    }

    #[test]
    fn gives_up_after_the_scan_time() {
        let (result, rounds) = run(0, u32::MAX);
        // Rounds at 0, 10, ..., 1000 ms: the last one at the limit.
        assert_eq!(rounds, 101);
        assert_eq!(
            result,
            Err(NotFound {
                rounds: 101,
                other: None
            })
        );
    }

    #[test]
    fn names_another_phy_it_saw() {
        let other = PhyId { id1: 1, id2: 2 };
        let seconds = Cell::new(0i64);
        let result = find_phy(
            |a, r| match (a, r) {
                (5, PHY_ID1) => other.id1,
                (5, _) => other.id2,
                _ => 0xffff,
            },
            is_ours,
            // One second per reading of the clock: one round only.
            || {
                seconds.set(seconds.get() + 1);
                Instant::from_secs(seconds.get())
            },
            || {},
        );
        let not_found = NotFound {
            rounds: 1,
            other: Some(Found {
                address: 5,
                id: other,
            }),
        };
        assert_eq!(result, Err(not_found));
        assert_eq!(
            not_found.to_string(),
            "no PHY found at MDIO addresses 0-31 in 1000 ms (1 rounds); address 5 has ID 0001:0002"
        );
    }
}
