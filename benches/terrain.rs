//! Criterion benches of the terrain route on a synthetic height grid made here: the RTIN
//! mesh of one 129 × 129 tile and its quantized-mesh encode (with normals).
#![allow(clippy::unwrap_used)] // a failed bench set-up should stop the bench

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_model::Rect;
use tessera_pipeline::terrain::{encode, rtin, Extensions, GridMesh, GRID};

fn bench(c: &mut Criterion) {
    // Rolling hills with a building-like step: 0.5 m error keeps a realistic vertex count.
    let heights: Vec<f64> = (0..GRID * GRID)
        .map(|i| {
            let (x, y) = ((i % GRID) as f64, (i / GRID) as f64);
            100.0
                + 20.0 * (x / 17.0).sin() * (y / 23.0).cos()
                + if (40..60).contains(&(i % GRID)) {
                    8.0
                } else {
                    0.0
                }
        })
        .collect();
    let normals = vec![[0.0, 0.0, 1.0]; GRID * GRID];
    let rect = Rect {
        min_x: 6.9,
        min_y: 51.4,
        max_x: 6.9 + 180.0 / 32768.0,
        max_y: 51.4 + 180.0 / 32768.0,
    };
    let mut g = c.benchmark_group("terrain");
    g.bench_function("rtin/129/0.5m", |b| b.iter(|| rtin(&heights, GRID, 0.5)));
    let tris = rtin(&heights, GRID, 0.5);
    let mesh = GridMesh {
        rect_deg: rect,
        size: GRID,
        heights_m: &heights,
        normals: Some(&normals),
        triangles: &tris,
    };
    let ext = Extensions {
        normals: true,
        watermask: None,
        metadata: None,
    };
    g.bench_function(format!("encode/{}-triangles", tris.len()), |b| {
        b.iter(|| encode(&mesh, &ext))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
