//! Each job runs in a worker process: `tessera job-worker`, the server's own executable,
//! started per job with the job on stdin. It sets its own memory limit, streams progress
//! snapshots and finally its [`Outcome`] as JSON lines on stdout, and exits when the
//! server goes away (stdin closes). A job that aborts, runs out of memory or hangs kills
//! only its worker; the server records why and moves on to the next asset.

use crate::jobs::{execute, JobRunner, Outcome, PipelineRunner, Task};
use crate::tiles::Estimate;
use crate::wire::ProcessingError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_model::ProgressSnapshot;
use tessera_pipeline::{Budget, Progress};

/// The subcommand the server starts its workers with.
pub const SUBCOMMAND: &str = "job-worker";

/// How jobs are started and held to their limits.
#[derive(Debug, Clone)]
pub struct WorkerProcess {
    /// The `tessera` executable (the server's own).
    pub exe: PathBuf,
    /// Conversion threads per job (`None`: all cores).
    pub threads: Option<usize>,
    /// Most memory a job's process may map; an allocation beyond it fails the job.
    pub memory_bytes: u64,
    /// Longest a job may run.
    pub timeout: Duration,
}

/// What a worker writes on stdout, one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Message {
    Progress(ProgressSnapshot),
    Outcome(Outcome),
    Estimate(Estimate),
}

/// What the worker reads on stdin: the task and how to run it.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    task: Task,
    threads: Option<usize>,
    memory_bytes: u64,
    /// Only read the uploads' headers for an estimate (`…/analysis`).
    #[serde(default)]
    analyse: bool,
}

/// Longest an estimate may take.
const ANALYSIS_LIMIT: Duration = Duration::from_secs(30);

/// Most stderr lines of a worker kept to explain its death.
const STDERR_TAIL_LINES: usize = 40;

impl WorkerProcess {
    /// What the job's readers may size allocations by: most of the process limit, so a
    /// lying header is refused with a reason before the limit is reached.
    pub fn budget(&self) -> Budget {
        Budget {
            memory_bytes: self.memory_bytes / 4 * 3,
        }
    }

    /// Run `task` in a new worker process, publishing its progress into `progress`;
    /// cancelling `progress` kills the worker.
    pub fn run(&self, task: &Task, progress: &Progress) -> Outcome {
        let id = task.id;
        let crashed = |message: String, retry: bool| Outcome::Crashed {
            error: crash_error(&message, stage_of(progress)),
            retry,
        };
        let order = Order {
            task: task.clone(),
            threads: self.threads,
            memory_bytes: self.memory_bytes,
            analyse: false,
        };
        let mut child = match Command::new(&self.exe)
            .arg(SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                return crashed(
                    format!(
                        "the worker process {} could not start: {e}",
                        self.exe.display()
                    ),
                    false,
                )
            }
        };
        // The task goes in on stdin, which then stays open: the worker exits when it
        // closes, i.e. when this process is gone.
        let mut stdin = child.stdin.take();
        let sent = stdin.as_mut().map(|w| {
            serde_json::to_writer(&mut *w, &order)
                .map_err(std::io::Error::other)
                .and_then(|_| w.write_all(b"\n"))
                .and_then(|_| w.flush())
        });
        let (tx, rx) = mpsc::channel::<Message>();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let Some(out) = stdout else { return };
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(m) = serde_json::from_str::<Message>(&line) {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = child.stderr.take();
        let last: Arc<std::sync::Mutex<VecDeque<String>>> = Arc::default();
        {
            let last = last.clone();
            std::thread::spawn(move || {
                let Some(err) = stderr else { return };
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("job {id}: {line}");
                    let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                    if l.len() == STDERR_TAIL_LINES {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            });
        }
        if !matches!(sent, Some(Ok(()))) {
            let _ = child.kill();
        }
        let started = Instant::now();
        let mut outcome = None;
        let mut answered: Option<Instant> = None;
        let mut stopped = None;
        let mut exited: Option<(std::io::Result<std::process::ExitStatus>, Instant)> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Message::Progress(p)) => progress.absorb(&p),
                Ok(Message::Estimate(_)) => {}
                Ok(Message::Outcome(o)) => {
                    outcome = Some(o);
                    answered = Some(Instant::now());
                    // Answered: the worker may go (closing stdin tells it so).
                    drop(stdin.take());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if exited.is_none() {
                match child.try_wait() {
                    Ok(Some(st)) => exited = Some((Ok(st), Instant::now())),
                    Ok(None) => {}
                    Err(e) => exited = Some((Err(e), Instant::now())),
                }
            }
            // Whatever the worker left running must not hold the job once it is gone, or
            // once it has answered.
            if exited
                .as_ref()
                .is_some_and(|(_, t)| t.elapsed() > Duration::from_secs(1))
            {
                break;
            }
            if answered.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
                let _ = child.kill();
                break;
            }
            if stopped.is_none() && progress.is_canceled() {
                let _ = child.kill();
                stopped = Some(Outcome::Canceled);
            }
            if stopped.is_none() && started.elapsed() > self.timeout {
                let _ = child.kill();
                stopped = Some(Outcome::Failed {
                    data: false,
                    error: limit_error(
                        format!(
                            "the job ran longer than its limit of {} s and was stopped",
                            self.timeout.as_secs()
                        ),
                        stage_of(progress),
                        "Split the input, or give jobs more time (tessera serve --job-timeout).",
                    ),
                });
            }
        }
        drop(stdin);
        let status = match exited {
            Some((st, _)) => st,
            None => child.wait(),
        };
        // The worker's last words may still be on their way through the pipe.
        std::thread::sleep(Duration::from_millis(50));
        let _ = reader;
        let last: Vec<String> = last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        if let Some(o) = stopped {
            return o;
        }
        if let Some(o) = outcome {
            return o;
        }
        let out_of_memory = last.iter().any(|l| l.contains("memory allocation of"));
        if out_of_memory {
            return Outcome::Failed {
                data: false,
                error: limit_error(
                    format!(
                        "the job needed more memory than its limit of {:.1} GiB and was stopped",
                        self.memory_bytes as f64 / f64::from(1u32 << 30)
                    ),
                    stage_of(progress),
                    "Check the input (a damaged header can ask for this much), split it, or give jobs more memory (tessera serve --job-memory).",
                ),
            };
        }
        let how = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (_, Some(sig)) => format!("was killed by signal {sig}"),
                    (Some(c), None) => format!("exited with status {c} without an answer"),
                    (None, None) => "ended without an answer".into(),
                }
            }
            Err(e) => format!("could not be waited for: {e}"),
        };
        crashed(format!("the job's worker process {how}"), true)
    }
}

impl WorkerProcess {
    /// Estimate `task`'s output from its uploads' headers, in a worker process of its own.
    pub fn analyse(&self, task: &Task) -> Result<Estimate, String> {
        let order = Order {
            task: task.clone(),
            threads: Some(1),
            memory_bytes: self.memory_bytes,
            analyse: true,
        };
        let mut child = Command::new(&self.exe)
            .arg(SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("the worker process could not start: {e}"))?;
        let mut stdin = child.stdin.take();
        if let Some(w) = stdin.as_mut() {
            let line = serde_json::to_string(&order).map_err(|e| e.to_string())?;
            let _ = w
                .write_all(line.as_bytes())
                .and_then(|_| w.write_all(b"\n"));
        }
        let (tx, rx) = mpsc::channel::<Message>();
        let stdout = child.stdout.take();
        std::thread::spawn(move || {
            let Some(out) = stdout else { return };
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(m) = serde_json::from_str::<Message>(&line) {
                    let _ = tx.send(m);
                }
            }
        });
        let started = Instant::now();
        let result = loop {
            let left = ANALYSIS_LIMIT.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(Message::Estimate(e)) => break Ok(e),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Err(format!("no answer within {} s", ANALYSIS_LIMIT.as_secs()))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err("the worker process stopped without an answer".into())
                }
            }
        };
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        result
    }
}

fn stage_of(progress: &Progress) -> String {
    format!("{:?}", progress.snapshot().stage).to_ascii_uppercase()
}

fn crash_error(message: &str, stage: String) -> ProcessingError {
    ProcessingError {
        code: "WORKER_CRASHED".into(),
        message: message.into(),
        file: None,
        stage,
        mitigation: "Check the input (a damaged or hostile file can do this), or give the server more memory (tessera serve --job-memory); the server log has the details.".into(),
    }
}

fn limit_error(message: String, stage: String, mitigation: &str) -> ProcessingError {
    ProcessingError {
        code: "LIMIT_EXCEEDED".into(),
        message,
        file: None,
        stage,
        mitigation: mitigation.into(),
    }
}

fn emit(m: &Message) -> std::io::Result<()> {
    let line = serde_json::to_string(m).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The worker's `main`: one job from stdin, its progress and outcome to stdout.
pub fn worker_main() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().take(16 << 20).read_line(&mut line) {
        eprintln!("error: no job on stdin: {e}");
        return ExitCode::from(2);
    }
    let order: Order = match serde_json::from_str(&line) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: the job on stdin is not readable: {e}");
            return ExitCode::from(2);
        }
    };
    // The limit covers every mapping the process makes (heap and thread stacks), so a
    // lying header that slips past the readers' checks fails one allocation, not the
    // machine.
    if let Err(e) = rlimit::setrlimit(
        rlimit::Resource::DATA,
        order.memory_bytes,
        order.memory_bytes,
    ) {
        eprintln!("warning: cannot limit the worker's memory: {e}");
    }
    // The server closes stdin when it goes away: stop with it.
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut input = std::io::stdin().lock();
        while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(70);
    });
    if order.analyse {
        let sources = order
            .task
            .data_dir
            .join("sources")
            .join(order.task.id.to_string());
        let files = crate::util::list_files(&sources);
        let bytes = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .fold(0u64, |sum, m| sum.saturating_add(m.len()));
        let e = crate::tiles::estimate(&order.task.options, &files, bytes);
        return match emit(&Message::Estimate(e)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(70),
        };
    }
    let runner = match PipelineRunner::new(order.threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start worker threads: {e}");
            return ExitCode::from(3);
        }
    };
    let progress = Arc::new(Progress::new());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if emit(&Message::Progress(progress.snapshot())).is_err() {
                    std::process::exit(70);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let outcome = execute(&order.task, &runner as &dyn JobRunner, &progress);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticker.join();
    let _ = emit(&Message::Progress(progress.snapshot()));
    match emit(&Message::Outcome(outcome)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(70),
    }
}
