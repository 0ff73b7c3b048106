//! tessera-cli: the `tessera` command. Flags in, a `JobSpec` out to the pipeline; progress
//! drawn on the terminal; errors mapped to exit codes (0 ok, 1 bad input, 2 usage,
//! 3 internal error, 4 environment: disk full, permissions, 130 cancelled). The only crate
//! that prints.

mod convert;
mod paths;
mod progress_view;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Local tiling engine for 3D geospatial data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert point clouds, glTF models, GeoTIFF imagery or DEMs into tiles
    Convert(Box<convert::ConvertArgs>),
    /// Run the Cesium-ion-style server: assets, uploads, conversion jobs, tokens, tiles
    Serve(serve::ServeArgs),
    /// One server job, read from stdin (started by `tessera serve`, not by hand)
    #[command(name = "job-worker", hide = true)]
    JobWorker,
}

pub fn main() -> ExitCode {
    // A decoder's panic on a corrupt file is reported as that file's error, not as a crash.
    tessera_pipeline::contain::quiet_contained_panics();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Convert(args) => convert::run(*args),
        Command::Serve(args) => serve::run(args),
        Command::JobWorker => tessera_server::worker::worker_main(),
    }
}
