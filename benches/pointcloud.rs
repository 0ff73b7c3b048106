//! Criterion benches of the point-cloud route, one group per stage, on synthetic input
#![allow(clippy::unwrap_used)] // a failed bench set-up should stop the bench
//! made here: LAZ decode, octree sampling, glb encode, and end to end.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::path::Path;
use tessera_model::CrsSpec;
use tessera_pipeline::encode::{encode_point_glb, Grid, PointTile};
use tessera_pipeline::pointcloud::{lod_sample, Cube, TilePoint};
use tessera_pipeline::{JobSpec, Progress};

/// A wavy terrain of `n` points in UTM 32N with colours, written as LAS or LAZ.
fn synthetic_las(path: &Path, n: usize, compress: bool) {
    let mut builder = las::Builder::from((1, 2));
    builder.point_format = las::point::Format::new(3).unwrap();
    builder.point_format.is_compressed = compress;
    builder.transforms = las::Vector {
        x: las::Transform {
            scale: 0.001,
            offset: 500_000.0,
        },
        y: las::Transform {
            scale: 0.001,
            offset: 5_400_000.0,
        },
        z: las::Transform {
            scale: 0.001,
            offset: 0.0,
        },
    };
    let mut w = las::Writer::from_path(path, builder.into_header().unwrap()).unwrap();
    let side = (n as f64).sqrt().ceil() as usize;
    for i in 0..n {
        let (x, y) = ((i % side) as f64 * 0.5, (i / side) as f64 * 0.5);
        let p = las::Point {
            x: 500_000.0 + x,
            y: 5_400_000.0 + y,
            z: 100.0 + 5.0 * (x / 30.0).sin() * (y / 40.0).cos(),
            intensity: (i % 4096) as u16,
            classification: las::point::Classification::Ground,
            color: Some(las::Color::new((i % 65535) as u16, 30_000, 20_000)),
            ..Default::default()
        };
        w.write_point(p).unwrap();
    }
    w.close().unwrap();
}

fn points(n: usize) -> Vec<TilePoint> {
    let side = (n as f64).sqrt().ceil() as usize;
    (0..n)
        .map(|i| TilePoint {
            pos: [
                (i % side) as f64 * 0.3,
                (i / side) as f64 * 0.3,
                ((i * 7919) % 1000) as f64 * 0.01,
            ],
            id: i as u64,
            rgb: [1, 2, 3],
            classification: 2,
            intensity: 100,
            return_number: 1,
            number_of_returns: 1,
            extra: [],
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let laz = dir.path().join("in.laz");
    synthetic_las(&laz, 500_000, true);

    let mut g = c.benchmark_group("read");
    g.sample_size(10);
    g.throughput(Throughput::Elements(500_000));
    g.bench_function("read/laz/500k", |b| {
        b.iter(|| {
            let mut r = las::Reader::from_path(&laz).unwrap();
            r.read_all().unwrap().len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("tile");
    g.sample_size(10);
    let pts = points(1_000_000);
    let cube = Cube {
        min: [0.0; 3],
        edge: 300.0,
    };
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("tile/lod-sample/1M", |b| {
        b.iter_batched(
            || pts.clone(),
            |p| lod_sample(p, &cube, 80_000).0.len(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("encode");
    let n = 80_000;
    let pos: Vec<[f64; 3]> = points(n).iter().map(|p| p.pos).collect();
    let bounds = tessera_model::Aabb::from_points(&pos);
    let grid = Grid::new(&bounds, -10);
    let rgb = vec![[10u16 * 257, 20 * 257, 30 * 257]; n];
    let inten = vec![7u16; n];
    let cls = vec![2u8; n];
    g.throughput(Throughput::Elements(n as u64));
    let tile = PointTile {
        positions: &pos,
        bounds,
        rgb: Some(&rgb),
        rgb16: false,
        intensity: Some(&inten),
        classification: Some(&cls),
        return_number: Some(&cls),
        number_of_returns: Some(&cls),
        extras: &[],
    };
    g.bench_function("encode/glb/80k", |b| {
        b.iter(|| encode_point_glb(&tile, None).unwrap().len())
    });
    g.bench_function("encode/glb-meshopt/80k", |b| {
        b.iter(|| encode_point_glb(&tile, Some(&grid)).unwrap().len())
    });
    g.finish();

    let mut g = c.benchmark_group("end-to-end");
    g.sample_size(10);
    g.throughput(Throughput::Elements(500_000));
    let out = dir.path().join("out");
    g.bench_function("end-to-end/laz/500k", |b| {
        b.iter(|| {
            let mut spec = JobSpec::new(vec![laz.clone()], out.clone());
            spec.input_crs = Some(CrsSpec::epsg(32632));
            tessera_pipeline::run(&spec, &Progress::new())
                .unwrap()
                .tiles
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
