//! The device part of the vector table: the AN385's 32 external
//! interrupts (QEMU's `mps2-an385` gives its NVIC 32 lines too), every one
//! to cortex-m-rt's `DefaultHandler` ([`crate::lan9118`]'s).
//!
//! Without a device crate, cortex-m-rt fills in the table for the most
//! interrupts an ARMv7-M core can have, 240 (960 bytes of flash); with its
//! `device` feature the table is this crate's, as a device crate
//! (svd2rust's) would give it, and 208 vectors (832 bytes) shorter. The
//! linker script then includes a `device.x` of the board's, here one with
//! no handler names (nothing else is named in the table).

/// One entry of the table: a handler.
#[repr(transparent)]
pub struct Vector {
    _handler: unsafe extern "C" fn(),
}

extern "C" {
    /// cortex-m-rt's handler for device interrupts, which the board
    /// defines with `#[exception]`.
    fn DefaultHandler();
}

/// External interrupts on the AN385 (its NVIC's lines; the LAN9118 is 13).
const INTERRUPTS: usize = 32;

/// The table cortex-m-rt places right after the core's 16 exception
/// vectors.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
pub static __INTERRUPTS: [Vector; INTERRUPTS] = [const {
    Vector {
        _handler: DefaultHandler,
    }
}; INTERRUPTS];
