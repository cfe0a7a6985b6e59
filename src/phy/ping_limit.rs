//! A bound on how fast the device answers ping.

use smoltcp::phy::{self, Device, DeviceCapabilities, PacketMeta};
use smoltcp::time::Instant;

/// A device whose received ICMP echo requests (IPv4 and IPv6) are limited
/// to `rate` per second, with bursts of up to `burst`.
///
/// smoltcp answers every ICMP echo request it receives (feature
/// `auto-icmp-echo-reply`); a flood of pings would make the device spend
/// its time and its link on replies. [`PingLimiter`] wraps a
/// [`Device`] and lets echo requests through at a bounded rate (a token
/// bucket); the others are dropped before the stack sees them. Every other
/// frame passes untouched, without a copy.
#[derive(Debug)]
pub struct PingLimiter<D> {
    inner: D,
    bucket: Bucket,
}

/// Millionths of a token in one token: at a rate of `r` tokens per second,
/// one microsecond (the clock's resolution) adds exactly `r` millionths,
/// so no elapsed time is ever rounded away.
const WHOLE: u64 = 1_000_000;

/// A token bucket; tokens are counted in millionths ([`WHOLE`]).
#[derive(Debug)]
struct Bucket {
    /// Requests let through per second.
    rate: u32,
    /// The most tokens the bucket holds, in millionths.
    capacity: u64,
    /// Tokens now, in millionths.
    tokens: u64,
    /// The time up to which `tokens` has been refilled.
    updated: Option<Instant>,
    /// Echo requests dropped so far.
    dropped: u64,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= WHOLE {
            self.tokens -= WHOLE;
            true
        } else {
            self.dropped = self.dropped.saturating_add(1);
            false
        }
    }

    /// Add the tokens earned since the last refill: `rate` millionths per
    /// microsecond. A clock that goes back earns nothing and moves nothing.
    fn refill(&mut self, now: Instant) {
        let then = match self.updated {
            Some(then) if now <= then => return,
            Some(then) => then,
            None => {
                self.updated = Some(now);
                return;
            }
        };
        let elapsed_us = (now - then).total_micros();
        let earned = elapsed_us.saturating_mul(u64::from(self.rate));
        self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
        self.updated = Some(now);
    }
}

impl<D: Device> PingLimiter<D> {
    /// Limit `inner`'s echo requests to `rate` per second, bursts of up to
    /// `burst` (at least 1).
    pub fn new(inner: D, rate: u32, burst: u32) -> Self {
        let capacity = u64::from(burst.max(1)) * WHOLE;
        PingLimiter {
            inner,
            bucket: Bucket {
                rate,
                capacity,
                tokens: capacity,
                updated: None,
                dropped: 0,
            },
        }
    }

    /// Echo requests dropped so far.
    pub fn dropped(&self) -> u64 {
        self.bucket.dropped
    }

    /// The wrapped device.
    pub fn get_ref(&self) -> &D {
        &self.inner
    }

    /// The wrapped device.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

/// Whether an Ethernet frame carries an ICMP (v4 or v6) echo request.
pub fn is_echo_request(frame: &[u8]) -> bool {
    let byte = |i: usize| frame.get(i).copied();
    match (byte(12), byte(13)) {
        // IPv4: protocol 1 (ICMP), type 8 after the header.
        (Some(0x08), Some(0x00)) => {
            let Some(first) = byte(14) else { return false };
            let header = usize::from(first & 0x0f) * 4;
            byte(14 + 9) == Some(1) && byte(14 + header) == Some(8)
        }
        // IPv6: next header 58 (ICMPv6), type 128 (no extension headers).
        (Some(0x86), Some(0xdd)) => byte(14 + 6) == Some(58) && byte(14 + 40) == Some(128),
        _ => false,
    }
}

#[doc(hidden)]
pub struct RxToken<'a, T> {
    inner: T,
    bucket: &'a mut Bucket,
    now: Instant,
}

impl<T: phy::RxToken> phy::RxToken for RxToken<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let RxToken { inner, bucket, now } = self;
        inner.consume(|frame| {
            if is_echo_request(frame) && !bucket.take(now) {
                // An empty frame: the stack drops it as truncated.
                f(&[])
            } else {
                f(frame)
            }
        })
    }

    fn meta(&self) -> PacketMeta {
        self.inner.meta()
    }
}

impl<D: Device> Device for PingLimiter<D> {
    type RxToken<'a>
        = RxToken<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.inner.receive(now)?;
        let rx = RxToken {
            inner: rx,
            bucket: &mut self.bucket,
            now,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ipv4_echo() -> [u8; 42] {
        let mut f = [0u8; 42];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 1;
        f[34] = 8;
        f
    }

    #[test]
    fn recognises_echo_requests_only() {
        let mut f = ipv4_echo();
        assert!(is_echo_request(&f));
        f[34] = 0; // echo reply
        assert!(!is_echo_request(&f));
        let mut v6 = [0u8; 60];
        v6[12] = 0x86;
        v6[13] = 0xdd;
        v6[20] = 58;
        v6[54] = 128;
        assert!(is_echo_request(&v6));
        assert!(!is_echo_request(&v6[..50]));
        assert!(!is_echo_request(&[]));
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut b = Bucket {
            rate: 10,
            capacity: 3 * WHOLE,
            tokens: 3 * WHOLE,
            updated: None,
            dropped: 0,
        };
        let t0 = Instant::from_millis(0);
        let passed = (0..10).filter(|_| b.take(t0)).count();
        assert_eq!(passed, 3);
        // 10 per second: one more after 100 ms.
        assert!(b.take(Instant::from_millis(100)));
        assert!(!b.take(Instant::from_millis(100)));
        assert_eq!(b.dropped, 8);
    }
}
