//! Why a [`Server`](crate::Server) could not be made.

use core::fmt;

/// Why a [`Server`](crate::Server) could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The configured port is 0.
    PortZero,
    /// The capacity is 0, or capacity and spare sockets do not fit the
    /// pool.
    PoolTooSmall {
        /// The configured capacity (`None`: the default).
        clients: Option<usize>,
        /// The configured spare sockets (`None`: the default).
        spare: Option<usize>,
        /// The pool size: the storage's entries.
        pool: usize,
    },
    /// The pool yields more or fewer sockets than the storage has entries
    /// ([`Resources`](crate::Resources)).
    PoolMismatch {
        /// The sockets the pool yielded (or, when more, the entries + 1).
        sockets: usize,
        /// The storage's entries.
        storage: usize,
    },
    /// A buffer is smaller than the service needs.
    BufferTooSmall {
        /// Which buffer.
        buffer: Buffer,
        /// The smallest size that works, in bytes.
        needed: usize,
        /// The size given, in bytes.
        got: usize,
    },
    /// The socket set did not add the pool's sockets in order (it had free
    /// entries in the middle), so the first listening socket in the set
    /// would not be the first in the pool. Give the server a set whose
    /// free entries are all at its end.
    SocketOrder,
}

/// A buffer named by [`Error::BufferTooSmall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Buffer {
    /// [`Resources::input`](crate::Resources::input).
    Input,
    /// [`Resources::output`](crate::Resources::output).
    Output,
    /// The receive buffer of pool socket `n`.
    Receive(usize),
    /// The transmit buffer of pool socket `n`.
    Transmit(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PortZero => f.write_str("the service port must not be 0"),
            Error::PoolTooSmall {
                clients,
                spare,
                pool,
            } => {
                let show = |v: &Option<usize>| match v {
                    Some(n) => Count::Given(*n),
                    None => Count::Default,
                };
                write!(
                    f,
                    "{} clients and {} spare sockets do not fit a pool of {pool} \
                     (at least 1 client; clients + spare at most {pool})",
                    show(clients),
                    show(spare)
                )
            }
            Error::PoolMismatch { sockets, storage } => {
                write!(f, "{sockets} pool sockets for {storage} storage entries")
            }
            Error::BufferTooSmall {
                buffer,
                needed,
                got,
            } => {
                let name = match buffer {
                    Buffer::Input => "input scratch buffer",
                    Buffer::Output => "output scratch buffer",
                    Buffer::Receive(_) => "receive buffer of pool socket",
                    Buffer::Transmit(_) => "transmit buffer of pool socket",
                };
                match buffer {
                    Buffer::Receive(n) | Buffer::Transmit(n) => {
                        write!(f, "{name} {n} is {got} bytes; it needs at least {needed}")
                    }
                    _ => write!(f, "{name} is {got} bytes; it needs at least {needed}"),
                }
            }
            Error::SocketOrder => f.write_str(
                "the socket set did not add the pool's sockets in order; give the server a \
                 set with no free entries before its end",
            ),
        }
    }
}

impl core::error::Error for Error {}

/// A count in an error message: given, or the default.
enum Count {
    Given(usize),
    Default,
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Given(n) => fmt::Display::fmt(n, f),
            Count::Default => f.write_str("(default)"),
        }
    }
}

pub(crate) fn check(buffer: Buffer, needed: usize, got: usize) -> Result<(), Error> {
    if got < needed {
        Err(Error::BufferTooSmall {
            buffer,
            needed,
            got,
        })
    } else {
        Ok(())
    }
}
