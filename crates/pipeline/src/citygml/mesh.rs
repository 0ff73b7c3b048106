//! City objects to triangle meshes in an east-north-up frame: one LoD per object (the
//! one asked for when it has it, else its highest), coordinates through PROJ
//! (latitude-first files swapped first), every polygon triangulated in metres, one
//! feature id per vertex.

use super::crs::latitude_first;
use super::reader::{AttrValue, CityObject, Polygon};
use super::triangulate::triangulate;
use crate::error::{CrsError, PipelineError};
use crate::report::Warnings;
use crate::reproject::{enu_frame_at, CrsPlan};
use earcut::Earcut;
use std::path::Path;
use tessera_model::{CrsSpec, EnuFrame, TriangleMesh, VertexColumn};

/// One feature's identity and attributes, in feature-id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub gml_id: String,
    pub class: String,
    pub parent: Option<String>,
    pub attributes: Vec<(String, AttrValue)>,
}

/// City objects as meshes (one per object with geometry at the chosen LoD).
pub struct CityMeshes {
    pub frame: EnuFrame,
    pub meshes: Vec<TriangleMesh>,
    pub features: Vec<Feature>,
    /// Polygons without area (collinear or repeated points), skipped.
    pub degenerate_polygons: u64,
}

/// The LoD an object is drawn at: `wanted` if it has polygons there, else its highest.
fn pick_lod(o: &CityObject, wanted: Option<u8>) -> Option<u8> {
    let lods: Vec<u8> = o.polygons.iter().filter_map(|p| p.lod).collect();
    match wanted {
        Some(w) if lods.contains(&w) => Some(w),
        _ => lods.into_iter().max(),
    }
}

/// Build meshes for `objects` whose coordinates are in `crs` (as named by `srs_name`).
/// Every object becomes a feature (objects without geometry at the chosen LoD too);
/// polygons are triangulated after they are in the frame, in metres.
pub fn city_meshes(
    path: &Path,
    objects: Vec<CityObject>,
    crs: &CrsSpec,
    srs_name: &str,
    lod: Option<u8>,
    geoid: Option<&Path>,
    warnings: &Warnings,
) -> Result<CityMeshes, PipelineError> {
    let plan = CrsPlan::new(crs, geoid, path, warnings)?;
    let first = objects
        .iter()
        .flat_map(|o| o.polygons.iter())
        .map(|p| p.exterior[0])
        .next();
    let swap = latitude_first(srs_name, &plan.info, first);
    let unusable = |e: tessera_proj::ProjError| CrsError::Unusable {
        path: path.into(),
        crs: crs.label(),
        reason: e.to_string(),
    };
    let implausible = |p: [f64; 3]| -> PipelineError {
        CrsError::Implausible {
            path: path.into(),
            crs: crs.label(),
            detail: format!(
                "a vertex lands {:.0} km from the Earth's centre",
                (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() / 1000.0
            ),
        }
        .into()
    };
    // The frame sits at the first vertex; tiles carry their own centres.
    let origin = match first {
        Some(mut p) => {
            if swap {
                p.swap(0, 1);
            }
            let mut v = [p];
            plan.to_ecef(&mut v).map_err(unusable)?;
            if CrsPlan::first_implausible(&v).is_some() {
                return Err(implausible(v[0]));
            }
            v[0]
        }
        None => [6_378_137.0, 0.0, 0.0],
    };
    let frame = enu_frame_at(origin).map_err(unusable)?;
    let mut earcut = Earcut::new();
    let mut degenerate = 0u64;
    let mut meshes = Vec::new();
    let mut features = Vec::new();
    for o in objects {
        let chosen = pick_lod(&o, lod);
        let fid = features.len() as f32;
        let mut polygons: Vec<Polygon> = o
            .polygons
            .into_iter()
            .filter(|p| p.lod.is_none() || p.lod == chosen)
            .collect();
        // All the object's points through PROJ at once.
        let mut pts: Vec<[f64; 3]> = Vec::new();
        for p in &polygons {
            pts.extend_from_slice(&p.exterior);
            for r in &p.interiors {
                pts.extend_from_slice(r);
            }
        }
        if swap {
            for p in pts.iter_mut() {
                p.swap(0, 1);
            }
        }
        plan.to_ecef(&mut pts).map_err(unusable)?;
        if let Some(i) = CrsPlan::first_implausible(&pts) {
            return Err(implausible(pts[i]));
        }
        let mut it = pts.into_iter().map(|p| frame.to_local(p));
        for p in polygons.iter_mut() {
            for v in p.exterior.iter_mut() {
                *v = it.next().unwrap_or(*v);
            }
            for r in p.interiors.iter_mut() {
                for v in r.iter_mut() {
                    *v = it.next().unwrap_or(*v);
                }
            }
        }
        let mut mesh = TriangleMesh {
            normals: Some(Vec::new()),
            ..Default::default()
        };
        for p in &polygons {
            let Some(t) = triangulate(p, &mut earcut) else {
                degenerate += 1;
                continue;
            };
            let base = mesh.positions.len() as u32;
            mesh.positions.extend_from_slice(&t.vertices);
            mesh.indices.extend(t.indices.iter().map(|i| i + base));
            if let Some(n) = mesh.normals.as_mut() {
                n.extend(std::iter::repeat_n(
                    t.normal.map(|v| v as f32),
                    t.vertices.len(),
                ));
            }
        }
        features.push(Feature {
            gml_id: o.gml_id,
            class: o.class,
            parent: o.parent,
            attributes: o.attributes,
        });
        if !mesh.indices.is_empty() {
            let n = mesh.positions.len();
            mesh.columns.push(VertexColumn {
                name: "_FEATURE_ID_0".into(),
                components: 1,
                values: vec![fid; n],
            });
            meshes.push(mesh);
        }
    }
    if degenerate > 0 {
        warnings.push(
            "degenerate-polygons",
            format!(
                "{}: {degenerate} polygon(s) without area (collinear or repeated points) skipped",
                path.display()
            ),
        );
    }
    Ok(CityMeshes {
        frame,
        meshes,
        features,
        degenerate_polygons: degenerate,
    })
}
