//! Criterion benches of the imagery route on a synthetic GeoTIFF made here: warping one
//! tile from UTM into web mercator, halving four children, and PNG / JPEG / WebP encode.
#![allow(clippy::unwrap_used)] // a failed bench set-up should stop the bench

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use tessera_model::{QuadTileId, TilingScheme};
use tessera_pipeline::imagery::{
    encode_tile, reduce, render, ImageFormat, ImagerySource, Resampling,
};
use tessera_pipeline::raster::ChunkCache;
use tessera_pipeline::Warnings;
use tiff::encoder::{colortype, TiffEncoder};
use tiff::tags::Tag;

/// A 2048² RGB raster in UTM 32N (1 m pixels) with smooth colour ramps and texture.
fn synthetic_geotiff(path: &Path) {
    let n = 2048u32;
    let mut data = Vec::with_capacity((n * n * 3) as usize);
    for y in 0..n {
        for x in 0..n {
            let t = ((x * 7 + y * 13) % 64) as u8;
            data.extend_from_slice(&[(x / 8) as u8, (y / 8) as u8, 128u8.wrapping_add(t)]);
        }
    }
    let mut enc = TiffEncoder::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut img = enc.new_image::<colortype::RGB8>(n, n).unwrap();
    let e = img.encoder();
    e.write_tag(Tag::ModelPixelScaleTag, &[1.0f64, 1.0, 0.0][..])
        .unwrap();
    e.write_tag(
        Tag::ModelTiepointTag,
        &[0.0f64, 0.0, 0.0, 500_000.0, 5_400_000.0, 0.0][..],
    )
    .unwrap();
    e.write_tag(
        Tag::GeoKeyDirectoryTag,
        &[
            1u16, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32632,
        ][..],
    )
    .unwrap();
    img.write_data(&data).unwrap();
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("utm.tif");
    synthetic_geotiff(&path);
    let scheme = TilingScheme::WebMercatorQuad;
    let cache = ChunkCache::new(256 << 20);
    let src =
        ImagerySource::open(0, &path, scheme, None, None, &cache, &Warnings::default()).unwrap();
    // A zoom-16 tile (≈ 1.8 m pixels at this latitude) inside the raster.
    let (cx, cy) = (
        (src.footprint.min_x + src.footprint.max_x) / 2.0,
        (src.footprint.min_y + src.footprint.max_y) / 2.0,
    );
    let z = 16;
    let span = scheme.tile_span(z);
    let e = scheme.extent();
    let id = QuadTileId::new(
        z,
        ((cx - e.min_x) / span) as u32,
        ((e.max_y - cy) / span) as u32,
    );
    let rect = scheme.tile_rect(id);

    let mut g = c.benchmark_group("warp");
    g.throughput(Throughput::Elements(1));
    for r in [Resampling::Nearest, Resampling::Bilinear, Resampling::Cubic] {
        g.bench_function(format!("tile-256/{r:?}").to_lowercase(), |b| {
            b.iter(|| render(&src, &cache, &rect, 256, r).unwrap().unwrap())
        });
    }
    g.finish();

    let tile = render(&src, &cache, &rect, 256, Resampling::Bilinear)
        .unwrap()
        .unwrap();
    let kids = [
        Some(tile.clone()),
        Some(tile.clone()),
        Some(tile.clone()),
        None,
    ];
    let mut g = c.benchmark_group("reduce");
    g.bench_function("tile-256/bilinear", |b| {
        b.iter(|| reduce(&kids, 256, Resampling::Bilinear))
    });
    g.finish();

    let mut half = tile.clone();
    for p in half.data.chunks_exact_mut(4).skip(256 * 128) {
        p.fill(0.0);
    }
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    for (name, t, f) in [
        ("png/opaque", &tile, ImageFormat::Png),
        ("png/alpha", &half, ImageFormat::Png),
        ("jpeg/opaque", &tile, ImageFormat::Jpeg),
        ("webp/alpha", &half, ImageFormat::Webp),
    ] {
        g.bench_function(name, |b| b.iter(|| encode_tile(t, f, 85).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
