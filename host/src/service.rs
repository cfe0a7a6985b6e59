//! The services the host program can run, chosen at run time.

use multiserve::LineMode;
use multiserve::{Echo, Output, Progress, Reverse, Service};

/// Either shipped service, behind one type so the server is built once.
pub enum HostService {
    Reverse(Reverse),
    Echo(Echo),
}

impl Service for HostService {
    type Session = LineMode;

    fn name(&self) -> &'static str {
        match self {
            HostService::Reverse(s) => s.name(),
            HostService::Echo(s) => s.name(),
        }
    }

    fn wants_output(&self, session: &LineMode) -> bool {
        match self {
            HostService::Reverse(s) => s.wants_output(session),
            HostService::Echo(s) => s.wants_output(&()),
        }
    }

    fn input_window(&self) -> usize {
        match self {
            HostService::Reverse(s) => s.input_window(),
            HostService::Echo(s) => s.input_window(),
        }
    }

    fn output_window(&self) -> usize {
        match self {
            HostService::Reverse(s) => s.output_window(),
            HostService::Echo(s) => s.output_window(),
        }
    }

    fn receive(
        &mut self,
        session: &mut LineMode,
        input: &[u8],
        finished: bool,
        output: &mut Output<'_>,
    ) -> Progress {
        match self {
            HostService::Reverse(s) => s.receive(session, input, finished, output),
            HostService::Echo(s) => s.receive(&mut (), input, finished, output),
        }
    }
}
