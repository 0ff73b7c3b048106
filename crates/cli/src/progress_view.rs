//! Drawing a job's progress: an indicatif bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tessera_pipeline::Progress;

pub struct ProgressView {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ProgressView {
    pub fn start(progress: Arc<Progress>) -> ProgressView {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            if std::io::stderr().is_terminal() {
                draw_bar(&progress, &flag)
            } else {
                print_lines(&progress, &flag)
            }
        });
        ProgressView {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn draw_bar(progress: &Progress, stop: &AtomicBool) {
    let bar = ProgressBar::new(1000);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}")
    {
        bar.set_style(style);
    }
    while !stop.load(Ordering::Relaxed) {
        let s = progress.snapshot();
        bar.set_position((s.percent * 10.0) as u64);
        bar.set_message(format!(
            "{} ({} / {} points read, {} tiles)",
            s.stage, s.points_read, s.points_total, s.tiles_written
        ));
        std::thread::sleep(Duration::from_millis(250));
    }
    bar.finish_and_clear();
}

fn print_lines(progress: &Progress, stop: &AtomicBool) {
    let mut last = Instant::now();
    let mut last_pct = -1.0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        if last.elapsed() < Duration::from_secs(5) {
            continue;
        }
        let s = progress.snapshot();
        if s.percent != last_pct {
            eprintln!(
                "tessera: {:>3.0}% {} ({} of {} points read, {} tiles written)",
                s.percent, s.stage, s.points_read, s.points_total, s.tiles_written
            );
            last_pct = s.percent;
        }
        last = Instant::now();
    }
}
