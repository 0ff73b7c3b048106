//! tessera-cli: the `tessera` command. Flags in, a `JobSpec` out to the pipeline; progress
//! drawn on the terminal; errors mapped to exit codes (0 ok, 1 bad input, 2 usage,
//! 3 internal error, 130 cancelled). The only crate that prints.

mod convert;
mod progress_view;

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
    /// Convert LAS/LAZ point clouds into a 3D Tiles tileset
    Convert(convert::ConvertArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Convert(args) => convert::run(args),
    }
}
