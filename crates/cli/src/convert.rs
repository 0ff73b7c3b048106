//! `tessera convert`.

use crate::progress_view::ProgressView;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tessera_model::{CrsSpec, TilingScheme};
use tessera_pipeline::imagery::{ImageFormat, ImageryOptions, Resampling};
use tessera_pipeline::terrain::TerrainOptions;
use tessera_pipeline::{
    CityOptions, ErrorKind, JobReport, JobSpec, ModelOptions, PointCompression, Progress, Source,
    Target, TilesFormat, TilingOptions, TreeLayout,
};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// 3D Tiles from LAS/LAZ point clouds, CityGML (.gml/.xml, folders, zips) or a glTF/GLB model
    #[value(name = "3dtiles")]
    Tiles3d,
    /// TMS imagery pyramid from GeoTIFFs
    Imagery,
    /// quantized-mesh terrain from GeoTIFF DEMs
    Terrain,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// 3D Tiles 1.1 with glTF (.glb) tiles
    #[value(name = "3dtiles")]
    Tiles11,
    /// 3D Tiles 1.0 with .pnts (points) or .b3dm (models) tiles, for older clients
    #[value(name = "3dtiles-1.0")]
    Tiles10,
    /// PNG imagery tiles
    Png,
    /// JPEG imagery tiles (no transparency)
    #[value(alias = "jpeg")]
    Jpg,
    /// Lossless WebP imagery tiles
    Webp,
    /// JPEG for opaque imagery tiles, PNG where transparency is needed
    Auto,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TreeArg {
    Auto,
    Implicit,
    Explicit,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// Quantized positions and meshopt-compressed streams (3D Tiles 1.0: quantized positions)
    Meshopt,
    /// Float positions and plain streams
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    /// EPSG:3857 web mercator, one tile at zoom 0 (like gdal2tiles)
    Mercator,
    /// EPSG:4326, two tiles at zoom 0 (Cesium's geographic scheme, gdal2tiles --tmscompatible)
    Geodetic,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResamplingArg {
    #[value(alias = "near")]
    Nearest,
    Bilinear,
    Cubic,
    Average,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Input files or directories (searched recursively); the format is read from the content
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output directory (or .3tz file with --archive)
    #[arg(short, long)]
    output: PathBuf,
    /// CRS of the inputs, overriding what they declare: EPSG:n, EPSG:h+v, WKT or a PROJ string
    #[arg(long, value_name = "CRS")]
    input_crs: Option<String>,
    /// Vertical grid (.gtx/.gsb/.byn) that turns orthometric heights into ellipsoidal ones
    #[arg(long, value_name = "GRID")]
    geoid: Option<PathBuf>,
    /// What to make: 3D Tiles (from point clouds, CityGML or a model), imagery tiles or
    /// terrain (from GeoTIFFs)
    #[arg(long, value_enum, default_value = "3dtiles")]
    to: TargetArg,
    /// Output flavour: 3dtiles or 3dtiles-1.0 for 3D Tiles; png, jpg, webp or auto for
    /// imagery (default: 3dtiles / png)
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Write one .3tz archive instead of a directory
    #[arg(long)]
    archive: bool,
    /// Worker threads (default: all cores)
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Replace the output if it exists (only a tileset, terrain or imagery folder or a .3tz
    /// that Tessera wrote, never other files)
    #[arg(long)]
    force: bool,
    /// Let textures, buffers and other files the inputs refer to come from outside the
    /// input's folder (default: only files inside it are read)
    #[arg(long)]
    allow_outside_refs: bool,
    /// Directory for temporary files (default: next to the output)
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// Write the job report as JSON to this file
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Print only errors
    #[arg(short, long)]
    quiet: bool,
    /// Print the job report as JSON on standard output instead of the summary lines
    #[arg(long)]
    json: bool,
    /// Most points in one tile before it is split
    #[arg(help_heading = "Point clouds", long, default_value_t = TilingOptions::default().max_points_per_tile, value_name = "N")]
    max_points_per_tile: usize,
    /// Thin the cloud: keep one point per cube of this edge in metres (default: keep all)
    #[arg(help_heading = "Point clouds", long, value_name = "METRES")]
    sample_spacing: Option<f64>,
    /// Meshopt quantizes positions (steps of at most 1 mm) and compresses
    /// every attribute (EXT_meshopt_compression; 3D Tiles 1.0: POSITION_QUANTIZED); none
    /// writes plain floats any glTF reader takes
    #[arg(
        help_heading = "Point clouds",
        long,
        value_enum,
        default_value = "meshopt"
    )]
    compression: CompressionArg,
    /// Implicit writes a 3D Tiles 1.1 implicit octree (a small tileset.json
    /// and subtree files), explicit lists every tile in tileset.json; auto is implicit
    /// above 2000 tiles. 3D Tiles 1.0 output is always explicit
    #[arg(
        help_heading = "Point clouds",
        long,
        value_enum,
        default_value = "auto"
    )]
    tiling: TreeArg,
    /// Per-point attributes to keep, comma-separated: rgb, intensity,
    /// classification, returns, gps_time and extra-bytes dimension names (e.g. Deviation);
    /// `none` keeps positions only. Default: all (up to 16 extra values)
    #[arg(
        help_heading = "Point clouds",
        long,
        value_name = "LIST",
        value_delimiter = ','
    )]
    attributes: Option<Vec<String>>,
    /// Draw this LoD (0-4) where an object has it, else the object's highest
    #[arg(help_heading = "CityGML", long, value_name = "N")]
    lod: Option<u8>,
    /// Move each building vertically so its lowest point sits on this terrain
    /// (a DEM GeoTIFF, or a quantized-mesh terrain folder written by `--to terrain`)
    #[arg(help_heading = "CityGML", long, value_name = "DEM|DIR")]
    clamp_to_terrain: Option<PathBuf>,
    /// Appearance theme to draw (default: the first with textures)
    #[arg(help_heading = "CityGML", long, value_name = "NAME")]
    theme: Option<String>,
    /// Most triangles in one tile; larger models are split into
    /// levels of detail
    #[arg(help_heading = "CityGML and models", long, default_value_t = ModelOptions::default().max_triangles_per_tile, value_name = "N")]
    max_triangles_per_tile: usize,
    /// One factor from model units to metres (default 1)
    #[arg(help_heading = "Models (glTF/GLB)", long, value_name = "FACTOR")]
    scale: Option<String>,
    /// Where the model's origin goes: longitude and latitude in degrees, ellipsoidal
    /// height in metres
    #[arg(
        help_heading = "Models (glTF/GLB)",
        long,
        value_name = "LON,LAT,HEIGHT",
        allow_hyphen_values = true
    )]
    position: Option<String>,
    /// Turn clockwise from north, in degrees (as CesiumJS's heading)
    #[arg(
        help_heading = "Models (glTF/GLB)",
        long,
        default_value_t = 0.0,
        value_name = "DEG",
        allow_hyphen_values = true
    )]
    heading: f64,
    /// Pitch in degrees (as CesiumJS's)
    #[arg(
        help_heading = "Models (glTF/GLB)",
        long,
        default_value_t = 0.0,
        value_name = "DEG",
        allow_hyphen_values = true
    )]
    pitch: f64,
    /// Roll in degrees (as CesiumJS's)
    #[arg(
        help_heading = "Models (glTF/GLB)",
        long,
        default_value_t = 0.0,
        value_name = "DEG",
        allow_hyphen_values = true
    )]
    roll: f64,
    /// Tiling profile
    #[arg(help_heading = "Imagery", long, value_enum, default_value = "mercator")]
    profile: ProfileArg,
    /// Resampling
    #[arg(help_heading = "Imagery", long, value_enum, default_value = "bilinear")]
    resampling: ResamplingArg,
    /// Number rows from the north in folder names (XYZ / slippy map) instead of TMS
    #[arg(help_heading = "Imagery", long)]
    xyz: bool,
    /// Map values MIN..MAX of 16-bit or float rasters onto 0..255 (default: the 2nd-98th
    /// percentile)
    #[arg(help_heading = "Imagery", long, value_name = "MIN,MAX")]
    stretch: Option<String>,
    /// JPEG quality
    #[arg(
        help_heading = "Imagery",
        long,
        default_value_t = 85,
        value_name = "1-100"
    )]
    quality: u8,
    /// Tile edge in pixels
    #[arg(
        help_heading = "Imagery",
        long,
        default_value_t = 256,
        value_name = "PX"
    )]
    tile_size: u32,
    /// Also write fully transparent tiles inside the bounds
    #[arg(help_heading = "Imagery", long)]
    write_empty: bool,
    /// Also write WMTSCapabilities.xml (needs --xyz)
    #[arg(help_heading = "Imagery", long)]
    wmts: bool,
    /// Coarsest zoom (default: where the raster fits one tile)
    #[arg(help_heading = "Imagery and terrain", long, value_name = "Z")]
    min_zoom: Option<u8>,
    /// Finest zoom (default: the raster's resolution, never scaled up)
    #[arg(help_heading = "Imagery and terrain", long, value_name = "Z")]
    max_zoom: Option<u8>,
    /// Largest height error at the finest zoom in metres, doubling per coarser zoom
    /// (default: half a DEM pixel)
    #[arg(help_heading = "Terrain", long, value_name = "METRES")]
    max_error: Option<f64>,
    /// Quantized-mesh extensions to write: octvertexnormals, watermask, metadata
    #[arg(
        help_heading = "Terrain",
        long,
        value_delimiter = ',',
        default_value = "octvertexnormals,metadata"
    )]
    extensions: Vec<String>,
    /// 8-bit raster whose non-zero pixels are water, for the watermask extension
    #[arg(help_heading = "Terrain", long, value_name = "FILE")]
    water_mask: Option<PathBuf>,
}

/// What a job makes, as far as its flags go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Points,
    City,
    Model,
    Imagery,
    Terrain,
}

impl Route {
    fn describe(self) -> &'static str {
        match self {
            Route::Points => "a point-cloud job (LAS/LAZ to 3D Tiles)",
            Route::City => "a CityGML job",
            Route::Model => "a glTF model job",
            Route::Imagery => "an imagery job (--to imagery)",
            Route::Terrain => "a terrain job (--to terrain)",
        }
    }
}

/// Flags that only some routes read (by clap id), with those routes; the rest apply to
/// every job.
const ROUTE_FLAGS: &[(&str, &[Route])] = {
    use Route::*;
    &[
        ("format", &[Points, City, Model, Imagery]),
        ("archive", &[Points, City, Model]),
        ("geoid", &[Points, City, Model]),
        ("allow_outside_refs", &[City, Model]),
        ("max_points_per_tile", &[Points]),
        ("sample_spacing", &[Points]),
        ("compression", &[Points]),
        ("tiling", &[Points]),
        ("attributes", &[Points]),
        ("lod", &[City]),
        ("clamp_to_terrain", &[City]),
        ("theme", &[City]),
        ("max_triangles_per_tile", &[City, Model]),
        ("position", &[Model]),
        ("heading", &[Model]),
        ("pitch", &[Model]),
        ("roll", &[Model]),
        ("scale", &[Model]),
        ("stretch", &[Imagery]),
        ("profile", &[Imagery]),
        ("resampling", &[Imagery]),
        ("xyz", &[Imagery]),
        ("quality", &[Imagery]),
        ("tile_size", &[Imagery]),
        ("write_empty", &[Imagery]),
        ("wmts", &[Imagery]),
        ("min_zoom", &[Imagery, Terrain]),
        ("max_zoom", &[Imagery, Terrain]),
        ("max_error", &[Terrain]),
        ("extensions", &[Terrain]),
        ("water_mask", &[Terrain]),
    ]
};

/// The route a job takes: from `--to`, and for 3D Tiles from the inputs (CityGML first,
/// then a model, then point clouds, as the pipeline decides). `None` where the inputs
/// cannot be routed: the job then reports why.
fn route_of(args: &ConvertArgs) -> Option<Route> {
    match args.to {
        TargetArg::Imagery => Some(Route::Imagery),
        TargetArg::Terrain => Some(Route::Terrain),
        TargetArg::Tiles3d => {
            let spec = JobSpec::new(args.inputs.clone(), args.output.clone());
            match tessera_pipeline::route::route_tiles(&spec).ok()?.source {
                Source::PointCloud => Some(Route::Points),
                Source::CityModel => Some(Route::City),
                Source::Model => Some(Route::Model),
            }
        }
    }
}

/// A flag given on the command line that `route` does not read is a usage error naming
/// the route and the routes that read it.
fn check_route_flags(route: Route, given: impl Fn(&str) -> bool) -> Result<(), ExitCode> {
    for (id, routes) in ROUTE_FLAGS {
        if given(id) && !routes.contains(&route) {
            let flag = format!("--{}", id.replace('_', "-"));
            let users: Vec<&str> = routes.iter().map(|r| r.describe()).collect();
            return Err(usage(format!(
                "{flag} does not apply to {}: it is for {}",
                route.describe(),
                users.join(" or ")
            )));
        }
    }
    Ok(())
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn spec_from(args: &ConvertArgs) -> Result<JobSpec, ExitCode> {
    let mut spec = JobSpec::new(args.inputs.clone(), args.output.clone());
    if let Some(c) = &args.input_crs {
        spec.input_crs = Some(CrsSpec::parse(c).map_err(|e| usage(format!("--input-crs: {e}")))?);
    }
    if let Some(s) = args.sample_spacing {
        if !(s.is_finite() && s > 0.0 && s <= 100_000.0) {
            return Err(usage(
                "--sample-spacing must be a positive number of metres, at most 100000",
            ));
        }
    }
    if !(1_000..=100_000_000).contains(&args.max_points_per_tile) {
        return Err(usage("--max-points-per-tile must be 1000 to 100000000"));
    }
    if args.archive && args.output.extension().is_none_or(|e| e != "3tz") {
        return Err(usage("with --archive, -o must name a .3tz file"));
    }
    // What the job reads besides its inputs must survive it too.
    let read: Vec<PathBuf> = args
        .inputs
        .iter()
        .chain(args.clamp_to_terrain.iter())
        .chain(args.water_mask.iter())
        .chain(args.geoid.iter())
        .cloned()
        .collect();
    crate::paths::check_paths(
        &read,
        &args.output,
        args.report.as_deref(),
        args.temp_dir.as_deref(),
    )
    .map_err(usage)?;
    if std::fs::symlink_metadata(&args.output).is_ok() {
        let empty_dir = std::fs::read_dir(&args.output).is_ok_and(|mut d| d.next().is_none());
        if !empty_dir && !args.force {
            return Err(usage(format!(
                "{} exists; pass --force to replace it",
                args.output.display()
            )));
        }
        if !empty_dir && !tessera_pipeline::sink::is_tessera_output(&args.output) {
            return Err(usage(format!(
                "{} exists and is not a tileset, terrain or imagery output (no {} at its root, not a .3tz); --force only replaces what Tessera wrote. Remove it yourself or choose another -o",
                args.output.display(),
                tessera_pipeline::sink::ROOT_FILES.join(", ")
            )));
        }
    }
    spec.geoid = args.geoid.clone();
    match args.to {
        TargetArg::Tiles3d => {
            spec.target = Target::Tiles3d;
            spec.format = match args.format {
                None | Some(FormatArg::Tiles11) => TilesFormat::Tiles11,
                Some(FormatArg::Tiles10) => TilesFormat::Tiles10,
                Some(_) => return Err(usage("--format png/jpg/webp/auto is for --to imagery")),
            };
            if spec.format == TilesFormat::Tiles10 && args.tiling == TreeArg::Implicit {
                return Err(usage(
                    "--tiling implicit needs 3D Tiles 1.1 (3D Tiles 1.0 has no implicit tiling): drop --format 3dtiles-1.0 or use --tiling explicit",
                ));
            }
            spec.model = model_options(args)?;
            if args.lod.is_some_and(|l| l > 4) {
                return Err(usage("--lod is 0 to 4"));
            }
            spec.city = CityOptions {
                lod: args.lod,
                clamp_to_terrain: args.clamp_to_terrain.clone(),
                theme: args.theme.clone(),
            };
        }
        TargetArg::Imagery => {
            spec.target = Target::Imagery;
            spec.imagery = imagery_options(args)?;
        }
        TargetArg::Terrain => {
            spec.target = Target::Terrain;
            spec.terrain = terrain_options(args)?;
        }
    }
    spec.allow_outside_refs = args.allow_outside_refs;
    spec.archive = args.archive;
    spec.tiling.max_points_per_tile = args.max_points_per_tile;
    spec.tiling.sample_spacing_m = args.sample_spacing;
    spec.tiling.tree = match args.tiling {
        TreeArg::Auto => TreeLayout::Auto,
        TreeArg::Implicit => TreeLayout::Implicit,
        TreeArg::Explicit => TreeLayout::Explicit,
    };
    spec.tiling.compression = match args.compression {
        CompressionArg::Meshopt => PointCompression::Meshopt,
        CompressionArg::None => PointCompression::None,
    };
    spec.tiling.attributes = args.attributes.clone();
    spec.temp_dir = args.temp_dir.clone();
    Ok(spec)
}

fn numbers(flag: &str, text: &str, n: usize) -> Result<Vec<f64>, ExitCode> {
    let v: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| usage(format!("{flag} takes {n} comma-separated numbers")))?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        return Err(usage(format!("{flag} takes {n} comma-separated numbers")));
    }
    Ok(v)
}

/// Model units to metres: from micrometres to thousands of kilometres.
const MODEL_SCALE: (f64, f64) = (1e-6, 1e6);

fn model_options(args: &ConvertArgs) -> Result<ModelOptions, ExitCode> {
    let mut o = ModelOptions {
        heading_deg: args.heading,
        pitch_deg: args.pitch,
        roll_deg: args.roll,
        max_triangles_per_tile: args.max_triangles_per_tile,
        ..ModelOptions::default()
    };
    if let Some(p) = &args.position {
        let v = numbers("--position", p, 3)?;
        tessera_model::check_placement(v[0], v[1], v[2])
            .map_err(|e| usage(format!("--position is LON,LAT,HEIGHT: {e}")))?;
        o.position = Some([v[0], v[1], v[2]]);
    }
    if let Some(s) = &args.scale {
        let v = numbers("--scale", s, 1)?;
        if !(MODEL_SCALE.0..=MODEL_SCALE.1).contains(&v[0]) {
            return Err(usage(format!(
                "--scale for a model is one factor from model units to metres, {} to {}",
                MODEL_SCALE.0, MODEL_SCALE.1
            )));
        }
        o.scale = v[0];
    }
    if ![args.heading, args.pitch, args.roll]
        .iter()
        .all(|v| v.is_finite() && v.abs() <= 360.0)
    {
        return Err(usage("--heading/--pitch/--roll take degrees, -360 to 360"));
    }
    if !(1_000..=100_000_000).contains(&args.max_triangles_per_tile) {
        return Err(usage("--max-triangles-per-tile must be 1000 to 100000000"));
    }
    Ok(o)
}

fn terrain_options(args: &ConvertArgs) -> Result<TerrainOptions, ExitCode> {
    if args.archive || args.format.is_some() {
        return Err(usage(
            "terrain is written as a directory of .terrain tiles; drop --archive / --format",
        ));
    }
    if args.min_zoom.is_some_and(|z| z > 0) {
        return Err(usage(
            "terrain always starts at zoom 0: CesiumTerrainProvider needs every parent tile",
        ));
    }
    if let Some(e) = args.max_error {
        if !(e.is_finite() && e > 0.0 && e <= 100_000.0) {
            return Err(usage(
                "--max-error must be a positive number of metres, at most 100000",
            ));
        }
    }
    if args.max_zoom.is_some_and(|z| z > 22) {
        return Err(usage("terrain zooms go from 0 to 22"));
    }
    let mut opts = TerrainOptions {
        max_zoom: args.max_zoom,
        max_error_m: args.max_error,
        normals: false,
        watermask: args.water_mask.is_some(),
        water_mask: args.water_mask.clone(),
        metadata: false,
    };
    for e in &args.extensions {
        match e.trim() {
            "octvertexnormals" | "normals" => opts.normals = true,
            "watermask" => opts.watermask = true,
            "metadata" => opts.metadata = true,
            "" | "none" => {}
            other => {
                return Err(usage(format!(
                    "unknown terrain extension `{other}` (octvertexnormals, watermask, metadata)"
                )))
            }
        }
    }
    Ok(opts)
}

fn imagery_options(args: &ConvertArgs) -> Result<ImageryOptions, ExitCode> {
    if args.archive {
        return Err(usage(
            "--archive is for 3D Tiles; imagery is written as a directory",
        ));
    }
    let format = match args.format {
        None | Some(FormatArg::Png) => ImageFormat::Png,
        Some(FormatArg::Jpg) => ImageFormat::Jpeg,
        Some(FormatArg::Webp) => ImageFormat::Webp,
        Some(FormatArg::Auto) => ImageFormat::Auto,
        Some(_) => return Err(usage("--format for imagery is png, jpg, webp or auto")),
    };
    let scale = match &args.stretch {
        None => None,
        Some(s) => match numbers("--stretch", s, 2)?.as_slice() {
            [a, b] if b > a => Some((*a, *b)),
            _ => return Err(usage("--stretch takes MIN,MAX with MIN < MAX")),
        },
    };
    if !(1..=100).contains(&args.quality) {
        return Err(usage("--quality must be 1..100"));
    }
    if !(64..=2048).contains(&args.tile_size) || !args.tile_size.is_power_of_two() {
        return Err(usage("--tile-size must be a power of two from 64 to 2048"));
    }
    for z in [args.min_zoom, args.max_zoom].into_iter().flatten() {
        if z > 24 {
            return Err(usage("zoom levels go from 0 to 24"));
        }
    }
    if let (Some(a), Some(b)) = (args.min_zoom, args.max_zoom) {
        if a > b {
            return Err(usage("--min-zoom is above --max-zoom"));
        }
    }
    if args.wmts && !args.xyz {
        return Err(usage(
            "--wmts needs --xyz: WMTS counts tile rows from the north, TMS folders from the south",
        ));
    }
    Ok(ImageryOptions {
        profile: match args.profile {
            ProfileArg::Mercator => TilingScheme::WebMercatorQuad,
            ProfileArg::Geodetic => TilingScheme::GeographicQuad,
        },
        resampling: match args.resampling {
            ResamplingArg::Nearest => Resampling::Nearest,
            ResamplingArg::Bilinear => Resampling::Bilinear,
            ResamplingArg::Cubic => Resampling::Cubic,
            ResamplingArg::Average => Resampling::Average,
        },
        format,
        quality: args.quality,
        min_zoom: args.min_zoom,
        max_zoom: args.max_zoom,
        xyz: args.xyz,
        scale,
        tile_px: args.tile_size,
        write_empty: args.write_empty,
        wmts: args.wmts,
    })
}

/// Run `tessera convert`; `matches` tell which flags were given on the command line.
pub fn run(args: ConvertArgs, matches: Option<&ArgMatches>) -> ExitCode {
    let given =
        |id: &str| matches.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine));
    // Routing 3D Tiles jobs reads the inputs' heads, which the job does again: only
    // when a flag that some route does not read was given.
    if ROUTE_FLAGS.iter().any(|(id, _)| given(id)) {
        if let Some(route) = route_of(&args) {
            if let Err(code) = check_route_flags(route, given) {
                return code;
            }
        }
    }
    let spec = match spec_from(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut pool = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("tessera-{i}"));
    if let Some(n) = args.threads {
        if !(1..=1024).contains(&n) {
            return usage("--threads must be 1 to 1024");
        }
        pool = pool.num_threads(n);
    }
    let pool = match pool.build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start worker threads: {e}");
            return ExitCode::from(3);
        }
    };
    let progress = Arc::new(Progress::new());
    {
        // Ctrl-C, SIGTERM and SIGHUP stop the job at its next boundary and remove what it
        // staged; a second signal exits at once (a later run removes the leftovers).
        let p = progress.clone();
        let _ = ctrlc::set_handler(move || {
            if p.is_canceled() {
                std::process::exit(130);
            }
            p.cancel();
        });
    }
    let view = (!args.quiet).then(|| ProgressView::start(progress.clone()));
    let started = std::time::Instant::now();
    let result = pool.install(|| tessera_pipeline::run(&spec, &progress));
    if let Some(v) = view {
        v.stop();
    }
    match result {
        Ok(report) => {
            if let Some(path) = &args.report {
                let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(path, json) {
                    eprintln!(
                        "error: {}: cannot write the report: {e}. {}",
                        path.display(),
                        tessera_pipeline::error::environment_hint(&e)
                    );
                    return ExitCode::from(4);
                }
            }
            if args.json {
                if !args.quiet {
                    print_warnings(&report);
                }
                let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                println!("{json}");
            } else if !args.quiet {
                print_warnings(&report);
                print_report(&report, started.elapsed());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e.kind() {
                ErrorKind::Data => ExitCode::from(1),
                ErrorKind::Internal => ExitCode::from(3),
                ErrorKind::Environment => ExitCode::from(4),
                ErrorKind::Canceled => ExitCode::from(130),
            }
        }
    }
}

fn print_warnings(r: &JobReport) {
    for w in &r.warnings {
        eprintln!("warning: {}", w.message);
    }
    if r.warnings_dropped > 0 {
        eprintln!("warning: {} more warnings not shown", r.warnings_dropped);
    }
}

fn print_report(r: &JobReport, took: std::time::Duration) {
    let secs = took.as_secs_f64();
    if r.objects_read > 0 {
        for i in &r.inputs {
            println!(
                "  {}: {}, CRS {} (from {})",
                i.path.display(),
                i.model,
                i.crs,
                i.crs_source
            );
        }
        println!(
            "wrote {} city objects ({} triangles) in {} tiles ({} levels, {:.1} MB) to {} in {:.1} s ({:.0} objects/s)",
            r.features_written,
            r.triangles_written,
            r.tiles,
            u32::from(r.max_level) + 1,
            r.bytes_written as f64 / 1e6,
            r.output.display(),
            secs,
            r.objects_read as f64 / secs.max(1e-9)
        );
        let e = r.extent_deg;
        println!(
            "extent: lon {:.6}..{:.6}, lat {:.6}..{:.6}",
            e[0], e[2], e[1], e[3]
        );
        return;
    }
    if r.triangles_read > 0 {
        for i in &r.inputs {
            println!(
                "  {}: {}, placed by {} ({})",
                i.path.display(),
                i.model,
                i.crs_source,
                i.crs
            );
        }
        println!(
            "wrote {} triangles at full detail in {} tiles ({} levels, {:.1} MB) to {} in {:.1} s",
            r.triangles_written,
            r.tiles,
            u32::from(r.max_level) + 1,
            r.bytes_written as f64 / 1e6,
            r.output.display(),
            secs
        );
        let e = r.extent_deg;
        println!(
            "extent: lon {:.6}..{:.6}, lat {:.6}..{:.6}",
            e[0], e[2], e[1], e[3]
        );
        return;
    }
    if r.points_read == 0 && r.inputs.iter().all(|i| !i.raster.is_empty()) {
        for i in &r.inputs {
            println!(
                "  {}: {}, CRS {} (from {})",
                i.path.display(),
                i.raster,
                i.crs,
                i.crs_source
            );
        }
        println!(
            "wrote {} tiles (zoom {}-{}, {:.1} MB) to {} in {:.1} s ({:.0} tiles/s)",
            r.tiles,
            r.min_level,
            r.max_level,
            r.bytes_written as f64 / 1e6,
            r.output.display(),
            secs,
            r.tiles as f64 / secs.max(1e-9)
        );
        let e = r.extent_deg;
        println!(
            "extent: lon {:.6}..{:.6}, lat {:.6}..{:.6}",
            e[0], e[2], e[1], e[3]
        );
        return;
    }
    for i in &r.inputs {
        println!(
            "  {}: {} points, CRS {} (from {})",
            i.path.display(),
            i.points,
            i.crs,
            i.crs_source
        );
    }
    println!(
        "wrote {} points in {} tiles ({} levels, {:.1} MB) to {} in {:.1} s ({:.2} M points/s)",
        r.points_written,
        r.tiles,
        u32::from(r.max_level) + 1,
        r.bytes_written as f64 / 1e6,
        r.output.display(),
        secs,
        r.points_read as f64 / secs.max(1e-9) / 1e6
    );
    if r.points_thinned > 0 {
        println!("thinned {} points (--sample-spacing)", r.points_thinned);
    }
    let e = r.extent_deg;
    println!(
        "extent: lon {:.6}..{:.6}, lat {:.6}..{:.6}",
        e[0], e[2], e[1], e[3]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    /// Every flag the route check names is an argument of `convert` (a misspelt id would
    /// never be seen as given), and none is listed twice.
    #[test]
    fn route_flags_name_real_arguments() {
        let cmd = ConvertArgs::augment_args(Command::new("convert"));
        let ids: Vec<&str> = cmd.get_arguments().map(|a| a.get_id().as_str()).collect();
        for (k, (id, routes)) in ROUTE_FLAGS.iter().enumerate() {
            assert!(ids.contains(id), "{id} is no argument of convert");
            assert!(!routes.is_empty(), "{id}");
            assert!(ROUTE_FLAGS[..k].iter().all(|(o, _)| o != id), "{id} twice");
        }
    }
}
