//! tessera-cli: the `tessera` command. Flags in, a `JobSpec` out to the pipeline; progress
//! drawn on the terminal; errors mapped to exit codes (0 ok, 1 bad input, 2 usage,
//! 3 internal error, 4 environment: disk full, permissions, 130 cancelled). The only crate
//! that prints.

mod convert;
mod paths;
mod progress_view;
mod serve;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Local tiling engine for 3D geospatial data: point clouds, CityGML, glTF models, \
             imagery and DEMs into 3D Tiles, quantized-mesh terrain and TMS imagery, and a \
             Cesium-ion-style server for them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const CONVERT_EXAMPLES: &str = "\
Examples:
  tessera convert survey.laz -o survey/ --input-crs EPSG:28992
  tessera convert city.zip -o city/ --lod 2 --clamp-to-terrain dem.tif
  tessera convert truck.glb -o truck/ --position 7.1,50.7,120 --heading 45
  tessera convert ortho.tif -o ortho/ --to imagery --format webp
  tessera convert dem.tif -o terrain/ --to terrain --max-error 0.5

The route is read from the files (CityGML first, then a glTF model, then point clouds)
or chosen by --to; a flag the route does not read is an error.";

#[derive(Subcommand)]
enum Command {
    /// Convert LAS/LAZ point clouds, CityGML, glTF/GLB models, GeoTIFF imagery or DEMs
    /// into tiles
    #[command(after_help = CONVERT_EXAMPLES)]
    Convert(Box<convert::ConvertArgs>),
    /// Run the Cesium-ion-style server: assets, uploads, conversion jobs, tokens, tiles
    Serve(serve::ServeArgs),
    /// Print a shell completion script (e.g. `tessera completions bash > /etc/bash_completion.d/tessera`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into DIR
    Man {
        /// Folder for tessera.1, tessera-convert.1, tessera-serve.1, …
        dir: Option<PathBuf>,
    },
    /// One server job, read from stdin (started by `tessera serve`, not by hand)
    #[command(name = "job-worker", hide = true)]
    JobWorker,
}

fn man(dir: Option<PathBuf>) -> ExitCode {
    let cmd = Cli::command();
    let written = match &dir {
        Some(d) => std::fs::create_dir_all(d).and_then(|_| clap_mangen::generate_to(cmd, d)),
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let at = dir.map_or("standard output".into(), |d| d.display().to_string());
            eprintln!(
                "error: {at}: cannot write the manual: {e}. {}",
                tessera_pipeline::error::environment_hint(&e)
            );
            ExitCode::from(4)
        }
    }
}

pub fn main() -> ExitCode {
    // A decoder's panic on a corrupt file is reported as that file's error, not as a crash.
    tessera_pipeline::contain::quiet_contained_panics();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Convert(args) => convert::run(*args, matches.subcommand_matches("convert")),
        Command::Serve(args) => serve::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tessera",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(dir),
        Command::JobWorker => tessera_server::worker::worker_main(),
    }
}
