//! Criterion benches of the CityGML route on a city made here: 2,000 LoD2 buildings
//! (walls with a window hole, a gabled roof, typed attributes) in EPSG:25832, about
//! 5 MB of CityGML 2.0. Stages: parsing, triangulating every polygon, converting the
//! document (parse + PROJ + triangulation + styles), and encoding one tile of all
//! buildings with its property table.
#![allow(clippy::unwrap_used)] // a failed bench set-up should stop the bench

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::fmt::Write;
use std::sync::Mutex;
use tessera_model::VertexColumn;
use tessera_pipeline::citygml::{
    convert_document, read_city_objects, triangulate, Codelists, DocOptions, Location, Styles,
};
use tessera_pipeline::encode::features::{
    schema_json, FeatureTable, PropertyDef, PropertyType, PropertyValues,
};
use tessera_pipeline::models::{encode_mesh_glb_features, lod, MaterialSource, Style};
use tessera_pipeline::Warnings;

const BUILDINGS: usize = 2000;

fn ring(out: &mut String, pts: &[[f64; 3]]) {
    out.push_str("<gml:LinearRing><gml:posList srsDimension=\"3\">");
    for p in pts.iter().chain(std::iter::once(&pts[0])) {
        let _ = write!(out, "{:.3} {:.3} {:.3} ", p[0], p[1], p[2]);
    }
    out.push_str("</gml:posList></gml:LinearRing>");
}

fn polygon(out: &mut String, surface: &str, ext: &[[f64; 3]], hole: Option<&[[f64; 3]]>) {
    let _ = write!(
        out,
        "<bldg:boundedBy><bldg:{surface}><bldg:lod2MultiSurface><gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior>"
    );
    ring(out, ext);
    out.push_str("</gml:exterior>");
    if let Some(h) = hole {
        out.push_str("<gml:interior>");
        ring(out, h);
        out.push_str("</gml:interior>");
    }
    let _ = write!(
        out,
        "</gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface></bldg:{surface}></bldg:boundedBy>"
    );
}

fn city() -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" xmlns:bldg="http://www.opengis.net/citygml/building/2.0" xmlns:gml="http://www.opengis.net/gml" xmlns:gen="http://www.opengis.net/citygml/generics/2.0">
<gml:boundedBy><gml:Envelope srsName="EPSG:25832" srsDimension="3"><gml:lowerCorner>458000 5438000 100</gml:lowerCorner><gml:upperCorner>460000 5440000 140</gml:upperCorner></gml:Envelope></gml:boundedBy>
"#,
    );
    for b in 0..BUILDINGS {
        let (x0, y0, z0) = (
            458_000.0 + (b % 45) as f64 * 40.0,
            5_438_000.0 + (b / 45) as f64 * 40.0,
            100.0,
        );
        let (w, d, h) = (12.0 + (b % 5) as f64, 9.0, 7.0 + (b % 4) as f64 * 3.0);
        let _ = write!(
            s,
            "<core:cityObjectMember><bldg:Building gml:id=\"B{b}\"><gen:stringAttribute name=\"note\"><gen:value>building {b}</gen:value></gen:stringAttribute><bldg:measuredHeight uom=\"m\">{h}</bldg:measuredHeight><bldg:storeysAboveGround>{}</bldg:storeysAboveGround>",
            (h / 3.0) as i32
        );
        let c = [
            [x0, y0, z0],
            [x0 + w, y0, z0],
            [x0 + w, y0 + d, z0],
            [x0, y0 + d, z0],
        ];
        for i in 0..4 {
            let (a, bb) = (c[i], c[(i + 1) % 4]);
            let wall = [a, bb, [bb[0], bb[1], z0 + h], [a[0], a[1], z0 + h]];
            let lerp =
                |t: f64, z: f64| [a[0] + (bb[0] - a[0]) * t, a[1] + (bb[1] - a[1]) * t, z0 + z];
            let window = [
                lerp(0.4, 2.0),
                lerp(0.4, 3.5),
                lerp(0.6, 3.5),
                lerp(0.6, 2.0),
            ];
            polygon(&mut s, "WallSurface", &wall, Some(&window));
        }
        let ridge = [
            [x0, y0 + d / 2.0, z0 + h + 3.0],
            [x0 + w, y0 + d / 2.0, z0 + h + 3.0],
        ];
        let top = |p: [f64; 3]| [p[0], p[1], z0 + h];
        polygon(
            &mut s,
            "RoofSurface",
            &[top(c[0]), top(c[1]), ridge[1], ridge[0]],
            None,
        );
        polygon(
            &mut s,
            "RoofSurface",
            &[top(c[2]), top(c[3]), ridge[0], ridge[1]],
            None,
        );
        polygon(&mut s, "GroundSurface", &[c[3], c[2], c[1], c[0]], None);
        s.push_str("</bldg:Building></core:cityObjectMember>\n");
    }
    s.push_str("</core:CityModel>\n");
    s
}

fn bench(c: &mut Criterion) {
    let doc = city();
    let mut g = c.benchmark_group("citygml");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("parse 2000 LoD2 buildings", |b| {
        b.iter(|| {
            let mut n = 0;
            read_city_objects(doc.as_bytes(), |o| n += o.polygons.len()).unwrap();
            n
        })
    });
    let mut objects = Vec::new();
    read_city_objects(doc.as_bytes(), |o| objects.push(o)).unwrap();
    g.throughput(Throughput::Elements(
        objects.iter().map(|o| o.polygons.len() as u64).sum(),
    ));
    g.bench_function("triangulate every polygon", |b| {
        let mut ec = earcut::Earcut::new();
        b.iter(|| {
            let mut t = 0;
            for o in &objects {
                for p in &o.polygons {
                    t += triangulate(p, &mut ec).map_or(0, |t| t.indices.len());
                }
            }
            t
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.gml");
    std::fs::write(&path, &doc).unwrap();
    let loc = Location::File(path);
    let said = Mutex::new(Default::default());
    let opts = DocOptions {
        input_crs: None,
        lod: None,
        geoid: None,
        theme: None,
        said: &said,
    };
    g.throughput(Throughput::Elements(BUILDINGS as u64));
    g.bench_function("convert document (parse, PROJ, triangulate)", |b| {
        b.iter(|| {
            let styles = Styles::default();
            convert_document(
                &loc,
                &opts,
                &styles,
                &Codelists::default(),
                &Warnings::default(),
            )
            .unwrap()
            .triangles
        })
    });
    // One tile of every building: feature ids, four default materials, a property table.
    let styles = Styles::default();
    let r = convert_document(
        &loc,
        &opts,
        &styles,
        &Codelists::default(),
        &Warnings::default(),
    )
    .unwrap();
    let (keys, _, remap) = styles.finish();
    let origin = r.parts[0].meshes[0].positions[0];
    let mut meshes = Vec::new();
    for (i, p) in r.parts.iter().enumerate() {
        for m in &p.meshes {
            let mut m = m.clone();
            for q in m.positions.iter_mut() {
                *q = [q[0] - origin[0], q[1] - origin[1], q[2] - origin[2]];
            }
            m.material = m.material.map(|s| remap[s as usize]);
            let n = m.positions.len();
            m.columns.push(VertexColumn {
                name: "_FEATURE_ID_0".into(),
                components: 1,
                values: vec![i as f32; n],
            });
            meshes.push(m);
        }
    }
    let meshes = lod::merge_by_style(meshes);
    let styles_out: Vec<Style> = (0..keys.len())
        .map(|i| Style {
            material: Some(i),
            extensions: Default::default(),
        })
        .collect();
    let materials: Vec<serde_json::Value> = keys
        .iter()
        .map(|_| serde_json::json!({"pbrMetallicRoughness": {"metallicFactor": 0.0}}))
        .collect();
    let src = MaterialSource {
        styles: &styles_out,
        materials: &materials,
        textures: &[],
        samplers: &[],
        required: &[],
    };
    let defs = vec![
        PropertyDef {
            id: "gml_id".into(),
            name: "gml_id".into(),
            ty: PropertyType::String,
        },
        PropertyDef {
            id: "measuredHeight".into(),
            name: "measuredHeight".into(),
            ty: PropertyType::Float64,
        },
    ];
    let table = FeatureTable {
        schema: schema_json("bench", "CityObject", &defs),
        class: "CityObject".into(),
        count: r.parts.len(),
        properties: vec![
            (
                "gml_id".into(),
                PropertyValues::String(
                    r.parts
                        .iter()
                        .map(|p| Some(p.feature.gml_id.clone()))
                        .collect(),
                ),
            ),
            (
                "measuredHeight".into(),
                PropertyValues::Float64(r.parts.iter().map(|_| Some(10.0)).collect()),
            ),
        ],
    };
    g.bench_function("encode one tile of 2000 buildings", |b| {
        b.iter(|| encode_mesh_glb_features(&meshes, [0.0; 3], &src, &|_| None, Some(&table)).len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
