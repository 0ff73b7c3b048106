//! Progress and cancellation: workers bump atomics, readers take snapshots.

use crate::error::PipelineError;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tessera_model::{ProgressSnapshot, Stage};

/// Shared between a running job and whoever watches it (a terminal bar, the server).
#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    /// Percent × 1000, only ever raised.
    percent_milli: AtomicU64,
    points_read: AtomicU64,
    points_total: AtomicU64,
    tiles_written: AtomicU64,
    canceled: AtomicBool,
    /// When each stage was entered.
    entered: Mutex<Vec<(Stage, Instant)>>,
}

/// Fixed share of 100 per stage: (start, end).
fn stage_span(stage: Stage) -> (f64, f64) {
    match stage {
        Stage::Inspect => (0.0, 2.0),
        Stage::Read => (2.0, 55.0),
        Stage::Tile => (55.0, 98.0),
        Stage::Commit => (98.0, 99.0),
        Stage::Done => (100.0, 100.0),
    }
}

fn stage_code(stage: Stage) -> u8 {
    match stage {
        Stage::Inspect => 0,
        Stage::Read => 1,
        Stage::Tile => 2,
        Stage::Commit => 3,
        Stage::Done => 4,
    }
}

fn stage_of(code: u8) -> Stage {
    match code {
        0 => Stage::Inspect,
        1 => Stage::Read,
        2 => Stage::Tile,
        3 => Stage::Commit,
        _ => Stage::Done,
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            percent: self.percent_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            stage: stage_of(self.stage.load(Ordering::Relaxed)),
            points_read: self.points_read.load(Ordering::Relaxed),
            points_total: self.points_total.load(Ordering::Relaxed),
            tiles_written: self.tiles_written.load(Ordering::Relaxed),
        }
    }

    /// Ask the job to stop at the next work-unit or tile boundary.
    pub fn cancel(&self) {
        self.canceled.store(true, Ordering::SeqCst);
    }

    pub fn is_canceled(&self) -> bool {
        self.canceled.load(Ordering::Relaxed)
    }

    /// `Err(Canceled)` once cancellation was asked for.
    pub fn check(&self) -> Result<(), PipelineError> {
        if self.is_canceled() {
            Err(PipelineError::Canceled)
        } else {
            Ok(())
        }
    }

    /// Enter `stage` (runners other than the pipeline's own, e.g. a server's scripted
    /// test runner, publish through these too).
    pub fn enter(&self, stage: Stage) {
        self.stage.store(stage_code(stage), Ordering::Relaxed);
        self.entered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((stage, Instant::now()));
        self.raise(stage, 0, 1);
    }

    /// Seconds from entering each stage to entering the next (the last one: until now),
    /// summed per stage in the order they were first entered.
    pub fn stage_seconds(&self) -> Vec<(Stage, f64)> {
        let entered = self.entered.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let mut out: Vec<(Stage, f64)> = Vec::new();
        for (i, (stage, at)) in entered.iter().enumerate() {
            let end = entered.get(i + 1).map_or(now, |n| n.1);
            let s = end.duration_since(*at).as_secs_f64();
            match out.iter_mut().find(|o| o.0 == *stage) {
                Some(o) => o.1 += s,
                None => out.push((*stage, s)),
            }
        }
        out
    }

    /// Move within `stage` to `done` of `total` (never backwards).
    pub fn raise(&self, stage: Stage, done: u64, total: u64) {
        let (a, b) = stage_span(stage);
        let frac = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        let pct = if stage == Stage::Done {
            100.0
        } else {
            (a + (b - a) * frac).min(99.0)
        };
        self.percent_milli
            .fetch_max((pct * 1000.0) as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_points_total(&self, n: u64) {
        self.points_total.store(n, Ordering::Relaxed);
    }

    pub(crate) fn add_points_read(&self, n: u64) -> u64 {
        self.points_read.fetch_add(n, Ordering::Relaxed) + n
    }

    pub(crate) fn add_tile(&self) {
        self.tiles_written.fetch_add(1, Ordering::Relaxed);
    }

    /// Take over a snapshot published elsewhere (a job running in another process):
    /// counters as they are, the percentage only ever raised.
    pub fn absorb(&self, s: &ProgressSnapshot) {
        self.stage.store(stage_code(s.stage), Ordering::Relaxed);
        if s.percent.is_finite() {
            let pct = if s.stage == Stage::Done {
                s.percent.clamp(0.0, 100.0)
            } else {
                s.percent.clamp(0.0, 99.0)
            };
            self.percent_milli
                .fetch_max((pct * 1000.0) as u64, Ordering::Relaxed);
        }
        self.points_read.store(s.points_read, Ordering::Relaxed);
        self.points_total.store(s.points_total, Ordering::Relaxed);
        self.tiles_written.store(s.tiles_written, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.stage.store(stage_code(Stage::Done), Ordering::Relaxed);
        self.raise(Stage::Done, 1, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_monotonic_and_below_100_until_done() {
        let p = Progress::new();
        p.enter(Stage::Read);
        p.raise(Stage::Read, 50, 100);
        let a = p.snapshot().percent;
        p.raise(Stage::Read, 10, 100);
        assert_eq!(p.snapshot().percent, a);
        p.raise(Stage::Commit, 1, 1);
        assert!(p.snapshot().percent <= 99.0);
        p.finish();
        assert_eq!(p.snapshot().percent, 100.0);
        assert_eq!(p.snapshot().stage, Stage::Done);
        assert!(p.check().is_ok());
        p.cancel();
        assert!(matches!(p.check(), Err(PipelineError::Canceled)));
    }
}
