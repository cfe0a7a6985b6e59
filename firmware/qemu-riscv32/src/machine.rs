//! The parts of QEMU's `virt` machine the board uses besides its NIC: the
//! CLINT's `mtime` as the clock, its `mtimecmp` and the PLIC to end a
//! `wfi`, and the SiFive test device to end the emulation.
//!
//! # Sleeping without a trap handler
//!
//! [`sleep`] runs with interrupts globally off (`mstatus.MIE` stays 0, as
//! riscv-rt leaves it) and only *enables* the machine timer and external
//! interrupts in `mie`. A `wfi` ends as soon as an enabled interrupt is
//! pending, whether or not interrupts are globally on, so nothing traps:
//! the loop arms `mtimecmp` at the deadline, lets the PLIC route the NIC's
//! interrupt line to this hart, and after each `wfi` claims and completes
//! the PLIC's interrupt itself. An interrupt raised between the last check
//! and the `wfi` stays pending, so the `wfi` returns at once instead of
//! missing it, as on the Cortex-M boards.
//!
//! # `unsafe`
//!
//! Every MMIO access goes through [`read`] and [`write`], at fixed
//! addresses of the `virt` machine's memory map (QEMU's `hw/riscv/virt.c`):
//! the CLINT at 0x0200_0000, the PLIC at 0x0C00_0000, the test device at
//! 0x0010_0000. These regions exist on every `virt` machine, nothing else
//! in the program maps or aliases them, and the program runs on one hart
//! with no interrupt handlers, so no access races another.

use smoltcp::time::Instant;

/// `mtime` counts at 10 MHz on `virt`.
const MTIME_HZ: u64 = 10_000_000;
const CLINT_MTIMECMP0: usize = 0x0200_4000;
const CLINT_MTIME: usize = 0x0200_BFF8;
const PLIC: usize = 0x0C00_0000;
/// Hart 0's machine-mode context on `virt`'s PLIC.
const PLIC_CONTEXT: usize = 0;
const PLIC_ENABLE: usize = PLIC + 0x2000 + 0x80 * PLIC_CONTEXT;
const PLIC_THRESHOLD: usize = PLIC + 0x20_0000 + 0x1000 * PLIC_CONTEXT;
const PLIC_CLAIM: usize = PLIC_THRESHOLD + 4;
/// QEMU's `sifive,test1` device: writing `FAIL | code << 16` ends QEMU
/// with exit status `code`.
const TEST_DEVICE: usize = 0x0010_0000;
const TEST_FAIL: u32 = 0x3333;

fn read(address: usize) -> u32 {
    // SAFETY: `address` is a 4-byte aligned register of the CLINT or PLIC
    // (module docs); volatile, as the device changes it.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

fn write(address: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

/// `mtime`, read as two halves: high, low, high again until the high half
/// did not change in between.
fn mtime() -> u64 {
    loop {
        let high = read(CLINT_MTIME + 4);
        let low = read(CLINT_MTIME);
        if read(CLINT_MTIME + 4) == high {
            return u64::from(high) << 32 | u64::from(low);
        }
    }
}

/// Time since the machine started, in microseconds (`mtime` / 10).
pub fn now() -> Instant {
    Instant::from_micros((mtime() / (MTIME_HZ / 1_000_000)) as i64)
}

/// `mtime` itself, as a little entropy where no better source exists.
pub fn ticks() -> u64 {
    mtime()
}

/// Arms the timer interrupt at `deadline`, or disarms it. `mtimecmp` is
/// written high half first (all ones), so that the half-written value never
/// lies in the past.
fn arm_timer(deadline: Option<Instant>) {
    let at = match deadline {
        Some(at) => (at.total_micros().max(0) as u64).saturating_mul(MTIME_HZ / 1_000_000),
        None => u64::MAX,
    };
    write(CLINT_MTIMECMP0 + 4, u32::MAX);
    write(CLINT_MTIMECMP0, at as u32);
    write(CLINT_MTIMECMP0 + 4, (at >> 32) as u32);
}

/// Routes interrupt source `irq` (1..=31) of the PLIC to this hart and
/// enables the machine timer and external interrupts in `mie` (not
/// globally: see the module docs).
pub fn enable_wakeups(irq: u32) {
    arm_timer(None);
    write(PLIC + 4 * irq as usize, 1); // priority 1: above the threshold
    write(PLIC_ENABLE, read(PLIC_ENABLE) | 1 << irq);
    write(PLIC_THRESHOLD, 0);
    // SAFETY: enabling interrupts in `mie` only makes them end a `wfi`;
    // with `mstatus.MIE` clear they never trap.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::register::mie::set_mext();
    }
}

/// Sleeps (`wfi`) until `deadline` or until `work()` is true; `None` waits
/// for `work()` alone. `work` also acknowledges the NIC's interrupt, so it
/// runs between the PLIC's claim and completion.
pub fn sleep(deadline: Option<Instant>, mut work: impl FnMut() -> bool) {
    loop {
        let claimed = read(PLIC_CLAIM);
        let ready = deadline.is_some_and(|at| now() >= at) || work();
        if claimed != 0 {
            write(PLIC_CLAIM, claimed);
        }
        if ready {
            return;
        }
        arm_timer(deadline);
        riscv::asm::wfi();
    }
}

/// Ends the emulation with exit status 1.
pub fn exit_failure() -> ! {
    write(TEST_DEVICE, TEST_FAIL | 1 << 16);
    // Not under QEMU: nothing to end, stay here.
    loop {
        riscv::asm::wfi();
    }
}
