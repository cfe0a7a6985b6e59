//! The `--pcap` file: a `PcapSink` that never stops the server.
//!
//! If writing fails (a full disk, say), the error is reported once and the
//! capture stops; serving goes on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use smoltcp::phy::PcapSink;

pub struct Capture {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Capture {
    pub fn create(path: PathBuf) -> Result<Capture, String> {
        let file = File::create(&path)
            .map_err(|e| format!("cannot create capture file {}: {e}", path.display()))?;
        Ok(Capture {
            path,
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
        })
    }

    /// A capture that writes nothing: the sink when no `--pcap` is asked for.
    pub fn off() -> Capture {
        Capture {
            path: PathBuf::new(),
            file: None,
        }
    }

    fn failed(&mut self, e: std::io::Error) {
        log::error!(
            "writing {} failed: {e}; capture stopped, serving goes on",
            self.path.display()
        );
        self.file = None;
    }

    /// Push buffered frames to the file (done before the loop sleeps).
    pub fn flush_now(&mut self) {
        if let Some(file) = self.file.as_mut() {
            if let Err(e) = Write::flush(file) {
                self.failed(e);
            }
        }
    }
}

impl PcapSink for Capture {
    fn write(&mut self, data: &[u8]) {
        if let Some(file) = self.file.as_mut() {
            if let Err(e) = file.write_all(data) {
                self.failed(e);
            }
        }
    }

    /// smoltcp calls this after every frame, so a reader of the file sees
    /// each frame as soon as it passed.
    fn flush(&mut self) {
        self.flush_now();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.flush_now();
    }
}
