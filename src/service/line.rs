//! Line framing: splitting a byte stream into lines ending in `\n`.

/// One frame at the start of the input, see [`LineFramer::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LineFrame<'a> {
    /// A complete line. At the end of the input, a last line without `\n`
    /// also counts as complete; its `ending` is then empty (or `\r`).
    Line {
        /// The line without its ending.
        content: &'a [u8],
        /// `\n`, `\r\n`, or at the end of the input what it ended with.
        ending: &'a [u8],
    },
    /// The start of a line longer than the maximum: the first `span` bytes
    /// of the input belong to it. If `ended` is false its `\n` has not been
    /// seen yet, and the following bytes up to it must be skipped
    /// ([`LineMode::Skipping`]).
    Overlong {
        /// Whether the overlong line's `\n` is within the span.
        ended: bool,
    },
    /// Bytes of an overlong line being skipped. If `ended` is true, the
    /// span includes the line's `\n` and the next byte starts a new line.
    Skipped {
        /// Whether the skipped line's `\n` is within the span.
        ended: bool,
    },
    /// Not a whole frame yet: wait for more input.
    Incomplete,
}

/// Whether the framer is reading a new line or skipping the rest of an
/// overlong one. Kept per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LineMode {
    /// The next byte starts a line.
    #[default]
    Reading,
    /// Bytes up to the next `\n` belong to an overlong line already
    /// reported.
    Skipping,
}

/// Splits input into lines of at most `max_len` content bytes.
///
/// A line's *content* is what comes before its ending; its *ending* is
/// `\n` or `\r\n`. A line whose content is longer than the maximum is
/// *overlong*: the framer reports it once, then skips the rest of it up to
/// and including its `\n`, so the connection keeps working.
///
/// The framer never copies and never buffers: it looks at the bytes it is
/// shown and says what the next frame is and how many bytes it spans. The
/// caller consumes those bytes only once it has handled the frame, so a
/// frame that cannot be handled yet (its answer does not fit) is simply
/// offered again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFramer {
    max_len: usize,
}

impl LineFramer {
    /// A framer for lines of at most `max_len` content bytes (at least 1).
    pub const fn new(max_len: usize) -> Self {
        LineFramer {
            max_len: if max_len == 0 { 1 } else { max_len },
        }
    }

    /// The maximum content length of a line.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }

    /// The most bytes one line spans: content, `\r` and `\n`. The framer
    /// can always decide on a frame once it is shown this many bytes.
    pub const fn window(&self) -> usize {
        self.max_len.saturating_add(2)
    }

    /// The next frame at the start of `input`, and how many bytes it spans.
    ///
    /// `finished` says that `input` is all there will ever be (the peer
    /// closed its side). Advance [`LineMode`] with [`LineFramer::advance`] once
    /// the frame has been handled and its span consumed.
    pub fn next<'a>(
        &self,
        mode: LineMode,
        input: &'a [u8],
        finished: bool,
    ) -> (LineFrame<'a>, usize) {
        let newline = input.iter().position(|&b| b == b'\n');
        match mode {
            LineMode::Skipping => match newline {
                Some(i) => (LineFrame::Skipped { ended: true }, i.saturating_add(1)),
                None if input.is_empty() => (LineFrame::Incomplete, 0),
                None => (LineFrame::Skipped { ended: false }, input.len()),
            },
            LineMode::Reading => {
                let (line, span, ending_len) = match newline {
                    Some(i) => (input.get(..i).unwrap_or_default(), i.saturating_add(1), 1),
                    None if finished && !input.is_empty() => (input, input.len(), 0),
                    None if input.len() >= self.window() => {
                        // No `\n` within the longest possible line.
                        return (LineFrame::Overlong { ended: false }, input.len());
                    }
                    None => return (LineFrame::Incomplete, 0),
                };
                let (content, ending) = match line.split_last() {
                    Some((b'\r', content)) => (content, input.get(content.len()..span)),
                    _ => (
                        line,
                        input.get(line.len()..line.len().saturating_add(ending_len)),
                    ),
                };
                if content.len() > self.max_len {
                    return (LineFrame::Overlong { ended: true }, span);
                }
                let ending = ending.unwrap_or_default();
                (LineFrame::Line { content, ending }, span)
            }
        }
    }

    /// The mode after `frame` has been handled.
    pub fn advance(mode: LineMode, frame: &LineFrame<'_>) -> LineMode {
        match *frame {
            LineFrame::Overlong { ended: false } | LineFrame::Skipped { ended: false } => {
                LineMode::Skipping
            }
            LineFrame::Overlong { ended: true } | LineFrame::Skipped { ended: true } => {
                LineMode::Reading
            }
            LineFrame::Line { .. } => LineMode::Reading,
            LineFrame::Incomplete => mode,
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_keeps_endings() {
        let f = LineFramer::new(8);
        let (frame, span) = f.next(LineMode::Reading, b"ab\r\ncd\n", false);
        assert_eq!(
            frame,
            LineFrame::Line {
                content: b"ab",
                ending: b"\r\n"
            }
        );
        assert_eq!(span, 4);
        let (frame, span) = f.next(LineMode::Reading, b"cd\n", false);
        assert_eq!(
            frame,
            LineFrame::Line {
                content: b"cd",
                ending: b"\n"
            }
        );
        assert_eq!(span, 3);
    }

    #[test]
    fn waits_for_the_rest_of_a_line() {
        let f = LineFramer::new(8);
        assert_eq!(
            f.next(LineMode::Reading, b"abc", false),
            (LineFrame::Incomplete, 0)
        );
        assert_eq!(
            f.next(LineMode::Reading, b"", false),
            (LineFrame::Incomplete, 0)
        );
    }

    #[test]
    fn answers_a_last_line_without_newline() {
        let f = LineFramer::new(8);
        let (frame, span) = f.next(LineMode::Reading, b"abc\r", true);
        assert_eq!(
            frame,
            LineFrame::Line {
                content: b"abc",
                ending: b"\r"
            }
        );
        assert_eq!(span, 4);
    }

    #[test]
    fn reports_overlong_lines_once_then_skips() {
        let f = LineFramer::new(3);
        assert_eq!(
            f.next(LineMode::Reading, b"abcd\nxy\n", false),
            (LineFrame::Overlong { ended: true }, 5)
        );
        // A line of exactly max_len with CRLF is fine.
        assert_eq!(
            f.next(LineMode::Reading, b"abc\r\n", false).0,
            LineFrame::Line {
                content: b"abc",
                ending: b"\r\n"
            }
        );
        // Without a newline in max_len + 2 bytes it cannot be a valid line.
        assert_eq!(
            f.next(LineMode::Reading, b"abcde", false),
            (LineFrame::Overlong { ended: false }, 5)
        );
        assert_eq!(
            f.next(LineMode::Skipping, b"zzz", false),
            (LineFrame::Skipped { ended: false }, 3)
        );
        assert_eq!(
            f.next(LineMode::Skipping, b"zz\nok\n", false),
            (LineFrame::Skipped { ended: true }, 3)
        );
    }
}
