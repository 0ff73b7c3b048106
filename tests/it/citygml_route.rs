//! CityGML → 3D Tiles over every CityGML sample (files, folders, zips) and generated
//! broken documents: one feature per city object, positions against PROJ, properties
//! and textures read back from the tiles, 3D Tiles 1.0, LoD choice, terrain clamping.

use crate::helpers::{
    accessor_bytes, assert_data_error, read_glb, run_with_threads, samples, tessera,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_fixtures::tiff::{TiffBuilder, Val};
use tessera_pipeline::citygml::{crs_from_srs_name, read_city_objects, triangulate};
use tessera_pipeline::{JobReport, JobSpec, TilesFormat};
use tessera_proj::Transformer;

/// One primitive of a decoded city tile: ECEF positions and the feature row per vertex.
struct Prim {
    ecef: Vec<[f64; 3]>,
    rows: Vec<usize>,
    material: Value,
    has_uv: bool,
}

/// A decoded city tile.
struct CityTile {
    doc: Value,
    prims: Vec<Prim>,
    /// Property rows: property id → value (numbers, strings; noData left out).
    rows: Vec<BTreeMap<String, Value>>,
}

fn f32_at(b: &[u8], i: usize) -> f64 {
    f32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as f64
}

fn u32_at(b: &[u8], i: usize) -> usize {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize
}

fn view<'a>(doc: &Value, bin: &'a [u8], v: u64) -> &'a [u8] {
    let v = &doc["bufferViews"][v as usize];
    let off = v["byteOffset"].as_u64().unwrap() as usize;
    assert_eq!(off % 8, 0, "metadata buffer views are 8-byte aligned");
    &bin[off..off + v["byteLength"].as_u64().unwrap() as usize]
}

fn property_rows(doc: &Value, bin: &[u8]) -> Vec<BTreeMap<String, Value>> {
    let meta = &doc["extensions"]["EXT_structural_metadata"];
    let table = &meta["propertyTables"][0];
    let class = &meta["schema"]["classes"][table["class"].as_str().unwrap()]["properties"];
    let n = table["count"].as_u64().unwrap() as usize;
    let mut rows = vec![BTreeMap::new(); n];
    for (id, p) in table["properties"].as_object().unwrap() {
        let def = &class[id];
        let values = view(doc, bin, p["values"].as_u64().unwrap());
        for (r, row) in rows.iter_mut().enumerate() {
            let v = match (def["type"].as_str().unwrap(), def["componentType"].as_str()) {
                ("STRING", _) => {
                    let offs = view(doc, bin, p["stringOffsets"].as_u64().unwrap());
                    let (a, b) = (u32_at(offs, r * 4), u32_at(offs, r * 4 + 4));
                    let s = std::str::from_utf8(&values[a..b]).unwrap().to_string();
                    (s != def["noData"].as_str().unwrap()).then(|| Value::from(s))
                }
                ("SCALAR", Some("INT32")) => {
                    let x = i32::from_le_bytes(values[r * 4..r * 4 + 4].try_into().unwrap());
                    (x as i64 != def["noData"].as_i64().unwrap()).then(|| Value::from(x))
                }
                ("SCALAR", Some("FLOAT64")) => {
                    let x = f64::from_le_bytes(values[r * 8..r * 8 + 8].try_into().unwrap());
                    (x != def["noData"].as_f64().unwrap()).then(|| Value::from(x))
                }
                other => panic!("unexpected property type {other:?}"),
            };
            if let Some(v) = v {
                row.insert(id.clone(), v);
            }
        }
    }
    rows
}

/// Every content tile of a city tileset (3D Tiles 1.1 with metadata).
fn decode_city(dir: &Path) -> (Value, Vec<CityTile>) {
    let ts: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tileset.json")).unwrap()).unwrap();
    assert_eq!(ts["root"]["refine"], "ADD");
    let m: Vec<f64> = ts["root"]["transform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let to_ecef = |p: [f64; 3]| {
        [
            m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
            m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
            m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14],
        ]
    };
    let mut out = Vec::new();
    let mut stack = vec![ts["root"].clone()];
    while let Some(t) = stack.pop() {
        for c in t["children"].as_array().into_iter().flatten() {
            assert!(c["geometricError"].as_f64().unwrap() <= t["geometricError"].as_f64().unwrap());
            stack.push(c.clone());
        }
        let Some(uri) = t["content"]["uri"].as_str() else {
            continue;
        };
        let (doc, bin) = read_glb(&std::fs::read(dir.join(uri)).unwrap());
        let tr: Vec<f64> = doc["nodes"][0]["translation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let bx: Vec<f64> = t["boundingVolume"]["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let rows = property_rows(&doc, &bin);
        let mut prims = Vec::new();
        for p in doc["meshes"][0]["primitives"].as_array().unwrap() {
            let pa = p["attributes"]["POSITION"].as_u64().unwrap();
            let pb = accessor_bytes(&doc, &bin, pa);
            let n = doc["accessors"][pa as usize]["count"].as_u64().unwrap() as usize;
            let fa = p["attributes"]["_FEATURE_ID_0"].as_u64().unwrap();
            let fb = accessor_bytes(&doc, &bin, fa);
            let fid = &p["extensions"]["EXT_mesh_features"]["featureIds"][0];
            assert_eq!(fid["featureCount"].as_u64().unwrap() as usize, rows.len());
            let mut ecef = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                let y_up = [
                    f32_at(pb, i * 12) + tr[0],
                    f32_at(pb, i * 12 + 4) + tr[1],
                    f32_at(pb, i * 12 + 8) + tr[2],
                ];
                let enu = [y_up[0], -y_up[2], y_up[1]];
                for k in 0..3 {
                    assert!(
                        (enu[k] - bx[k]).abs() <= bx[3 + k * 4] + 1e-3,
                        "{uri}: vertex outside its box"
                    );
                }
                ecef.push(to_ecef(enu));
                let id = f32_at(fb, i * 4);
                assert_eq!(id.fract(), 0.0);
                assert!((id as usize) < rows.len());
                ids.push(id as usize);
            }
            let material = p["material"]
                .as_u64()
                .map(|m| doc["materials"][m as usize].clone())
                .unwrap_or(Value::Null);
            prims.push(Prim {
                ecef,
                rows: ids,
                material,
                has_uv: p["attributes"].get("TEXCOORD_0").is_some(),
            });
        }
        out.push(CityTile { doc, prims, rows });
    }
    (ts, out)
}

fn convert(input: &Path, out: &Path, crs: Option<&str>) -> JobReport {
    let mut spec = JobSpec::new(vec![input.to_path_buf()], out.to_path_buf());
    spec.input_crs = crs.map(|c| tessera_model::CrsSpec::parse(c).unwrap());
    run_with_threads(&spec, 2).unwrap_or_else(|e| panic!("{}: {e}", input.display()))
}

/// City objects in a document, by the reader on its own.
fn count_objects(path: &Path) -> usize {
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    read_city_objects(f, |_| {}).unwrap().objects as usize
}

#[test]
fn every_sample_converts_with_one_feature_per_city_object() {
    let Some(s) = samples() else { return };
    let g = s.join("citygml");
    let t = tempfile::tempdir().unwrap();
    // (input, --input-crs, city objects: None = count them in the file itself)
    let cases: Vec<(PathBuf, Option<&str>, Option<usize>)> = vec![
        (
            g.join("fzk-haus-citygml1/FZK-House-LoD1-KIT-IAI-KHH-V2.gml"),
            None,
            Some(1),
        ),
        (
            g.join("fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml"),
            None,
            Some(1),
        ),
        (
            g.join("fzk-haus-citygml1/FZK-House-LoD3-KIT-IAI-KHH-V2.gml"),
            None,
            Some(1),
        ),
        (
            g.join("fzk-haus-citygml3/FZK-Haus-LoD2-KIT-IAI-KHH-B36-V1__v3.gml"),
            None,
            None,
        ),
        (
            g.join("fzk-haus-citygml3/FZK-Haus-LoD3-KIT-IAI-KHH-B36-V1__v3.gml"),
            None,
            None,
        ),
        (
            g.join("plateau-meiji-gallery/53394517_bldg_6697_2_op_CityGML2.gml"),
            None,
            Some(1),
        ),
        (
            g.join("plateau-meiji-gallery/53394517_bldg_6697_2_op_CityGML3.gml"),
            None,
            None,
        ),
        (g.join("plateau-meiji-gallery.zip"), None, Some(1)),
        (g.join("plateau-yokosuka"), None, Some(15)),
        (g.join("plateau-yokosuka.zip"), None, Some(15)),
        (
            g.join("plateau-tokyo-53395404_bldg_6697_op.gml"),
            None,
            Some(657),
        ),
        (g.join("berlin-3890_5819-lod2-citygml1.gml"), None, Some(40)),
        (g.join("delft-lod1-citygml2.xml"), None, Some(3)),
        (g.join("lyon"), Some("EPSG:3946"), Some(2)),
        // 28 city furniture + 50 urban-planning zones (i-UR ADE features).
        (g.join("plateau-kawasaki-shi.zip"), None, Some(78)),
    ];
    for (i, (input, crs, expected)) in cases.iter().enumerate() {
        let out = t.path().join(format!("c{i}"));
        let r = convert(input, &out, *crs);
        let objects = expected.unwrap_or_else(|| count_objects(input));
        assert_eq!(r.objects_read as usize, objects, "{}", input.display());
        assert_eq!(r.features_written as usize, objects, "{}", input.display());
        assert_eq!(r.triangles_written, r.triangles_read, "{}", input.display());
        assert!(r.triangles_read > 0);
        let (ts, tiles) = decode_city(&out);
        assert_eq!(ts["asset"]["version"], "1.1");
        let mut ids: Vec<String> = tiles
            .iter()
            .flat_map(|t| {
                t.rows
                    .iter()
                    .map(|r| r["gml_id"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(ids.len(), objects, "{}", input.display());
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), objects, "{}: a gml:id twice", input.display());
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Every object's centroid (mean of the vertices of its drawn polygons) lands within
/// 1 cm, horizontally and vertically, of PROJ's transform of the source coordinates.
#[test]
fn building_centroids_agree_with_proj_to_a_centimetre() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let cases = [
        ("plateau-tokyo-53395404_bldg_6697_op.gml", true),
        ("plateau-yokosuka/udx/bldg/52397519_bldg_6697_op.gml", true),
        ("fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml", false),
        (
            "fzk-haus-citygml3/FZK-Haus-LoD3-KIT-IAI-KHH-B36-V1__v3.gml",
            false,
        ),
        ("delft-lod1-citygml2.xml", false),
        ("berlin-3890_5819-lod2-citygml1.gml", false),
    ];
    for (k, (file, lat_first)) in cases.iter().enumerate() {
        let path = s.join("citygml").join(file);
        let out = t.path().join(format!("p{k}"));
        convert(&path, &out, None);
        let (_, tiles) = decode_city(&out);
        // Output centroids by gml:id.
        let mut sums: HashMap<String, ([f64; 3], usize)> = HashMap::new();
        for tile in &tiles {
            for p in &tile.prims {
                for (q, &r) in p.ecef.iter().zip(&p.rows) {
                    let id = tile.rows[r]["gml_id"].as_str().unwrap().to_string();
                    let e = sums.entry(id).or_insert(([0.0; 3], 0));
                    for c in 0..3 {
                        e.0[c] += q[c];
                    }
                    e.1 += 1;
                }
            }
        }
        // Source centroids through PROJ.
        let mut objects = Vec::new();
        let stats = read_city_objects(
            std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
            |o| objects.push(o),
        )
        .unwrap();
        let srs = stats.srs_name.unwrap();
        let crs = crs_from_srs_name(&srs).unwrap();
        let to_ecef = Transformer::new(crs.definition(), "EPSG:4978").unwrap();
        let to_geo = Transformer::new("EPSG:4978", "EPSG:4979").unwrap();
        let mut ec = earcut::Earcut::new();
        let mut checked = 0;
        for o in objects {
            let top = o.polygons.iter().filter_map(|p| p.lod).max();
            let mut src: Vec<[f64; 3]> = o
                .polygons
                .iter()
                .filter(|p| (p.lod.is_none() || p.lod == top) && triangulate(p, &mut ec).is_some())
                .flat_map(|p| {
                    p.exterior
                        .iter()
                        .chain(p.interiors.iter().flatten())
                        .copied()
                })
                .map(|p| if *lat_first { [p[1], p[0], p[2]] } else { p })
                .collect();
            if src.is_empty() {
                continue;
            }
            to_ecef.transform(&mut src).unwrap();
            let n = src.len() as f64;
            let want = src.iter().fold([0.0; 3], |a, p| {
                [a[0] + p[0] / n, a[1] + p[1] / n, a[2] + p[2] / n]
            });
            let (sum, count) = sums[&o.gml_id];
            assert_eq!(count as f64, n, "{file}: {} vertex count", o.gml_id);
            let got = sum.map(|v| v / count as f64);
            let mut g = [want];
            to_geo.transform(&mut g).unwrap();
            let (lo, la) = (g[0][0].to_radians(), g[0][1].to_radians());
            let up = [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()];
            let d = sub(got, want);
            let vertical = d[0] * up[0] + d[1] * up[1] + d[2] * up[2];
            let h = sub(d, up.map(|u| u * vertical));
            let horizontal = (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt();
            assert!(
                horizontal < 0.01,
                "{file}: {} is {horizontal} m off horizontally",
                o.gml_id
            );
            assert!(
                vertical.abs() < 0.01,
                "{file}: {} is {vertical} m off vertically",
                o.gml_id
            );
            checked += 1;
        }
        assert!(checked > 0, "{file}");
    }
}

fn find_row<'a>(tiles: &'a [CityTile], gml_id: &str) -> &'a BTreeMap<String, Value> {
    tiles
        .iter()
        .flat_map(|t| t.rows.iter())
        .find(|r| r["gml_id"] == gml_id)
        .unwrap_or_else(|| panic!("no feature {gml_id}"))
}

/// What a click in CesiumJS shows: the feature's properties, typed, read back from the
/// GLB; codelist codes resolved where the codelists travel with the data.
#[test]
fn feature_properties_read_back_from_the_tiles() {
    let Some(s) = samples() else { return };
    let g = s.join("citygml");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("y");
    convert(&g.join("plateau-yokosuka.zip"), &out, None);
    let (_, tiles) = decode_city(&out);
    let schema = &tiles[0].doc["extensions"]["EXT_structural_metadata"]["schema"]["classes"]
        ["CityObject"]["properties"];
    assert_eq!(schema["measuredHeight"]["componentType"], "FLOAT64");
    assert_eq!(schema["storeysAboveGround"]["componentType"], "INT32");
    assert_eq!(schema["gml_id"]["type"], "STRING");
    // Generic attributes named in Japanese keep their spelling in the schema.
    let (id, _) = schema
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, p)| p["name"] == "図形ID")
        .unwrap();
    assert!(id.starts_with("attribute_"), "{id}");
    // Every building's measuredHeight as the source states it.
    let mut checked = 0;
    read_city_objects(
        std::io::BufReader::new(
            std::fs::File::open(g.join("plateau-yokosuka/udx/bldg/52397519_bldg_6697_op.gml"))
                .unwrap(),
        ),
        |o| {
            let row = find_row(&tiles, &o.gml_id);
            assert_eq!(row["class"], o.class.as_str());
            if let Some(p) = &o.parent {
                assert_eq!(row["parent_id"], p.as_str());
            }
            for (name, v) in &o.attributes {
                if name == "measuredHeight" {
                    let tessera_pipeline::citygml::AttrValue::Double(h) = v else {
                        panic!()
                    };
                    assert_eq!(row["measuredHeight"].as_f64().unwrap(), *h);
                    checked += 1;
                }
            }
        },
    )
    .unwrap();
    assert!(checked >= 13, "{checked}");
    // Kawasaki's city furniture: function codes become the codelist's words.
    let out = t.path().join("k");
    convert(&g.join("plateau-kawasaki-shi.zip"), &out, None);
    let (_, tiles) = decode_city(&out);
    let furniture: Vec<_> = tiles
        .iter()
        .flat_map(|t| t.rows.iter())
        .filter(|r| r["class"] == "CityFurniture")
        .collect();
    assert_eq!(furniture.len(), 28);
    assert!(
        furniture.iter().any(|r| r["function"] == "柱"),
        "{:?}",
        furniture[0]
    );
    assert!(furniture.iter().all(|r| r["function"]
        .as_str()
        .is_some_and(|f| f.parse::<i64>().is_err())));
}

/// Textures arrive where the images exist, with their coordinates; missing images leave
/// their surfaces untextured with one warning; X3D colours become materials.
#[test]
fn textures_materials_and_missing_images() {
    let Some(s) = samples() else { return };
    let g = s.join("citygml");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("y");
    let r = convert(&g.join("plateau-yokosuka.zip"), &out, None);
    assert!(
        r.warnings.iter().all(|w| w.code != "citygml-missing-image"),
        "{:?}",
        r.warnings
    );
    let (_, tiles) = decode_city(&out);
    let images: usize = tiles
        .iter()
        .map(|t| t.doc["images"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(images, 3);
    let textured: Vec<&Prim> = tiles
        .iter()
        .flat_map(|t| t.prims.iter())
        .filter(|p| p.has_uv)
        .collect();
    assert!(!textured.is_empty());
    for p in &textured {
        assert!(p.material["pbrMetallicRoughness"]["baseColorTexture"]["index"].is_u64());
    }
    // Berlin: 612 images referenced, none present.
    let out = t.path().join("b");
    let r = convert(&g.join("berlin-3890_5819-lod2-citygml1.gml"), &out, None);
    let w = r
        .warnings
        .iter()
        .find(|w| w.code == "citygml-missing-image")
        .unwrap();
    assert!(
        w.message.contains("612 texture image(s) not found"),
        "{}",
        w.message
    );
    let (_, tiles) = decode_city(&out);
    assert!(tiles.iter().all(|t| t.doc.get("images").is_none()));
    assert!(tiles.iter().flat_map(|t| t.prims.iter()).all(|p| !p.has_uv));
    // Lyon (no srsName; --input-crs) is textured from the jpg beside it.
    let out = t.path().join("l");
    convert(&g.join("lyon"), &out, Some("EPSG:3946"));
    let (_, tiles) = decode_city(&out);
    assert!(tiles.iter().flat_map(|t| t.prims.iter()).any(|p| p.has_uv));
    // FZK LoD2: X3DMaterial colours.
    let out = t.path().join("f");
    convert(
        &g.join("fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml"),
        &out,
        None,
    );
    let (_, tiles) = decode_city(&out);
    let colours: Vec<&Value> = tiles
        .iter()
        .flat_map(|t| t.doc["materials"].as_array().unwrap().iter())
        .map(|m| &m["pbrMetallicRoughness"]["baseColorFactor"])
        .collect();
    assert!(
        colours
            .iter()
            .any(|c| c[1].as_f64().unwrap() == 0.0 && c[0].as_f64().unwrap() > 0.99),
        "{colours:?}"
    );
}

#[test]
fn tiles_1_0_batch_tables_and_lod_choice() {
    let Some(s) = samples() else { return };
    let zip = s.join("citygml/plateau-yokosuka.zip");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("b3dm");
    let mut spec = JobSpec::new(vec![zip.clone()], out.clone());
    spec.format = TilesFormat::Tiles10;
    run_with_threads(&spec, 2).unwrap();
    let ts: Value =
        serde_json::from_slice(&std::fs::read(out.join("tileset.json")).unwrap()).unwrap();
    assert_eq!(ts["asset"]["version"], "1.0");
    let uri = ts["root"]["content"]["uri"].as_str().unwrap();
    assert!(uri.ends_with(".b3dm"));
    let bytes = std::fs::read(out.join(uri)).unwrap();
    let w = |k: usize| u32_at(&bytes, 4 * k);
    let ft: Value = serde_json::from_slice(&bytes[28..28 + w(3)]).unwrap();
    assert_eq!(ft["BATCH_LENGTH"], 15);
    let bt: Value =
        serde_json::from_slice(&bytes[28 + w(3) + w(4)..28 + w(3) + w(4) + w(5)]).unwrap();
    assert_eq!(bt["gml_id"].as_array().unwrap().len(), 15);
    assert!(bt["measuredHeight"]
        .as_array()
        .unwrap()
        .iter()
        .any(Value::is_f64));
    let (doc, _) = read_glb(&bytes);
    for p in doc["meshes"][0]["primitives"].as_array().unwrap() {
        assert!(p["attributes"].get("_BATCHID").is_some());
        assert!(p.get("extensions").is_none());
    }
    // --lod: LoD 0 footprints and LoD 1 blocks have fewer triangles than LoD 2.
    let mut tris = Vec::new();
    for lod in [Some(0), Some(1), None] {
        let mut spec = JobSpec::new(vec![zip.clone()], t.path().join(format!("lod{lod:?}")));
        spec.city.lod = lod;
        let r = run_with_threads(&spec, 2).unwrap();
        assert_eq!(r.features_written, 15);
        tris.push(r.triangles_written);
    }
    assert!(tris[0] < tris[1] && tris[1] < tris[2], "{tris:?}");
}

/// A DEM GeoTIFF in the building's CRS with the given height everywhere.
fn flat_dem(path: &Path, x0: f64, y0: f64, height_m: f32) {
    let (w, h) = (64u32, 64u32);
    let mut data = Vec::new();
    for _ in 0..w * h {
        data.extend_from_slice(&height_m.to_le_bytes());
    }
    let mut b = TiffBuilder::new(w, h)
        .tag(258, Val::Short(vec![32]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![h]))
        .tag(339, Val::Short(vec![3]))
        .georef(25832, false, x0, y0, 2.0);
    b.strips.push(data);
    std::fs::write(path, b.build()).unwrap();
}

#[test]
fn clamp_to_terrain_puts_the_lowest_point_on_the_dem() {
    let Some(s) = samples() else { return };
    let house = s.join("citygml/fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml");
    let t = tempfile::tempdir().unwrap();
    // The house is near E 458 877, N 5 438 353 (UTM 32N).
    let dem = t.path().join("dem.tif");
    flat_dem(&dem, 458_800.0, 5_438_420.0, 250.0);
    let out = t.path().join("c");
    let mut spec = JobSpec::new(vec![house.clone()], out.clone());
    spec.city.clamp_to_terrain = Some(dem);
    let r = run_with_threads(&spec, 2).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.code == "clamped" && w.message.starts_with("1 object")),
        "{:?}",
        r.warnings
    );
    let (_, tiles) = decode_city(&out);
    let mut all: Vec<[f64; 3]> = tiles
        .iter()
        .flat_map(|t| t.prims.iter().flat_map(|p| p.ecef.clone()))
        .collect();
    Transformer::new("EPSG:4978", "EPSG:4979")
        .unwrap()
        .transform(&mut all)
        .unwrap();
    let lowest = all.iter().map(|p| p[2]).fold(f64::MAX, f64::min);
    assert!((lowest - 250.0).abs() < 0.01, "lowest point at {lowest} m");
    // A DEM elsewhere: the house keeps its height, with a warning.
    let far = t.path().join("far.tif");
    flat_dem(&far, 400_000.0, 5_000_000.0, 250.0);
    let mut spec = JobSpec::new(vec![house], t.path().join("far"));
    spec.city.clamp_to_terrain = Some(far);
    let r = run_with_threads(&spec, 2).unwrap();
    assert!(
        r.warnings.iter().any(|w| w.code == "clamp-outside-terrain"),
        "{:?}",
        r.warnings
    );
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

const HEAD: &str = r#"<?xml version="1.0"?>
<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:bldg="http://www.opengis.net/citygml/building/2.0" xmlns:gml="http://www.opengis.net/gml">"#;

fn building(srs: Option<&str>, ring: &str) -> String {
    let srs = srs.map(|s| format!(" srsName=\"{s}\"")).unwrap_or_default();
    format!(
        r#"{HEAD}
<core:cityObjectMember><bldg:Building gml:id="B1"><bldg:lod1Solid><gml:Solid{srs}><gml:exterior><gml:CompositeSurface>
<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="3">{ring}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>
<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="3">458877 5438353 100 458887 5438353 100 458887 5438363 100 458877 5438353 100</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>
</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid></bldg:Building></core:cityObjectMember>
</core:CityModel>"#
    )
}

#[test]
fn bad_city_models_fail_cleanly_or_warn() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let limit = Duration::from_secs(120);
    let run = |input: &Path, name: &str, extra: &[&str]| {
        let out = d.join(name);
        let mut args = vec![
            "convert",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (tessera(&args, limit), out)
    };
    // Malformed XML.
    let p = write(
        &d.join("broken.gml"),
        &building(Some("EPSG:25832"), "0 0 0 1 0 0")
            .replace("</core:cityObjectMember>", "</core:cityObjectMemberX>"),
    );
    let (o, out) = run(&p, "o1", &[]);
    assert_data_error(&o, &p, "malformed XML");
    assert!(!out.exists());
    // Billion laughs.
    let p = write(
        &d.join("lol.gml"),
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><core:CityModel xmlns:core="x">&lol3;</core:CityModel>"#,
    );
    let (o, _) = run(&p, "o2", &[]);
    assert_data_error(&o, &p, "DTD");
    // No srsName anywhere, then --input-crs.
    let p = write(
        &d.join("nocrs.gml"),
        &building(
            None,
            "458877 5438353 100 458887 5438353 100 458887 5438353 110 458877 5438353 100",
        ),
    );
    let (o, _) = run(&p, "o3", &[]);
    assert_data_error(&o, &p, "--input-crs");
    let (o, out) = run(&p, "o3b", &["--input-crs", "EPSG:25832"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(out.join("tileset.json").exists());
    // An srsName nobody knows is quoted.
    let p = write(
        &d.join("unknown.gml"),
        &building(
            Some("urn:example:crs:castle"),
            "458877 5438353 100 458887 5438353 100 458887 5438353 110 458877 5438353 100",
        ),
    );
    let (o, _) = run(&p, "o4", &[]);
    assert_data_error(&o, &p, "\"urn:example:crs:castle\"");
    // Rings with fewer than three points and NaN coordinates: counted, not fatal.
    let p = write(
        &d.join("rings.gml"),
        &building(
            Some("EPSG:25832"),
            "458877 5438353 100 NaN 5438353 100 458887 5438353 110 458877 5438353 100",
        ),
    );
    let (o, out) = run(&p, "o5", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("1 polygon(s)/ring(s) without area"),
        "{}",
        o.stderr
    );
    assert!(out.join("tileset.json").exists());
    let p = write(
        &d.join("short.gml"),
        &building(
            Some("EPSG:25832"),
            "458877 5438353 100 458887 5438353 100 458877 5438353 100",
        ),
    );
    let (o, _) = run(&p, "o6", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("without area"), "{}", o.stderr);
    // A zip with a `../` entry next to a good one: the bad one is skipped with a
    // warning and nothing is written outside the output.
    let good = building(
        Some("EPSG:25832"),
        "458877 5438353 100 458887 5438353 100 458887 5438353 110 458877 5438353 100",
    );
    let zp = d.join("slip.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("../../escaped.gml", o).unwrap();
        z.write_all(good.as_bytes()).unwrap();
        z.start_file("udx/bldg/ok.gml", o).unwrap();
        z.write_all(good.as_bytes()).unwrap();
        z.finish().unwrap();
    }
    let (o, out) = run(&zp, "o7", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("../../escaped.gml"), "{}", o.stderr);
    assert!(out.join("tileset.json").exists());
    assert!(
        !d.join("escaped.gml").exists() && !t.path().parent().unwrap().join("escaped.gml").exists()
    );
    // A zip bomb: a GML entry inflating past the ratio limit.
    let zb = d.join("bomb.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zb).unwrap());
        z.start_file("bomb.gml", zip::write::SimpleFileOptions::default())
            .unwrap();
        let mut body = good.clone().into_bytes();
        body.resize(50 << 20, b' ');
        z.write_all(&body).unwrap();
        z.finish().unwrap();
    }
    let (o, out) = run(&zb, "o8", &[]);
    assert_data_error(&o, &zb, "zip bomb");
    assert!(!out.exists());
    // Not CityGML at all.
    let p = write(&d.join("kml.gml"), "<kml/>");
    let (o, _) = run(&p, "o9", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
}
