//! Errors per format and stage, wrapped into [`PipelineError`]. Every message names the
//! file it is about and, where there is one, says how to fix the problem.

use std::io;
use std::path::PathBuf;

/// How a front end should treat an error: bad input (exit 1 / DATA_ERROR), a fault of
/// Tessera (exit 3 / ERROR), the machine it runs on (disk full, permissions, read-only
/// folders: exit 4 / ERROR), or a cancelled job (exit 130).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Data,
    Internal,
    Environment,
    Canceled,
}

/// What an I/O failure says about the machine, with the fix a user can apply.
pub fn environment_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            "The disk is full: free space there, or write the output (-o) and temporary files (--temp-dir) to another disk"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "This user may not write there (or the folder is read-only): choose a folder you can write for the output (-o) and temporary files (--temp-dir)"
        }
        io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory => {
            "A file and a folder are mixed up on that path: name a file where a file is written, a folder where a folder is"
        }
        _ => "Check that the folder exists, is writable and has free space",
    }
}

/// The catalogued code for an environment failure.
fn environment_code(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            "STORAGE_FULL"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => "PERMISSION_DENIED",
        _ => "STORAGE_ERROR",
    }
}

fn is_environment(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
    )
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: no such file or directory", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot read: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {what}. Only regular files are read: pass the file itself, not a device, pipe or socket", path.display())]
    NotRegular { path: PathBuf, what: String },
    #[error("{}: {what}; this conversion takes {route}. Check the file and the --to option, or leave the file out", path.display())]
    Unsupported {
        path: PathBuf,
        what: String,
        route: &'static str,
    },
    #[error("no input files: {0}")]
    NoInputs(String),
    /// `--attributes` (or the server's `attributes` option) names what cannot be kept.
    #[error("--attributes: {reason}")]
    Attributes { reason: String },
    /// What `--clamp-to-terrain` was given is neither a DEM nor a readable terrain folder.
    #[error("{}: {what}. --clamp-to-terrain takes a single-band DEM GeoTIFF or a quantized-mesh terrain folder (layer.json plus {{z}}/{{x}}/{{y}}.terrain tiles, as `tessera convert dem.tif --to terrain` writes)", path.display())]
    NotTerrain { path: PathBuf, what: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LasError {
    #[error("{}: not a readable LAS/LAZ file: {reason}. Check that the file is complete and really LAS/LAZ", path.display())]
    Header { path: PathBuf, reason: String },
    #[error("{}: the header's scale factor for {axis} is {value}; {}. Fix the header (e.g. `las2las` / `pdal translate` with a proper scale)", path.display(), if *value == 0.0 { "every coordinate would collapse onto the offset" } else { "coordinates need a finite, non-zero scale" })]
    BadScale {
        path: PathBuf,
        axis: char,
        value: f64,
    },
    #[error("{}: the header's offset for {axis} is {value}; coordinates need a finite offset. Fix the header (e.g. `las2las` / `pdal translate` with a proper offset)", path.display())]
    BadOffset {
        path: PathBuf,
        axis: char,
        value: f64,
    },
    #[error("{}: the header's bounds for {axis} are {min}..{max}; they must be finite numbers. Fix the header (e.g. `lasinfo -repair_bb`, or `pdal translate`)", path.display())]
    BadBounds {
        path: PathBuf,
        axis: char,
        min: f64,
        max: f64,
    },
    /// A count, offset or length in the header or its records that the file contradicts.
    #[error("{}: {what}. The file is corrupt; re-export or re-download it", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: the header promises {expected} points but the file holds only {found}; the file is truncated. Re-export or re-download it", path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}: corrupt point data in points {start}..{end}: {reason}. Re-export or re-download the file", path.display())]
    Decode {
        path: PathBuf,
        start: u64,
        end: u64,
        reason: String,
    },
    #[error("{}: the file holds no points; leave it out of the conversion", path.display())]
    Empty { path: PathBuf },
}

/// GeoTIFF inputs (imagery and DEMs).
#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("{}: not a readable TIFF: {reason}. Check that the file is complete and really a GeoTIFF", path.display())]
    Header { path: PathBuf, reason: String },
    #[error("{}: {what} is not supported. {hint}", path.display())]
    Unsupported {
        path: PathBuf,
        what: String,
        hint: String,
    },
    #[error("{}: the header claims {width} x {height} pixels with {bands} band(s), {reason}. The file is corrupt or not meant for this", path.display())]
    Implausible {
        path: PathBuf,
        width: u64,
        height: u64,
        bands: u64,
        reason: String,
    },
    #[error("{}: no georeferencing (no GeoTIFF tie point/pixel scale or transformation tag). Georeference it first, e.g. `gdal_translate -a_srs EPSG:n -a_ullr ...`", path.display())]
    NoGeoreference { path: PathBuf },
    #[error("{}: corrupt pixel data in {what}: {reason}. Re-export or re-download the file", path.display())]
    Decode {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    /// Every pixel is nodata, not finite or implausible: nothing to tile.
    #[error("{}: no pixel holds a usable value: {detail}. Check the raster's values and its nodata setting (`gdalinfo -stats`), or leave the file out", path.display())]
    NoData { path: PathBuf, detail: String },
    /// The same failure seen by every worker that needed the chunk.
    #[error(transparent)]
    Shared(std::sync::Arc<RasterError>),
}

/// glTF / GLB models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: not a readable GLB: {reason}. Check that the file is complete (re-export or re-download it)", path.display())]
    Container { path: PathBuf, reason: String },
    #[error("{}: the glTF JSON is invalid: {reason}. Check the file with the Khronos glTF validator", path.display())]
    Json { path: PathBuf, reason: String },
    #[error("{}: buffer {index} ({uri}): {reason}. Keep the model's .bin files next to it, or export a self-contained .glb", path.display())]
    Buffer {
        path: PathBuf,
        index: usize,
        uri: String,
        reason: String,
    },
    #[error("{}: {what}: {reason}. The file is corrupt; check it with the Khronos glTF validator", path.display())]
    Data {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error("{}: {what} is not supported. {hint}", path.display())]
    Unsupported {
        path: PathBuf,
        what: String,
        hint: String,
    },
    /// The model file itself cannot be read (not a regular file, too large).
    #[error("{}: the model cannot be read: {reason}. Pass the model itself as a regular .glb or .gltf file", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// The node hierarchy breaks glTF 2.0's rule that it is a set of disjoint strict trees.
    #[error("{}: the node hierarchy: {reason}; glTF 2.0 requires {rule}. Re-export the model, or check it with the Khronos glTF validator", path.display())]
    Hierarchy {
        path: PathBuf,
        reason: String,
        rule: &'static str,
    },
    /// What the file declares would take more memory than the job may use.
    #[error("{}: {reason}. Split the model into smaller files, or convert it on a machine with more memory", path.display())]
    Budget { path: PathBuf, reason: String },
    /// Placement options that take the model off any sensible place on the globe.
    #[error("{}: {reason}. Check --scale, --position and --heading/--pitch/--roll against the model's units", path.display())]
    Placement { path: PathBuf, reason: String },
    #[error("{}: the model has no triangles to tile (points, lines and empty meshes are not converted)", path.display())]
    Empty { path: PathBuf },
    #[error("{}: a glTF model carries no place on the globe. Give --position LON,LAT,HEIGHT (degrees, metres), or --input-crs when its coordinates are already projected", path.display())]
    NoPlacement { path: PathBuf },
}

/// ", inside N open element(s)" when there are any.
fn inside_elements(open: usize) -> String {
    if open == 0 {
        String::new()
    } else {
        format!(", inside {open} open element(s)")
    }
}

/// CityGML documents and the zips they come in.
#[derive(Debug, thiserror::Error)]
pub enum CityGmlError {
    #[error("{}: malformed XML at byte {position}: {reason}. Check the file with `xmllint --noout`", path.display())]
    Xml {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("{}: the document declares a DTD; CityGML needs none and entity expansion is refused. Remove the <!DOCTYPE …> declaration", path.display())]
    Dtd { path: PathBuf },
    #[error("{}: not CityGML (the root element is not a CityModel)", path.display())]
    NotCityGml { path: PathBuf },
    #[error("{}: no srsName anywhere in the document, so its coordinates have no CRS. Pass --input-crs, e.g. --input-crs EPSG:3946", path.display())]
    NoCrs { path: PathBuf },
    #[error("{}: unknown srsName \"{name}\". Pass the CRS with --input-crs, e.g. --input-crs EPSG:25832", path.display())]
    UnknownCrs { path: PathBuf, name: String },
    #[error("{}: {reason}", path.display())]
    Archive { path: PathBuf, reason: String },
    #[error("{}: no city object with geometry{detail}", path.display())]
    Empty { path: PathBuf, detail: String },
    /// The input ended inside an element.
    #[error("{}: the document ends early at byte {position}{}: the file is truncated. Re-export or re-download it", path.display(), inside_elements(*open))]
    Truncated {
        path: PathBuf,
        position: u64,
        open: usize,
    },
    /// A size no CityGML document needs (a token, the nesting, one object's vertices, the
    /// number of CRSs), with where it was met.
    #[error("{}: {what}, more than a CityGML document needs. The file is corrupt or not CityGML (check it with `xmllint --noout`); an object that really is this large must be split", path.display())]
    Limit { path: PathBuf, what: String },
    /// The bytes of a plain file could not be read while parsing.
    #[error("{}: cannot read the document at byte {position}: {reason}. Check the disk and the file", path.display())]
    Read {
        path: PathBuf,
        position: u64,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    #[error("{}: no coordinate reference system in the file (no WKT or GeoTIFF-key VLR). Pass --input-crs, e.g. --input-crs EPSG:28992", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {detail}. Pass the raster's CRS with --input-crs, e.g. --input-crs EPSG:25832", path.display())]
    RasterCrs { path: PathBuf, detail: String },
    #[error("{}: PROJ cannot use the CRS {crs}: {reason}. Pass a CRS PROJ knows with --input-crs", path.display())]
    Unusable {
        path: PathBuf,
        crs: String,
        reason: String,
    },
    #[error("{}: coordinates cannot be in {crs}: {detail}. The file's CRS is probably mislabelled; pass the right one with --input-crs", path.display())]
    Implausible {
        path: PathBuf,
        crs: String,
        detail: String,
    },
    #[error("geoid grid {}: {reason}. Pass a vertical grid PROJ can read (.gtx, .gsb or .byn), e.g. /usr/share/proj/egm96_15.gtx", path.display())]
    Geoid { path: PathBuf, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: cannot write: {source}. {}", path.display(), environment_hint(source))]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: cannot write the archive: {reason}", path.display())]
    Archive { path: PathBuf, reason: String },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Las(#[from] LasError),
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    CityGml(#[from] CityGmlError),
    #[error(transparent)]
    Crs(#[from] CrsError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("temporary storage {}: {source}. {}", path.display(), environment_hint(source))]
    Spill { path: PathBuf, source: io::Error },
    #[error("conversion cancelled")]
    Canceled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Input(InputError::Io { source, .. }) if is_environment(source) => {
                ErrorKind::Environment
            }
            PipelineError::Input(_)
            | PipelineError::Las(_)
            | PipelineError::Raster(_)
            | PipelineError::Model(_)
            | PipelineError::CityGml(_)
            | PipelineError::Crs(_) => ErrorKind::Data,
            PipelineError::Output(_) | PipelineError::Spill { .. } => ErrorKind::Environment,
            PipelineError::Internal(_) => ErrorKind::Internal,
            PipelineError::Canceled => ErrorKind::Canceled,
        }
    }

    /// The catalogued machine-readable code (the server's `processingError.code`).
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Input(InputError::Io { source, .. }) if is_environment(source) => {
                environment_code(source)
            }
            PipelineError::Input(InputError::Unsupported { .. }) => "SOURCE_TYPE_MISMATCH",
            PipelineError::Input(InputError::NoInputs(_)) => "UNSUPPORTED_FILE_TYPE",
            PipelineError::Input(InputError::Attributes { .. }) => "UNKNOWN_ATTRIBUTE",
            PipelineError::Input(_) => "UNREADABLE_FILE",
            PipelineError::Las(LasError::Empty { .. }) => "EMPTY_DATA",
            PipelineError::Las(_) => "UNREADABLE_FILE",
            PipelineError::Raster(RasterError::NoGeoreference { .. }) => "MISSING_CRS",
            PipelineError::Raster(RasterError::Implausible { .. }) => "LIMIT_EXCEEDED",
            PipelineError::Raster(RasterError::NoData { .. }) => "EMPTY_DATA",
            PipelineError::Raster(_) => "UNREADABLE_FILE",
            PipelineError::Model(ModelError::Empty { .. }) => "EMPTY_DATA",
            PipelineError::Model(ModelError::NoPlacement { .. }) => "MISSING_CRS",
            PipelineError::Model(ModelError::Budget { .. }) => "LIMIT_EXCEEDED",
            PipelineError::Model(ModelError::Placement { .. }) => "OUT_OF_RANGE_COORDINATES",
            PipelineError::Model(_) => "UNREADABLE_FILE",
            PipelineError::CityGml(CityGmlError::NoCrs { .. }) => "MISSING_CRS",
            PipelineError::CityGml(CityGmlError::UnknownCrs { .. }) => "UNKNOWN_CRS",
            PipelineError::CityGml(CityGmlError::Archive { .. }) => "INVALID_ARCHIVE",
            PipelineError::CityGml(CityGmlError::Empty { .. }) => "EMPTY_DATA",
            PipelineError::CityGml(CityGmlError::NotCityGml { .. }) => "SOURCE_TYPE_MISMATCH",
            PipelineError::CityGml(CityGmlError::Limit { .. }) => "LIMIT_EXCEEDED",
            PipelineError::CityGml(_) => "UNREADABLE_FILE",
            PipelineError::Crs(CrsError::Missing { .. } | CrsError::RasterCrs { .. }) => {
                "MISSING_CRS"
            }
            PipelineError::Crs(CrsError::Unusable { .. } | CrsError::Geoid { .. }) => "UNKNOWN_CRS",
            PipelineError::Crs(CrsError::Implausible { .. }) => "OUT_OF_RANGE_COORDINATES",
            PipelineError::Output(OutputError::Io { source, .. })
            | PipelineError::Spill { source, .. } => environment_code(source),
            PipelineError::Output(OutputError::Archive { .. }) => "STORAGE_ERROR",
            PipelineError::Internal(_) | PipelineError::Canceled => "INTERNAL_ERROR",
        }
    }
}
