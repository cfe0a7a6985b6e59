//! Faults injected only when asked for: smoltcp's `FaultInjector` copies
//! every frame it receives and clears a frame-sized buffer for every frame
//! sent, even at 0 %, which costs rr about 4 % (BENCHMARKS.md). So the
//! stack holds it only when `--drop-chance` or `--corrupt-chance` is set,
//! and otherwise passes frames straight through.

use smoltcp::phy::{self, Device, DeviceCapabilities, FaultInjector};
use smoltcp::time::Instant;

/// `D` itself, or `D` behind smoltcp's [`FaultInjector`].
pub enum Faults<D: Device> {
    /// No faults: every frame passes as it is.
    Off(D),
    /// Frames dropped and corrupted at the injector's chances.
    On(Box<FaultInjector<D>>),
}

impl<D: Device> Faults<D> {
    /// `inner` behind a fault injector with these chances (percent), or
    /// `inner` alone when both are 0.
    pub fn new(inner: D, drop_pct: u8, corrupt_pct: u8, seed: u32) -> Self {
        if drop_pct == 0 && corrupt_pct == 0 {
            return Faults::Off(inner);
        }
        let mut injector = FaultInjector::new(inner, seed);
        injector.set_drop_chance(drop_pct);
        injector.set_corrupt_chance(corrupt_pct);
        Faults::On(Box::new(injector))
    }
}

/// A token of either side.
pub enum Either<A, B> {
    Off(A),
    On(B),
}

impl<A: phy::RxToken, B: phy::RxToken> phy::RxToken for Either<A, B> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        match self {
            Either::Off(t) => t.consume(f),
            Either::On(t) => t.consume(f),
        }
    }

    fn meta(&self) -> phy::PacketMeta {
        match self {
            Either::Off(t) => t.meta(),
            Either::On(t) => t.meta(),
        }
    }
}

impl<A: phy::TxToken, B: phy::TxToken> phy::TxToken for Either<A, B> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        match self {
            Either::Off(t) => t.consume(len, f),
            Either::On(t) => t.consume(len, f),
        }
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        match self {
            Either::Off(t) => t.set_meta(meta),
            Either::On(t) => t.set_meta(meta),
        }
    }
}

type OnRx<'a, D> = <FaultInjector<D> as Device>::RxToken<'a>;
type OnTx<'a, D> = <FaultInjector<D> as Device>::TxToken<'a>;

impl<D: Device> Device for Faults<D> {
    type RxToken<'a>
        = Either<D::RxToken<'a>, OnRx<'a, D>>
    where
        Self: 'a;
    type TxToken<'a>
        = Either<D::TxToken<'a>, OnTx<'a, D>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        match self {
            Faults::Off(d) => d
                .receive(now)
                .map(|(rx, tx)| (Either::Off(rx), Either::Off(tx))),
            Faults::On(d) => d
                .receive(now)
                .map(|(rx, tx)| (Either::On(rx), Either::On(tx))),
        }
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        match self {
            Faults::Off(d) => d.transmit(now).map(Either::Off),
            Faults::On(d) => d.transmit(now).map(Either::On),
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        match self {
            Faults::Off(d) => d.capabilities(),
            Faults::On(d) => d.capabilities(),
        }
    }
}
