//! Progress and cancellation: workers bump atomics, readers take snapshots.

use crate::error::PipelineError;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tessera_model::{ProgressSnapshot, Stage, WorkKind};

/// Shared between a running job and whoever watches it (a terminal bar, the server).
#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    /// Percent × 1000, only ever raised.
    percent_milli: AtomicU64,
    points_read: AtomicU64,
    points_total: AtomicU64,
    tiles_written: AtomicU64,
    /// What the current stage counts (`work_code`; 0 = nothing), how many of how many.
    work: AtomicU8,
    done: AtomicU64,
    total: AtomicU64,
    /// Share of 100 (× 1000) where each working stage (read, tile) starts and ends, as
    /// the route planned them ([`Progress::plan`]); zero = the point route's default.
    spans_milli: [AtomicU32; 4],
    canceled: AtomicBool,
    /// When each stage was entered.
    entered: Mutex<Vec<(Stage, Instant)>>,
}

/// Percent where the working stages start and end: inspection takes the first 2,
/// committing 98 to 99.
const WORK_SPAN: (f64, f64) = (2.0, 98.0);

/// The point route's split: reading and reprojecting, then tiling.
const DEFAULT_SPANS: [(f64, f64); 2] = [(2.0, 55.0), (55.0, 98.0)];

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

/// Index of a working stage in `Progress::spans_milli` (two entries each).
fn work_index(stage: Stage) -> Option<usize> {
    match stage {
        Stage::Read => Some(0),
        Stage::Tile => Some(1),
        _ => None,
    }
}

fn work_code(w: WorkKind) -> u8 {
    match w {
        WorkKind::Points => 1,
        WorkKind::CityDocuments => 2,
        WorkKind::Tiles => 3,
        WorkKind::FinestTiles => 4,
    }
}

fn work_of(code: u8) -> Option<WorkKind> {
    match code {
        1 => Some(WorkKind::Points),
        2 => Some(WorkKind::CityDocuments),
        3 => Some(WorkKind::Tiles),
        4 => Some(WorkKind::FinestTiles),
        _ => None,
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
            work: work_of(self.work.load(Ordering::Relaxed)),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// The working stages a route goes through with their relative weights (the share
    /// of the run each is expected to take), so the percentage moves evenly instead of
    /// jumping over a stage the route does not have. Without a plan: the point route's
    /// split.
    pub fn plan(&self, stages: &[(Stage, f64)]) {
        let sum: f64 = stages.iter().map(|s| s.1.max(0.0)).sum();
        if sum <= 0.0 {
            return;
        }
        let (a, b) = WORK_SPAN;
        let mut at = a;
        for (stage, w) in stages {
            let end = at + (b - a) * w.max(0.0) / sum;
            if let Some(k) = work_index(*stage) {
                self.spans_milli[2 * k].store((at * 1000.0) as u32, Ordering::Relaxed);
                self.spans_milli[2 * k + 1].store((end * 1000.0) as u32, Ordering::Relaxed);
            }
            at = end;
        }
    }

    /// Fixed share of 100 for `stage`: (start, end).
    fn span(&self, stage: Stage) -> (f64, f64) {
        match stage {
            Stage::Inspect => (0.0, WORK_SPAN.0),
            Stage::Commit => (WORK_SPAN.1, 99.0),
            Stage::Done => (100.0, 100.0),
            Stage::Read | Stage::Tile => {
                let k = work_index(stage).unwrap_or(0);
                let a = self.spans_milli[2 * k].load(Ordering::Relaxed);
                let b = self.spans_milli[2 * k + 1].load(Ordering::Relaxed);
                if b == 0 {
                    DEFAULT_SPANS[k]
                } else {
                    (f64::from(a) / 1000.0, f64::from(b) / 1000.0)
                }
            }
        }
    }

    /// What the current stage counts and how many there are in all (known up front).
    pub fn counting(&self, work: WorkKind, total: u64) {
        self.work.store(work_code(work), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
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
        if stage != Stage::Commit {
            // Committing keeps the last stage's count: what is being written out.
            self.work.store(0, Ordering::Relaxed);
            self.done.store(0, Ordering::Relaxed);
            self.total.store(0, Ordering::Relaxed);
        }
        self.entered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((stage, Instant::now()));
        self.set_percent(stage, 0.0);
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

    /// Move within `stage` to `done` of `total` (never backwards); the stage's counted
    /// work follows.
    pub fn raise(&self, stage: Stage, done: u64, total: u64) {
        let frac = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        if stage_of(self.stage.load(Ordering::Relaxed)) == stage {
            self.done.fetch_max(done, Ordering::Relaxed);
            self.total.fetch_max(total, Ordering::Relaxed);
        }
        self.set_percent(stage, frac);
    }

    fn set_percent(&self, stage: Stage, frac: f64) {
        let (a, b) = self.span(stage);
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
        self.work
            .store(s.work.map_or(0, work_code), Ordering::Relaxed);
        self.done.store(s.done, Ordering::Relaxed);
        self.total.store(s.total, Ordering::Relaxed);
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

    /// A route without a read stage plans its tiling over the whole working span, so
    /// entering it does not jump; the counted work is the stage's own.
    #[test]
    fn planned_stages_share_the_percentage_and_count_their_work() {
        let p = Progress::new();
        p.plan(&[(Stage::Tile, 1.0)]);
        p.enter(Stage::Inspect);
        p.enter(Stage::Tile);
        assert_eq!(p.snapshot().percent, 2.0);
        p.counting(WorkKind::Tiles, 40);
        p.raise(Stage::Tile, 10, 40);
        let s = p.snapshot();
        assert_eq!(s.percent, 26.0);
        assert_eq!((s.work, s.done, s.total), (Some(WorkKind::Tiles), 10, 40));
        // Out-of-order reports from workers never move the count back.
        p.raise(Stage::Tile, 7, 40);
        assert_eq!(p.snapshot().done, 10);
        p.enter(Stage::Commit);
        assert_eq!(
            p.snapshot().work,
            Some(WorkKind::Tiles),
            "what is written out"
        );
        p.enter(Stage::Read);
        assert_eq!(p.snapshot().work, None);

        // Unplanned: the point route's split.
        let q = Progress::new();
        q.enter(Stage::Tile);
        assert_eq!(q.snapshot().percent, 55.0);
        let r = Progress::new();
        r.plan(&[(Stage::Read, 1.0), (Stage::Tile, 3.0)]);
        r.enter(Stage::Tile);
        assert_eq!(r.snapshot().percent, 26.0);
    }
}
