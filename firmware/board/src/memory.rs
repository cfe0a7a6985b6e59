//! The static memory a board's server runs in.
//!
//! All socket buffers and both scratch buffers are one `static` of zeros,
//! so they land in `.bss` and cost no flash. The socket set's entries are a
//! second `static`: an empty entry is not all zeros, and would pull the
//! buffers into `.data`.
//!
//! Per pool socket (client or spare, all alike): [`SOCKET_RX`] +
//! [`SOCKET_TX`] bytes of buffers, one socket-set entry and one server
//! slot. Shared: the input and output scratch buffers, sized by the
//! service's windows for [`MAX_LINE`].

use multiserve::{Resources, Reverse};
use smoltcp::iface::SocketStorage;
use smoltcp::socket::tcp;
use static_cell::ConstStaticCell;

use crate::{FRAMING, MAX_LINE, POOL, SOCKET_RX, SOCKET_TX};

/// Input scratch: what the service needs to see at once (a line and its
/// `\r\n`).
pub const INPUT: usize = Reverse::input_window_for(FRAMING, MAX_LINE);
/// Output scratch: the longest answer the service writes at once.
pub const OUTPUT: usize = Reverse::output_window_for(FRAMING, MAX_LINE);
/// Socket-set entries: the pool and DHCP.
pub const SOCKETS: usize = POOL + 1;

struct SocketBuffers {
    rx: [u8; SOCKET_RX],
    tx: [u8; SOCKET_TX],
}

/// Every buffer of the server.
struct Buffers {
    pool: [SocketBuffers; POOL],
    input: [u8; INPUT],
    output: [u8; OUTPUT],
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    pool: [const {
        SocketBuffers {
            rx: [0; SOCKET_RX],
            tx: [0; SOCKET_TX],
        }
    }; POOL],
    input: [0; INPUT],
    output: [0; OUTPUT],
});

static SOCKET_STORAGE: ConstStaticCell<[SocketStorage<'static>; SOCKETS]> =
    ConstStaticCell::new([SocketStorage::EMPTY; SOCKETS]);

/// The server's memory, handed out once.
pub struct Memory {
    /// The socket set's entries.
    pub sockets: &'static mut [SocketStorage<'static>; SOCKETS],
    /// The server's sockets and scratch buffers.
    pub resources: Resources<'static, POOL>,
}

impl Memory {
    /// The memory, the first time; `None` after that.
    pub fn take() -> Option<Memory> {
        let buffers = BUFFERS.try_take()?;
        let sockets = SOCKET_STORAGE.try_take()?;
        let resources = Resources {
            pool: buffers.pool.each_mut().map(|b| {
                tcp::Socket::new(
                    tcp::SocketBuffer::new(&mut b.rx[..]),
                    tcp::SocketBuffer::new(&mut b.tx[..]),
                )
            }),
            input: &mut buffers.input,
            output: &mut buffers.output,
        };
        Some(Memory { sockets, resources })
    }
}
