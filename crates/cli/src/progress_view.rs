//! Drawing a job's progress in its route's own units (points, CityGML documents,
//! tiles): an indicatif bar with the remaining time on a terminal, plain periodic lines
//! otherwise (one per stage, one every 5 s, and the final count).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tessera_model::{ProgressSnapshot, Stage};
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

/// `n` with thousands separated: 20,496,320.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Throughput of the current stage: what it counted since it was entered.
struct StageRate {
    stage: Stage,
    since: Instant,
}

impl StageRate {
    fn new(s: &ProgressSnapshot) -> StageRate {
        StageRate {
            stage: s.stage,
            since: Instant::now(),
        }
    }

    /// Follow `s`; whether it entered another stage.
    fn update(&mut self, s: &ProgressSnapshot) -> bool {
        if s.stage == self.stage {
            return false;
        }
        *self = StageRate::new(s);
        true
    }

    fn per_second(&self, s: &ProgressSnapshot) -> Option<f64> {
        let secs = self.since.elapsed().as_secs_f64();
        (s.work.is_some() && s.done > 0 && secs >= 0.5).then(|| s.done as f64 / secs)
    }
}

/// `reading and reprojecting: 1,200,000 / 20,496,320 points, 3.1 M/s`.
fn describe(s: &ProgressSnapshot, rate: Option<f64>) -> String {
    let Some(work) = s.work else {
        return s.stage.to_string();
    };
    let mut out = format!(
        "{}: {} / {} {}",
        s.stage,
        grouped(s.done),
        grouped(s.total),
        work.label()
    );
    if let Some(r) = rate {
        let (v, unit) = if r >= 1e6 {
            (r / 1e6, " M ")
        } else if r >= 1e4 {
            (r / 1e3, " k ")
        } else {
            (r, " ")
        };
        out.push_str(&format!(", {v:.1}{unit}{}/s", work.label()));
    }
    out
}

/// Time left, from the share done so far (`None` until enough is done to tell).
fn eta(s: &ProgressSnapshot, started: Instant) -> Option<f64> {
    let t = started.elapsed().as_secs_f64();
    (s.percent >= 5.0 && s.percent < 100.0 && t >= 2.0).then(|| t * (100.0 - s.percent) / s.percent)
}

fn draw_bar(progress: &Progress, stop: &AtomicBool) {
    let bar = ProgressBar::new(1000);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}")
    {
        bar.set_style(style);
    }
    let started = Instant::now();
    let mut rate = StageRate::new(&progress.snapshot());
    while !stop.load(Ordering::Relaxed) {
        let s = progress.snapshot();
        rate.update(&s);
        bar.set_position((s.percent * 10.0) as u64);
        let left = eta(&s, started).map_or(String::new(), |e| format!(" ({} left)", clock(e)));
        bar.set_message(format!("{}{left}", describe(&s, rate.per_second(&s))));
        std::thread::sleep(Duration::from_millis(250));
    }
    bar.finish_and_clear();
}

fn print_lines(progress: &Progress, stop: &AtomicBool) {
    let started = Instant::now();
    let mut last = Instant::now();
    let mut rate = StageRate::new(&progress.snapshot());
    let mut last_line = String::new();
    let print = |s: &ProgressSnapshot, rate: &StageRate, last_line: &mut String| {
        let mut line = format!(
            "tessera: {:>3.0}% {}",
            s.percent,
            describe(s, rate.per_second(s))
        );
        if let Some(e) = eta(s, started) {
            line.push_str(&format!(", {} left", clock(e)));
        }
        if line != *last_line {
            eprintln!("{line}");
            *last_line = line;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let s = progress.snapshot();
        let entered = rate.update(&s);
        if entered || last.elapsed() >= Duration::from_secs(5) {
            print(&s, &rate, &mut last_line);
            last = Instant::now();
        }
    }
    // A finished job's last line: what its last counted stage counted.
    let s = progress.snapshot();
    if s.stage == Stage::Done {
        print(&s, &rate, &mut last_line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_model::WorkKind;

    #[test]
    fn counts_read_with_their_unit_and_total() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(20_496_320), "20,496,320");
        assert_eq!(clock(75.4), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
        let s = ProgressSnapshot {
            percent: 40.0,
            stage: Stage::Tile,
            points_read: 0,
            points_total: 0,
            tiles_written: 12,
            work: Some(WorkKind::Tiles),
            done: 1_200,
            total: 3_000,
        };
        assert_eq!(
            describe(&s, Some(250.0)),
            "building tiles: 1,200 / 3,000 tiles, 250.0 tiles/s"
        );
        let inspect = ProgressSnapshot {
            stage: Stage::Inspect,
            work: None,
            ..s
        };
        assert_eq!(describe(&inspect, None), "inspecting inputs");
    }
}
