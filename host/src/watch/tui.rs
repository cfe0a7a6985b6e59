//! The live view: a thread fetches snapshots, the main thread draws them
//! and reads the keyboard.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;

use super::draw::{Link, Screen};
use super::snapshot::{History, Snapshot};
use super::Client;

/// How long to wait before connecting again after the server went away.
const RETRY: Duration = Duration::from_secs(1);
/// How often the screen is drawn and the keyboard looked at.
const FRAME: Duration = Duration::from_millis(100);

/// What the fetching thread reports.
enum News {
    Snapshot(Box<Snapshot>),
    Down(String),
}

pub fn run(shown: &str, addr: SocketAddr, interval: Duration) -> Result<ExitCode, String> {
    // SIGTERM and SIGHUP end the view as `q` does, so the terminal is
    // restored (in raw mode Ctrl-C arrives as a key, not SIGINT).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("fetch".into())
        .spawn(move || fetch(addr, interval, &tx))
        .map_err(|e| e.to_string())?;
    // Raw mode and the alternate screen, with a panic hook that restores
    // the terminal first.
    let mut terminal = ratatui::try_init().map_err(|e| {
        // Undo what was done before the failure.
        ratatui::restore();
        format!("cannot set up the terminal: {e} (without one, use --once)")
    })?;
    let result = show(&mut terminal, shown, &rx, &stop);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

/// Draws until `q`, Ctrl-C or a signal.
fn show(
    terminal: &mut DefaultTerminal,
    shown: &str,
    news: &Receiver<News>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut link = Link::Connecting;
    let mut last: Option<Snapshot> = None;
    let mut history = History::default();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(item) = news.try_recv() {
            match item {
                News::Snapshot(snapshot) => {
                    history.push(&snapshot);
                    last = Some(*snapshot);
                    link = Link::Up;
                }
                News::Down(why) => link = Link::Down(why),
            }
        }
        let screen = Screen {
            addr: shown,
            link: &link,
            snapshot: last.as_ref(),
            history: &history,
        };
        terminal
            .draw(|frame| frame.render_widget(&screen, frame.area()))
            .map_err(|e| format!("cannot draw: {e}"))?;
        // A resize is drawn on the next turn.
        if event::poll(FRAME).map_err(|e| e.to_string())? {
            if let Event::Key(key) = event::read().map_err(|e| e.to_string())? {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                let q = matches!(key.code, KeyCode::Char('q' | 'Q'));
                if key.kind == KeyEventKind::Press && (q || ctrl_c) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Fetches a snapshot every `interval`, connecting again every second
/// while the server is away; ends when the view has ended.
fn fetch(addr: SocketAddr, interval: Duration, news: &Sender<News>) {
    loop {
        match Client::connect(addr) {
            Ok(mut client) => loop {
                let asked = Instant::now();
                let item = match client.snapshot() {
                    Ok(snapshot) => News::Snapshot(Box::new(snapshot)),
                    Err(why) => News::Down(why),
                };
                let down = matches!(item, News::Down(_));
                if news.send(item).is_err() {
                    return;
                }
                if down {
                    break;
                }
                thread::sleep(interval.saturating_sub(asked.elapsed()));
            },
            Err(why) => {
                if news.send(News::Down(why)).is_err() {
                    return;
                }
            }
        }
        thread::sleep(RETRY);
    }
}
