//! The lecture's service: every message is answered reversed.

use core::fmt::Write as _;

use super::line::{LineFrame, LineFramer, LineMode};
use super::{Output, Progress, Service};

/// What a message is; see [`Reverse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// One message per line ending in `\n`.
    #[default]
    Line,
    /// One message per read of the available bytes.
    Chunk,
}

/// The longest error line: `error: line longer than ` + 20 digits +
/// ` bytes\r\n`.
const ERROR_LINE_CAPACITY: usize = 56;

/// The reverse service.
///
/// Reversal keeps characters whole: valid UTF-8 is reversed by Unicode
/// scalar value (`Olá, mundo` becomes `odnum ,álO`); each byte that is not
/// part of a valid UTF-8 character is reversed as a byte of its own.
///
/// Two framings say what a message is:
///
/// - [`Framing::Line`] (default): a line ending in `\n`. The answer is the
///   line's content reversed followed by the same ending (`\n` or `\r\n`),
///   one answer per line however the lines arrive in segments. A line longer
///   than the maximum is answered with one line
///   `error: line longer than MAX bytes` and skipped up to its `\n`; the
///   connection keeps working. A last line without `\n` is answered when the
///   client closes its side.
/// - [`Framing::Chunk`]: the lecture's own behaviour (`recv(1024)`, answer
///   reversed): whatever bytes are available, up to the maximum, are
///   answered reversed with nothing added. A multi-byte character split
///   across two reads is reversed as bytes.
#[derive(Debug, Clone)]
pub struct Reverse {
    framing: Framing,
    framer: LineFramer,
    error_line: heapless::String<ERROR_LINE_CAPACITY>,
}

impl Reverse {
    /// The lecture's maximum message size, its `recv(1024)`.
    pub const DEFAULT_MAX_LEN: usize = 1024;

    /// A reverse service with messages of at most `max_len` bytes (at
    /// least 1): the content of a line, or one chunk.
    pub fn new(framing: Framing, max_len: usize) -> Self {
        let framer = LineFramer::new(max_len);
        let mut error_line = heapless::String::new();
        // Cannot fail: the capacity holds the longest possible number.
        let _ = writeln!(
            error_line,
            "error: line longer than {} bytes",
            framer.max_len()
        );
        Reverse {
            framing,
            framer,
            error_line,
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The maximum message length in bytes.
    pub fn max_len(&self) -> usize {
        self.framer.max_len()
    }

    fn receive_lines(
        &self,
        mode: &mut LineMode,
        input: &[u8],
        finished: bool,
        output: &mut Output<'_>,
    ) -> Progress {
        let mut progress = Progress::default();
        loop {
            let rest = input.get(progress.consumed..).unwrap_or_default();
            let (frame, span) = self.framer.next(*mode, rest, finished);
            let handled = match frame {
                LineFrame::Incomplete => break,
                LineFrame::Line { content, ending } => {
                    let answer_len = content.len().saturating_add(ending.len());
                    match output.claim(answer_len) {
                        Ok(room) => {
                            let (body, tail) = room.split_at_mut(content.len());
                            reverse_into(content, body);
                            tail.copy_from_slice(ending);
                            progress.answered = progress.answered.saturating_add(1);
                            true
                        }
                        Err(_) => false,
                    }
                }
                LineFrame::Overlong { .. } => {
                    let written = output.write(self.error_line.as_bytes()).is_ok();
                    if written {
                        progress.rejected = progress.rejected.saturating_add(1);
                    }
                    written
                }
                LineFrame::Skipped { .. } => true,
            };
            if !handled {
                break;
            }
            *mode = LineFramer::advance(*mode, &frame);
            progress.consumed = progress.consumed.saturating_add(span);
        }
        progress
    }

    fn receive_chunk(&self, input: &[u8], output: &mut Output<'_>) -> Progress {
        let take = input.len().min(self.framer.max_len());
        let chunk = input.get(..take).unwrap_or_default();
        match output.claim(chunk.len()) {
            Ok(room) if !chunk.is_empty() => {
                reverse_into(chunk, room);
                Progress {
                    consumed: chunk.len(),
                    answered: 1,
                    ..Progress::default()
                }
            }
            _ => Progress::default(),
        }
    }
}

impl Default for Reverse {
    fn default() -> Self {
        Reverse::new(Framing::Line, Reverse::DEFAULT_MAX_LEN)
    }
}

/// The service's windows as `const fn`s, so that a board sizes its static
/// scratch buffers from the service it runs rather than from copied numbers.
impl Reverse {
    /// [`Service::input_window`] of `Reverse::new(framing, max_len)`, in
    /// bytes: a whole line with its `\r\n` (line framing), or one chunk.
    pub const fn input_window_for(framing: Framing, max_len: usize) -> usize {
        let framer = LineFramer::new(max_len);
        match framing {
            Framing::Line => framer.window(),
            Framing::Chunk => framer.max_len(),
        }
    }

    /// [`Service::output_window`] of `Reverse::new(framing, max_len)`, in
    /// bytes: the longer of a line's answer and the error line (line
    /// framing), or one chunk.
    pub const fn output_window_for(framing: Framing, max_len: usize) -> usize {
        let framer = LineFramer::new(max_len);
        match framing {
            Framing::Line => {
                let line = framer.window();
                let error = error_line_len(framer.max_len());
                if line > error {
                    line
                } else {
                    error
                }
            }
            Framing::Chunk => framer.max_len(),
        }
    }
}

/// The length of `error: line longer than {max_len} bytes\n`.
const fn error_line_len(max_len: usize) -> usize {
    let mut digits = 1;
    let mut rest = max_len / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    "error: line longer than ".len() + digits + " bytes\n".len()
}

impl Service for Reverse {
    type Session = LineMode;

    fn name(&self) -> &'static str {
        "reverse"
    }

    fn input_window(&self) -> usize {
        Reverse::input_window_for(self.framing, self.framer.max_len())
    }

    fn output_window(&self) -> usize {
        Reverse::output_window_for(self.framing, self.framer.max_len())
    }

    fn receive(
        &mut self,
        session: &mut LineMode,
        input: &[u8],
        finished: bool,
        output: &mut Output<'_>,
    ) -> Progress {
        match self.framing {
            Framing::Line => self.receive_lines(session, input, finished, output),
            Framing::Chunk => self.receive_chunk(input, output),
        }
    }
}

/// Write `src` reversed into `dst`, keeping UTF-8 characters whole.
///
/// `dst` must be as long as `src`; if it is not, only as many units as fit
/// are written (no panic).
pub fn reverse_into(src: &[u8], dst: &mut [u8]) {
    if src.is_ascii() {
        // Every byte is a character of its own.
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
        return;
    }
    let mut end = dst.len().min(src.len());
    let mut put = |unit: &[u8]| {
        if let Some(start) = end.checked_sub(unit.len()) {
            if let Some(slot) = dst.get_mut(start..end) {
                slot.copy_from_slice(unit);
                end = start;
            }
        }
    };
    for chunk in src.utf8_chunks() {
        let mut buf = [0u8; 4];
        for c in chunk.valid().chars() {
            put(c.encode_utf8(&mut buf).as_bytes());
        }
        for byte in chunk.invalid() {
            put(core::slice::from_ref(byte));
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reversed(src: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        reverse_into(src, &mut out[..src.len()]);
        out
    }

    #[test]
    fn reverses_by_character() {
        let src = "Olá, mundo".as_bytes();
        assert_eq!(&reversed(src)[..src.len()], "odnum ,álO".as_bytes());
    }

    #[test]
    fn reverses_invalid_bytes_one_by_one() {
        let src = b"a\xff\xfeb";
        assert_eq!(&reversed(src)[..4], b"b\xfe\xffa");
    }

    #[test]
    fn error_line_fits() {
        let r = Reverse::new(Framing::Line, usize::MAX);
        assert!(r.error_line.ends_with(" bytes\n"));
        assert!(r.output_window() >= r.error_line.len());
    }

    #[test]
    fn const_windows_match_the_service() {
        for max_len in [0, 1, 9, 10, 53, 54, 55, 99, 1024, usize::MAX] {
            let r = Reverse::new(Framing::Line, max_len);
            assert_eq!(error_line_len(r.max_len()), r.error_line.len(), "{max_len}");
            assert_eq!(
                r.output_window(),
                (r.max_len().saturating_add(2)).max(r.error_line.len())
            );
            assert_eq!(r.input_window(), r.max_len().saturating_add(2));
            let c = Reverse::new(Framing::Chunk, max_len);
            assert_eq!(
                (c.input_window(), c.output_window()),
                (c.max_len(), c.max_len())
            );
        }
        const LINE: usize = Reverse::output_window_for(Framing::Line, 1024);
        assert_eq!(LINE, 1026);
    }
}
