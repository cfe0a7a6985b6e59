//! The static memory a board's server runs in.
//!
//! All socket buffers and both scratch buffers are one `static` of zeros,
//! so they land in `.bss` and cost no flash. The socket set's entries and
//! the servers' slot storage are further `static`s, left uninitialised in
//! `.bss` and filled with empty entries when [`Memory::take`] hands them
//! out: an empty entry is not all zeros, so as a constant it would be in
//! `.data`, an image of 336 bytes per socket-set entry in flash.
//!
//! Per pool socket (client or spare, all alike): [`SOCKET_RX`] +
//! [`SOCKET_TX`] bytes of buffers, one socket-set entry and one server
//! slot ([`SlotStorage`]). Shared: the input and output scratch buffers, sized by the
//! service's windows for [`MAX_LINE`].
//!
//! With the feature `status`, the status server's memory too, in the same
//! two statics: [`STATUS_POOL`] sockets of [`STATUS_SOCKET_RX`] +
//! [`STATUS_SOCKET_TX`] bytes, their socket-set entries, and its own
//! scratch buffers ([`STATUS_INPUT`], [`STATUS_OUTPUT`]).

#[cfg(feature = "status")]
use multiserve::Status;
use multiserve::{Resources, Reverse, SlotStorage};
use smoltcp::iface::SocketStorage;
use smoltcp::socket::tcp;
use static_cell::{ConstStaticCell, StaticCell};

use crate::{FRAMING, MAX_LINE, POOL, SOCKET_RX, SOCKET_TX};
#[cfg(feature = "status")]
use crate::{STATUS_POOL, STATUS_ROWS, STATUS_SOCKET_RX, STATUS_SOCKET_TX};

/// Input scratch: what the service needs to see at once (a line and its
/// `\r\n`).
pub const INPUT: usize = Reverse::input_window_for(FRAMING, MAX_LINE);
/// Output scratch: the longest answer the service writes at once.
pub const OUTPUT: usize = Reverse::output_window_for(FRAMING, MAX_LINE);
/// The status server's input scratch (feature `status`): a request line.
#[cfg(feature = "status")]
pub const STATUS_INPUT: usize = 128;
/// The status server's output scratch (feature `status`): the rows it
/// writes at once.
#[cfg(feature = "status")]
pub const STATUS_OUTPUT: usize = 1024;
// The status service's minimums: a request line and its `\r\n` in the
// input scratch and the receive buffer, its longest record in the output
// scratch and the transmit buffer.
#[cfg(feature = "status")]
const _: () = assert!(
    STATUS_INPUT >= multiserve::MAX_STATUS_REQUEST + 2
        && STATUS_SOCKET_RX >= 128
        && STATUS_OUTPUT >= 1024
        && STATUS_SOCKET_TX >= STATUS_OUTPUT
);

/// Socket-set entries: the pool, DHCP, and the status pool with the
/// feature `status`.
#[cfg(not(feature = "status"))]
pub const SOCKETS: usize = POOL + 1;
/// Socket-set entries: the pool, DHCP, and the status pool with the
/// feature `status`.
#[cfg(feature = "status")]
pub const SOCKETS: usize = POOL + 1 + STATUS_POOL;

struct SocketBuffers<const RX: usize, const TX: usize> {
    rx: [u8; RX],
    tx: [u8; TX],
}

impl<const RX: usize, const TX: usize> SocketBuffers<RX, TX> {
    const ZERO: Self = SocketBuffers {
        rx: [0; RX],
        tx: [0; TX],
    };

    fn socket(&mut self) -> tcp::Socket<'_> {
        socket_over(&mut self.rx, &mut self.tx)
    }
}

/// A socket over the receive buffer `rx` and the transmit buffer `tx`:
/// one function for the pools of both servers, whose buffers differ in
/// size (flash).
#[inline(never)]
fn socket_over<'a>(rx: &'a mut [u8], tx: &'a mut [u8]) -> tcp::Socket<'a> {
    tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx))
}

/// Every buffer of the server.
struct Buffers {
    pool: [SocketBuffers<SOCKET_RX, SOCKET_TX>; POOL],
    input: [u8; INPUT],
    output: [u8; OUTPUT],
    #[cfg(feature = "status")]
    status_pool: [SocketBuffers<STATUS_SOCKET_RX, STATUS_SOCKET_TX>; STATUS_POOL],
    #[cfg(feature = "status")]
    status_input: [u8; STATUS_INPUT],
    #[cfg(feature = "status")]
    status_output: [u8; STATUS_OUTPUT],
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    pool: [SocketBuffers::ZERO; POOL],
    input: [0; INPUT],
    output: [0; OUTPUT],
    #[cfg(feature = "status")]
    status_pool: [SocketBuffers::ZERO; STATUS_POOL],
    #[cfg(feature = "status")]
    status_input: [0; STATUS_INPUT],
    #[cfg(feature = "status")]
    status_output: [0; STATUS_OUTPUT],
});

static SOCKET_STORAGE: StaticCell<[SocketStorage<'static>; SOCKETS]> = StaticCell::new();

static SLOT_STORAGE: StaticCell<[SlotStorage<Reverse>; POOL]> = StaticCell::new();

#[cfg(feature = "status")]
static STATUS_SLOT_STORAGE: StaticCell<[SlotStorage<Status<STATUS_ROWS>>; STATUS_POOL]> =
    StaticCell::new();

/// The reverse server's pool: its sockets, made from the buffers.
pub type Pool = [tcp::Socket<'static>; POOL];
/// The status server's pool (feature `status`).
#[cfg(feature = "status")]
pub type StatusPool = [tcp::Socket<'static>; STATUS_POOL];

/// The server's memory, handed out once.
pub struct Memory {
    /// The socket set's entries.
    pub sockets: &'static mut [SocketStorage<'static>; SOCKETS],
    /// The server's sockets and scratch buffers.
    pub resources: Resources<'static, Reverse, Pool>,
    /// The status server's sockets and scratch buffers (feature `status`).
    #[cfg(feature = "status")]
    pub status: Resources<'static, Status<STATUS_ROWS>, StatusPool>,
}

impl Memory {
    /// The memory, the first time; `None` after that.
    pub fn take() -> Option<Memory> {
        let buffers = BUFFERS.try_take()?;
        let sockets = SOCKET_STORAGE.try_init([SocketStorage::EMPTY; SOCKETS])?;
        let slots = SLOT_STORAGE.try_init([SlotStorage::EMPTY; POOL])?;
        let resources = Resources {
            pool: buffers.pool.each_mut().map(SocketBuffers::socket),
            storage: (&mut slots[..]).into(),
            input: &mut buffers.input,
            output: &mut buffers.output,
        };
        #[cfg(feature = "status")]
        let status_slots = STATUS_SLOT_STORAGE.try_init([SlotStorage::EMPTY; STATUS_POOL])?;
        #[cfg(feature = "status")]
        let status = Resources {
            pool: buffers.status_pool.each_mut().map(SocketBuffers::socket),
            storage: (&mut status_slots[..]).into(),
            input: &mut buffers.status_input,
            output: &mut buffers.status_output,
        };
        Some(Memory {
            sockets,
            resources,
            #[cfg(feature = "status")]
            status,
        })
    }
}
