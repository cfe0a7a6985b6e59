//! `log` output and panics on the `virt` machine's NS16550A UART.
//!
//! Every record becomes one line on the UART at 0x1000_0000 (QEMU's
//! `-serial stdio` prints it on its stdout), as
//! [`multiserve_board::RecordLine`] formats it. QEMU's UART needs no set-up
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

use log::{Level, LevelFilter, Log, Metadata, Record};

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

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // virtio-drivers logs its feature negotiation at info level.
        let limit = if metadata.target().starts_with("virtio_drivers") {
            Level::Warn
        } else {
            Level::Trace
        };
        metadata.level() <= log::max_level() && metadata.level() <= limit
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(Uart, "{}", multiserve_board::RecordLine(record));
        }
    }

    fn flush(&self) {}
}

/// Installs the logger with the given maximum level.
pub fn init(level: LevelFilter) {
    // Fails only if a logger is already installed, which then keeps logging.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let _ = writeln!(Uart, "{}", multiserve_board::PanicLine(info));
    machine::exit_failure()
}
