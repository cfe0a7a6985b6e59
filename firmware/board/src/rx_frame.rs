//! The receive token of a driver that has a whole frame in a buffer.

use smoltcp::phy;

/// A received frame, borrowed from the driver's buffer until the stack has
/// read it: the receive token of a board's `phy::Device`.
pub struct RxFrame<'a>(pub &'a [u8]);

impl phy::RxToken for RxFrame<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}
