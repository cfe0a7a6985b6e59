//! The [`Service`] trait: the protocol spoken on every connection.

mod echo;
mod line;
mod reverse;

pub use echo::Echo;
pub use line::{LineFrame, LineFramer, LineMode};
pub use reverse::{reverse_into, Framing, Reverse};

/// Room for a service's answer: a window into the server's output buffer,
/// no larger than the free space of the connection's transmit buffer.
///
/// Writes are all-or-nothing, so a service can try to write an answer and
/// leave the request unconsumed if it does not fit.
#[derive(Debug)]
pub struct Output<'a> {
    buf: &'a mut [u8],
    len: usize,
}

/// The answer did not fit in the room left in an [`Output`]; nothing was
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFull;

impl<'a> Output<'a> {
    /// An empty output that can take up to `buf.len()` bytes.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Output { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be written.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Append all of `data`, or nothing if it does not fit.
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputFull> {
        self.claim(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// Append `n` bytes and return them to be filled in, or claim nothing
    /// if they do not fit. The claimed bytes count as written.
    pub fn claim(&mut self, n: usize) -> Result<&mut [u8], OutputFull> {
        let end = self.len.checked_add(n).ok_or(OutputFull)?;
        let start = self.len;
        let room = self.buf.get_mut(start..end).ok_or(OutputFull)?;
        self.len = end;
        Ok(room)
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Append formatted text, all of it or nothing if it does not fit:
    /// `output.write_all_fmt(format_args!("{n} rows\n"))`.
    pub fn write_all_fmt(&mut self, args: core::fmt::Arguments<'_>) -> Result<(), OutputFull> {
        let start = self.len;
        match core::fmt::Write::write_fmt(self, args) {
            Ok(()) => Ok(()),
            Err(core::fmt::Error) => {
                self.len = start;
                Err(OutputFull)
            }
        }
    }
}

/// Text written piece by piece; a piece that does not fit fails the whole
/// write, and [`Output::write_all_fmt`] takes back what was written of it.
impl core::fmt::Write for Output<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes())
            .map_err(|OutputFull| core::fmt::Error)
    }
}

/// What one call of [`Service::receive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Input bytes answered (or deliberately discarded); the server removes
    /// exactly these from the connection. Must not exceed the input length.
    pub consumed: usize,
    /// Answers written (counted in [`Stats::answered`](crate::Stats)).
    pub answered: u32,
    /// Requests rejected with an error answer (counted in
    /// [`Stats::rejected`](crate::Stats)).
    pub rejected: u32,
    /// Close the connection once what was written has been sent.
    pub close: bool,
}

/// A protocol served on each connection of a [`Server`](crate::Server).
///
/// One value of the service serves every connection; what a connection
/// needs to remember between calls lives in its [`Service::Session`], which
/// the server keeps one of per pool socket (so its size is part of the
/// per-connection memory, see [`Server`](crate::Server)).
///
/// The server owns the sockets and the loop; a service only turns received
/// bytes into answer bytes. It is called with everything the connection has
/// received so far (as much as fits the server's input buffer) and with room
/// for its answer (as much as the socket's transmit buffer can take now). It
/// says how many input bytes it has answered; only those leave the socket's
/// receive buffer. What it does not consume is offered again on the next
/// call, together with whatever arrived since.
///
/// This is how backpressure works without losing data: a service consumes a
/// request only when its whole answer fits in `output`. A client that never
/// reads fills its transmit buffer, its requests stay in its receive buffer,
/// and its TCP window closes; no other connection is affected.
pub trait Service {
    /// Per-connection state. Reset to `Default` when a client connects.
    type Session: Default;

    /// The fewest input bytes the service must be shown at once to make
    /// progress: its largest request. The server checks at start that its
    /// input buffer and every socket's receive buffer are at least this big.
    fn input_window(&self) -> usize;

    /// The most output a single answer needs. The server checks at start
    /// that its output buffer and every socket's transmit buffer are at
    /// least this big, so every answer eventually fits.
    fn output_window(&self) -> usize;

    /// The service's name in one word, as the status service lists it.
    fn name(&self) -> &'static str {
        "service"
    }

    /// Which peers the service answers unless [`Config::peers`] says
    /// otherwise: every peer, by default.
    ///
    /// [`Config::peers`]: crate::Config::peers
    fn peers(&self) -> crate::Peers {
        crate::Peers::Any
    }

    /// Whether the session has something to write before any more input:
    /// a greeting, or the rest of an answer that did not fit at once. The
    /// server then calls [`Service::receive`] even with no new input, and
    /// does not close the connection after the peer's FIN until this is
    /// false.
    fn wants_output(&self, session: &Self::Session) -> bool {
        let _ = session;
        false
    }

    /// Answer what can be answered of `input`.
    ///
    /// `input` starts with the oldest byte not yet consumed. `finished` is
    /// true when the peer has closed its side and `input` holds everything
    /// it will ever send, so a trailing partial request can be answered.
    /// Write answers to `output`; consume only requests whose answers were
    /// written in full.
    fn receive(
        &mut self,
        session: &mut Self::Session,
        input: &[u8],
        finished: bool,
        output: &mut Output<'_>,
    ) -> Progress;
}
