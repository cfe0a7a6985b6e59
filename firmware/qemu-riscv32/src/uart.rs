//! `log` output and panics on the `virt` machine's NS16550A UART.
//!
//! Every record becomes one line on the UART at 0x1000_0000 (QEMU's
//! `-serial stdio` prints it on its stdout), through the board layer's
//! [`Console`]. QEMU's UART needs no set-up
//! (no baud rate, no FIFO configuration); a byte is written once the
//! transmit holding register is empty.
//!
//! A panic prints `panic: <location>: <message>` and ends the emulation
//! with exit status 1, so QEMU exits instead of hanging.
//!
//! # `unsafe`
//!
//! Only [`Uart::put`] touches the hardware: the UART's transmit holding
//! register (offset 0) and line status register (offset 5), one byte each,
//! at the fixed address of the `virt` machine's UART. The program runs on
//! one hart with no interrupt handlers, so only one write is ever under way.

use core::fmt::{self, Write};
use core::panic::PanicInfo;

use log::LevelFilter;
use multiserve_board::Console;

use crate::machine;

const UART: usize = 0x1000_0000;
const THR: usize = UART;
const LSR: usize = UART + 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Writes bytes to the UART.
struct Uart;

impl Uart {
    fn put(&mut self, byte: u8) {
        // SAFETY: THR and LSR are byte registers of the UART (module docs).
        unsafe {
            while core::ptr::read_volatile(LSR as *const u8) & LSR_THR_EMPTY == 0 {}
            core::ptr::write_volatile(THR as *mut u8, byte);
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            self.put(byte);
        }
        Ok(())
    }
}

/// The log, with virtio-drivers' records below warnings left out (it logs
/// its feature negotiation at info level).
static CONSOLE: Console = Console::new(print).quiet("virtio_drivers");

/// Prints one line on the UART.
fn print(line: fmt::Arguments<'_>) {
    let _ = writeln!(Uart, "{}", line);
}

/// Installs the logger with the given maximum level.
pub fn init(level: LevelFilter) {
    multiserve_board::output::init(&CONSOLE, level);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    CONSOLE.panic(info, machine::exit_failure)
}
