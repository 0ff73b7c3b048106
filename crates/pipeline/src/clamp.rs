//! Terrain heights for `--clamp-to-terrain`: buildings are moved vertically so their lowest
//! point sits on the terrain, and this module says where the terrain is.
//!
//! In: a DEM GeoTIFF (any CRS it declares) or a quantized-mesh terrain folder (layer.json and
//! `{z}/{x}/{y}.terrain` tiles, gzipped or not, geographic TMS scheme). Out: the terrain
//! height at a WGS 84 longitude/latitude, in the height reference this project's terrain
//! route writes for that DEM, i.e. the height CesiumJS shows for that terrain.
//! Must not know: CityGML, meshes, tiles being written. Safe to query from many rayon
//! workers at once; problems met while querying become warnings, never panics.

mod dem;
mod folder;
mod tile;

use crate::error::{InputError, PipelineError};
use crate::report::{Warning, Warnings};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Terrain heights from a DEM or a terrain folder (see [`TerrainSampler::open`]).
pub struct TerrainSampler {
    source: Source,
    /// Problems met while querying (corrupt tiles, undecodable DEM chunks); see
    /// [`TerrainSampler::drain_warnings_into`].
    warnings: Warnings,
}

// Queried from rayon workers: keep it shareable.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<TerrainSampler>()
};

enum Source {
    Dem(Box<dem::DemHeights>),
    Folder(Box<folder::FolderHeights>),
}

impl TerrainSampler {
    /// Open a DEM GeoTIFF or a quantized-mesh terrain folder (or its layer.json).
    ///
    /// Heights come back as the terrain route writes them: DEM values times the vertical
    /// unit, with no geoid applied (`--to terrain` applies none either, so clamped buildings
    /// sit exactly on terrain made from the same DEM). `geoid` therefore changes nothing
    /// here; when one is given a warning says so.
    pub fn open(
        path: &Path,
        geoid: Option<&Path>,
        warnings: &Warnings,
    ) -> Result<TerrainSampler, PipelineError> {
        let not_terrain = |what: String| InputError::NotTerrain {
            path: path.into(),
            what,
        };
        let meta =
            std::fs::metadata(path).map_err(|_| InputError::NotFound { path: path.into() })?;
        let source = if meta.is_dir() {
            if !path.join("layer.json").is_file() {
                return Err(not_terrain(
                    "this folder holds no layer.json, so it is no terrain tileset".into(),
                )
                .into());
            }
            Source::Folder(Box::new(folder::FolderHeights::open(path)?))
        } else if path.file_name().is_some_and(|n| n == "layer.json") {
            let dir = path.parent().unwrap_or(Path::new("."));
            Source::Folder(Box::new(folder::FolderHeights::open(dir)?))
        } else {
            let head = read_head(path)?;
            if is_tiff(&head) {
                Source::Dem(Box::new(dem::DemHeights::open(path)?))
            } else {
                return Err(not_terrain(describe(&head)).into());
            }
        };
        if let Some(grid) = geoid {
            warnings.push(
                "clamp-geoid-unused",
                format!(
                    "{}: terrain heights for clamping are taken as {} (the heights `--to terrain` writes); --geoid {} does not change them",
                    path.display(),
                    match source {
                        Source::Dem(_) => "the DEM stores them",
                        Source::Folder(_) => "the tiles carry them",
                    },
                    grid.display()
                ),
            );
        }
        Ok(TerrainSampler {
            source,
            warnings: Warnings::default(),
        })
    }

    /// Terrain height in metres at a WGS 84 longitude/latitude (degrees); `None` outside the
    /// terrain's coverage, on nodata, or where the terrain could not be read (a warning then
    /// says why).
    pub fn height_at(&self, lon_deg: f64, lat_deg: f64) -> Option<f64> {
        if !lon_deg.is_finite() || !lat_deg.is_finite() {
            return None;
        }
        match &self.source {
            Source::Dem(d) => d.height_at(lon_deg, lat_deg, &self.warnings),
            Source::Folder(f) => f.height_at(lon_deg, lat_deg, &self.warnings),
        }
    }

    /// Move the warnings collected by [`height_at`](Self::height_at) into a job's
    /// collection; call it once the queries are done.
    pub fn drain_warnings_into(&self, warnings: &Warnings) {
        let (kept, dropped) = self.warnings.take();
        for Warning { code, message } in kept {
            warnings.push(code, message);
        }
        if dropped > 0 {
            warnings.push(
                "terrain-unreadable",
                format!("{dropped} more problems reading the terrain were not listed"),
            );
        }
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>, PipelineError> {
    let io = |source| InputError::Io {
        path: path.into(),
        source,
    };
    let mut head = Vec::with_capacity(8);
    File::open(path)
        .map_err(io)?
        .take(8)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(head)
}

fn is_tiff(head: &[u8]) -> bool {
    head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
}

fn describe(head: &[u8]) -> String {
    let kind = if head.is_empty() {
        "the file is empty"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "this is a gzip file (a single terrain tile?), not a DEM or a terrain folder"
    } else if head.starts_with(b"PK") {
        "this is a zip archive; unpack the terrain tileset first"
    } else if head.starts_with(b"LASF") {
        "this is a LAS/LAZ point cloud, not a DEM or a terrain folder"
    } else {
        "this is neither a TIFF nor a folder"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests;
