//! The echo service of RFC 862: every byte received is sent back.

use super::{Output, Progress, Service};

/// The echo service. It answers whatever is available, as much as the
/// transmit buffer takes, so it needs no framing and no per-connection
/// state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Service for Echo {
    type Session = ();

    fn name(&self) -> &'static str {
        "echo"
    }

    fn input_window(&self) -> usize {
        1
    }

    fn output_window(&self) -> usize {
        1
    }

    fn receive(
        &mut self,
        _session: &mut (),
        input: &[u8],
        _finished: bool,
        output: &mut Output<'_>,
    ) -> Progress {
        let take = input.len().min(output.remaining());
        match input.get(..take) {
            Some(chunk) if !chunk.is_empty() && output.write(chunk).is_ok() => Progress {
                consumed: take,
                answered: 1,
                ..Progress::default()
            },
            _ => Progress::default(),
        }
    }
}
