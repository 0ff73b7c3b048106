//! Criterion benches of the glTF model route on a mesh made here (a wavy 256 × 256 quad
//! sheet, 131,072 triangles, with normals and texture coordinates): loading it from a
//! .glb, simplifying it to a quarter, building the whole level-of-detail tree, and
//! encoding one 50,000-triangle tile.
#![allow(clippy::unwrap_used)] // a failed bench set-up should stop the bench

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tessera_model::{TriangleMesh, VertexColumn};
use tessera_pipeline::models::{encode_mesh_glb, lod, read_model, MaterialSource, Style};
use tessera_pipeline::{Budget, RefRoot, Warnings};

const N: u32 = 256;

fn sheet() -> TriangleMesh {
    let mut positions = Vec::new();
    let mut normals = Vec::new();
    let mut uv = Vec::new();
    for y in 0..=N {
        for x in 0..=N {
            let (fx, fy) = (x as f64 * 0.1, y as f64 * 0.1);
            positions.push([fx, fy, (fx * 0.7).sin() * (fy * 0.3).cos()]);
            normals.push([0.0, 0.0, 1.0]);
            uv.extend_from_slice(&[x as f32 / N as f32, y as f32 / N as f32]);
        }
    }
    let w = N + 1;
    let mut indices = Vec::new();
    for y in 0..N {
        for x in 0..N {
            let i = y * w + x;
            indices.extend_from_slice(&[i, i + 1, i + w, i + 1, i + w + 1, i + w]);
        }
    }
    TriangleMesh {
        positions,
        indices,
        normals: Some(normals),
        tangents: None,
        columns: vec![VertexColumn {
            name: "TEXCOORD_0".into(),
            components: 2,
            values: uv,
        }],
        material: Some(0),
    }
}

fn bench(c: &mut Criterion) {
    let mesh = sheet();
    let styles = [Style {
        material: Some(0),
        extensions: Default::default(),
    }];
    let materials = [json!({"pbrMetallicRoughness": {"metallicFactor": 0.0}})];
    let src = MaterialSource {
        styles: &styles,
        materials: &materials,
        textures: &[],
        samplers: &[],
        required: &[],
    };
    // The sheet as a GLB file (y-up, as glTF stores it).
    let glb = encode_mesh_glb(std::slice::from_ref(&mesh), [0.0; 3], &src, &|_| None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheet.glb");
    std::fs::write(&path, &glb).unwrap();

    let tris = mesh.triangle_count();
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.bench_function(format!("load/glb/{tris}"), |b| {
        let refs = RefRoot::within(dir.path());
        b.iter(|| read_model(&path, &refs, &Budget::default(), &Warnings::default()).unwrap())
    });
    g.bench_function(format!("simplify/{tris}-to-quarter"), |b| {
        b.iter(|| lod::simplify(&mesh, tris / 4))
    });
    g.bench_function(format!("lod-tree/{tris}/50000-per-tile"), |b| {
        b.iter(|| lod::build(std::slice::from_ref(&mesh), 50_000))
    });
    let tile = mesh.subset(0..50_000);
    g.bench_function("encode/glb/50000", |b| {
        b.iter(|| {
            encode_mesh_glb(std::slice::from_ref(&tile), [1.0, 2.0, 3.0], &src, &|_| {
                None
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
