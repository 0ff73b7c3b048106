//! `tessera serve`: the ion-style server on one address, state under `--data`.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_pipeline::Budget;
use tessera_server::worker::WorkerProcess;
use tessera_server::{AuthMode, Config};

#[derive(Clone, Copy, ValueEnum)]
enum AuthArg {
    /// Every request acts as the local account (default on loopback addresses)
    Disabled,
    /// API calls need a token; tiles need an endpoint token
    Token,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Folder for the database, uploads and tiles
    #[arg(long, default_value = "tessera-data")]
    data: PathBuf,
    /// Authentication (default: disabled on loopback, token elsewhere or when
    /// TESSERA_ADMIN_TOKEN is set)
    #[arg(long, value_enum)]
    auth: Option<AuthArg>,
    /// Allow --auth disabled on a non-loopback address
    #[arg(long)]
    allow_insecure_remote: bool,
    /// Base URL clients use to reach this server (default: from each request's Host)
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Worker threads for conversion jobs (default: all cores)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Most memory one job's worker process may use, in GiB (default: three quarters of
    /// this machine's memory); a job that needs more fails with LIMIT_EXCEEDED
    #[arg(long, value_name = "GIB")]
    job_memory: Option<f64>,
    /// Longest one job may run, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    job_timeout: u64,
    /// CesiumJS build folder the dashboard's viewer loads (default: $TESSERA_CESIUM_DIR,
    /// else node_modules/cesium/Build/Cesium under the working directory or above the
    /// executable, as `npm ci` in the checkout installs it)
    #[arg(long, value_name = "DIR")]
    cesium_dir: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let admin_env = std::env::var("TESSERA_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let auth = match (args.auth, &admin_env) {
        (Some(AuthArg::Disabled), _) => AuthMode::Disabled,
        (Some(AuthArg::Token), _) | (None, Some(_)) => AuthMode::Token,
        (None, None) if args.addr.ip().is_loopback() => AuthMode::Disabled,
        (None, None) => AuthMode::Token,
    };
    if auth == AuthMode::Disabled && !args.addr.ip().is_loopback() && !args.allow_insecure_remote {
        eprintln!(
            "error: --auth disabled on {} would let anyone on the network read and change every asset; use --auth token, or pass --allow-insecure-remote",
            args.addr
        );
        return ExitCode::from(2);
    }
    let mut config = Config::new(args.data.clone(), auth);
    config.public_url = args.public_url.clone();
    config.admin_token = admin_env;
    config.cesium_dir = match args.cesium_dir.clone().or_else(|| {
        std::env::var_os("TESSERA_CESIUM_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    }) {
        Some(d) if d.join("Cesium.js").is_file() => Some(d),
        Some(d) => {
            eprintln!(
                "error: --cesium-dir {}: no Cesium.js there (give node_modules/cesium/Build/Cesium)",
                d.display()
            );
            return ExitCode::from(2);
        }
        None => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let exe = std::env::current_exe().ok();
            tessera_server::web::find_cesium_dir(&cwd, exe.as_deref())
        }
    };
    let (state, new_admin) = match tessera_server::open_state(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    if let Some(t) = new_admin {
        eprintln!(
            "admin token (shown once; also in {}):\n{t}",
            args.data.join("admin-token.txt").display()
        );
    }
    if args.threads == Some(0) {
        eprintln!("error: --threads must be at least 1");
        return ExitCode::from(2);
    }
    let memory_bytes = match args.job_memory {
        None => Budget::default().memory_bytes,
        Some(g) if g.is_finite() && (0.25..=1_048_576.0).contains(&g) => {
            (g * f64::from(1u32 << 30)) as u64
        }
        Some(_) => {
            eprintln!("error: --job-memory is GiB, from 0.25 up");
            return ExitCode::from(2);
        }
    };
    if args.job_timeout == 0 {
        eprintln!("error: --job-timeout must be at least 1 second");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the tessera executable to run jobs with: {e}");
            return ExitCode::from(3);
        }
    };
    let executor = WorkerProcess {
        exe,
        threads: args.threads,
        memory_bytes,
        timeout: std::time::Duration::from_secs(args.job_timeout),
    };
    let worker = match tessera_server::start_worker(&state, executor) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot start the job thread: {e}");
            return ExitCode::from(3);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let app = tessera_server::router(state.clone());
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        let mode = match auth {
            AuthMode::Disabled => "auth disabled",
            AuthMode::Token => "token auth",
        };
        let local = listener.local_addr()?;
        eprintln!(
            "tessera {} serving http://{local} ({mode}; data in {})",
            env!("CARGO_PKG_VERSION"),
            args.data.display()
        );
        let host = if local.ip().is_unspecified() {
            format!("127.0.0.1:{}", local.port())
        } else {
            local.to_string()
        };
        let viewer = if state.config.cesium_dir.is_some() {
            ""
        } else {
            " (3D viewer off: CesiumJS not found; run `npm ci` in the checkout or pass --cesium-dir)"
        };
        let sign_in = if auth == AuthMode::Token {
            "; sign in with a token that has assets:list"
        } else {
            ""
        };
        eprintln!("dashboard: http://{host}/{sign_in}{viewer}");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    // Running jobs are cancelled and start again from scratch on the next start.
    state.jobs.shutdown();
    let _ = worker.join();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", args.addr);
            ExitCode::from(3)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: finishing requests, stopping the current job");
}
