//! The line framer and the reverse service, fed an arbitrary byte stream
//! split at arbitrary points, with arbitrary room for answers, driven the
//! way the server drives a service, and checked against a reference model.
//!
//! Input layout: one header byte (bits 0-5: maximum line length - 1,
//! bit 6: chunk framing, bit 7: the client closes its side at the end),
//! then records `[len, room, len bytes of data]`: `len` bytes arrive, and
//! the service is called with at most `room` bytes of output room (scaled
//! to the output window) until it makes no more progress.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multiserve::{Framing, Output, Reverse, Service};

/// Reverse `src` by Unicode scalar value, each byte that is not part of a
/// valid UTF-8 sequence on its own. Written independently of the crate.
fn model_reverse(src: &[u8]) -> Vec<u8> {
    let mut units: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let len = (1..=4)
            .find(|&k| i + k <= src.len() && std::str::from_utf8(&src[i..i + k]).is_ok())
            .unwrap_or(1);
        units.push(&src[i..i + len]);
        i += len;
    }
    units.into_iter().rev().flatten().copied().collect()
}

/// What the line framing must answer to the whole stream `data`.
fn model_lines(data: &[u8], max_len: usize, finished: bool) -> Vec<u8> {
    let error = format!("error: line longer than {max_len} bytes\n").into_bytes();
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                let (content, ending): (&[u8], &[u8]) = match line.split_last() {
                    Some((b'\r', c)) => (c, b"\r\n"),
                    _ => (line, b"\n"),
                };
                if content.len() > max_len {
                    out.extend_from_slice(&error);
                } else {
                    out.extend(model_reverse(content));
                    out.extend_from_slice(ending);
                }
                rest = &rest[i + 1..];
            }
            None => {
                if rest.is_empty() {
                } else if finished {
                    let (content, ending): (&[u8], &[u8]) = match rest.split_last() {
                        Some((b'\r', c)) => (c, b"\r"),
                        _ => (rest, b""),
                    };
                    if content.len() > max_len {
                        out.extend_from_slice(&error);
                    } else {
                        out.extend(model_reverse(content));
                        out.extend_from_slice(ending);
                    }
                } else if rest.len() >= max_len + 2 {
                    // No newline within the longest possible line.
                    out.extend_from_slice(&error);
                }
                return out;
            }
        }
    }
}

struct Driver {
    service: Reverse,
    session: <Reverse as Service>::Session,
    /// Received and not yet consumed.
    pending: Vec<u8>,
    answer: Vec<u8>,
    consumed: usize,
    scratch: Vec<u8>,
}

impl Driver {
    /// Call the service as the server does, until it makes no progress.
    fn serve(&mut self, room: usize, finished: bool) {
        loop {
            let shown = self.pending.len().min(self.service.input_window());
            let input = &self.pending[..shown];
            let room = room.min(self.scratch.len());
            let mut output = Output::new(&mut self.scratch[..room]);
            let done = finished && shown == self.pending.len();
            let progress = self
                .service
                .receive(&mut self.session, input, done, &mut output);
            assert!(progress.consumed <= shown, "consumed more than shown");
            let written = output.written().to_vec();
            if self.service.framing() == Framing::Chunk && progress.consumed > 0 {
                // Chunk framing: each answer is exactly its chunk reversed.
                assert_eq!(written, model_reverse(&input[..progress.consumed]));
            }
            self.answer.extend_from_slice(&written);
            self.pending.drain(..progress.consumed);
            self.consumed += progress.consumed;
            if progress.consumed == 0 && written.is_empty() {
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&header, mut records)) = data.split_first() else {
        return;
    };
    let max_len = usize::from(header & 0x3f) + 1;
    let framing = if header & 0x40 != 0 {
        Framing::Chunk
    } else {
        Framing::Line
    };
    let finished = header & 0x80 != 0;
    let service = Reverse::new(framing, max_len);
    let window = service.output_window();
    let mut driver = Driver {
        scratch: vec![0; window],
        service,
        session: Default::default(),
        pending: Vec::new(),
        answer: Vec::new(),
        consumed: 0,
    };
    let mut stream = Vec::new();
    while let [len, room, rest @ ..] = records {
        let len = usize::from(*len).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        records = tail;
        stream.extend_from_slice(chunk);
        driver.pending.extend_from_slice(chunk);
        // Any room from none to a little more than the window.
        let room = usize::from(*room) * (window + 8) / 255;
        driver.serve(room, false);
    }
    // Then the room frees up (the client reads), and the client may close.
    driver.serve(window, finished);
    match framing {
        Framing::Line => {
            let expected = model_lines(&stream, max_len, finished);
            assert!(
                driver.answer == expected,
                "answer {:?}\nmodel  {:?}\nstream {:?}",
                String::from_utf8_lossy(&driver.answer),
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&stream)
            );
        }
        Framing::Chunk => {
            // Everything is answered, whatever the room was.
            assert_eq!(driver.consumed, stream.len());
            assert_eq!(driver.answer.len(), stream.len());
        }
    }
});
