//! Moving bytes between a connection's socket and its service: show the
//! service what it can answer now, send its answer, remove what it
//! consumed, count both.

use smoltcp::socket::tcp::{Socket, State};

use super::Shared;
use crate::service::{Output, Progress, Service};
use crate::stats::Stats;

/// What one exchange on a connection did.
#[derive(Default)]
pub(super) struct Exchange {
    /// Some input was consumed or some output written.
    pub(super) moved: bool,
    /// The service asked to close.
    pub(super) close: bool,
    /// Bytes consumed.
    pub(super) bytes_in: u64,
    /// Bytes written.
    pub(super) bytes_out: u64,
}

/// Offer the connection's received bytes to the service and send its
/// answers, until the service makes no more progress.
pub(super) fn exchange<S: Service>(
    socket: &mut Socket<'_>,
    session: &mut S::Session,
    stats: &mut Stats,
    shared: &mut Shared<'_, S>,
) -> Exchange {
    let mut result = Exchange::default();
    let window = shared.service.input_window();
    loop {
        let queued = socket.recv_queue();
        if (queued == 0 && !shared.service.wants_output(session)) || !socket.may_send() {
            break;
        }
        let Some(shown) = show(socket, shared.input, shared.output.len(), window) else {
            break;
        };
        let (Some(input), Some(output)) = (
            shared.input.get(..shown.input),
            shared.output.get_mut(..shown.room),
        ) else {
            break;
        };
        let mut output = Output::new(output);
        let progress = shared
            .service
            .receive(session, input, shown.finished, &mut output);
        if !take_answer(
            socket,
            output.written(),
            progress,
            shown.input,
            stats,
            &mut result,
        ) {
            break;
        }
    }
    result
}

/// What an exchange shows the service.
struct Shown {
    /// Received bytes copied to the start of the input buffer.
    input: usize,
    /// Room for answers.
    room: usize,
    /// Whether the input is all the peer will ever send.
    finished: bool,
}

/// Copy what the service can answer now from the socket to `input`: as
/// much as fits the room for answers (at most `output` bytes), but never
/// less than its `window` (so a request can always be seen whole).
/// Copying more would be copied again.
fn show(socket: &mut Socket<'_>, input: &mut [u8], output: usize, window: usize) -> Option<Shown> {
    let queued = socket.recv_queue();
    let room = socket
        .send_capacity()
        .saturating_sub(socket.send_queue())
        .min(output);
    let limit = room.max(window).min(input.len());
    let view = input.get_mut(..limit)?;
    let shown = socket.peek_slice(view).ok()?;
    Some(Shown {
        input: shown,
        room,
        finished: socket.state() == State::CloseWait && shown == queued,
    })
}

/// Send the service's answer (`written`), remove what it consumed of the
/// `shown` bytes, and count both. Returns whether to offer the service
/// more: it made progress and did not ask to close.
fn take_answer(
    socket: &mut Socket<'_>,
    written: &[u8],
    progress: Progress,
    shown: usize,
    stats: &mut Stats,
    result: &mut Exchange,
) -> bool {
    let consumed = progress.consumed.min(shown);
    let written_len = written.len();
    if written_len > 0 {
        match socket.send_slice(written) {
            Ok(sent) if sent == written_len => {}
            // Cannot happen: the room was free space. Do not lose the
            // request: keep it unconsumed and stop here.
            _ => {
                warn!("transmit buffer refused an answer that fit");
                return false;
            }
        }
    }
    discard(socket, consumed);
    stats.bytes_in = stats.bytes_in.saturating_add(consumed as u64);
    stats.bytes_out = stats.bytes_out.saturating_add(written_len as u64);
    stats.answered = stats.answered.saturating_add(u64::from(progress.answered));
    stats.rejected = stats.rejected.saturating_add(u64::from(progress.rejected));
    result.bytes_in = result.bytes_in.saturating_add(consumed as u64);
    result.bytes_out = result.bytes_out.saturating_add(written_len as u64);
    if consumed == 0 && written_len == 0 {
        return false;
    }
    result.moved = true;
    if progress.close {
        result.close = true;
        return false;
    }
    true
}

/// Remove `count` bytes (already handled) from the socket's receive buffer.
fn discard(socket: &mut Socket<'_>, mut count: usize) {
    // The ring buffer hands out at most two contiguous pieces.
    for _ in 0..2 {
        if count == 0 {
            break;
        }
        let taken = socket.recv(|buf| {
            let n = buf.len().min(count);
            (n, n)
        });
        match taken {
            Ok(n) if n > 0 => count = count.saturating_sub(n),
            _ => break,
        }
    }
}
