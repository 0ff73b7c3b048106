//! GeoTIFF DEM → quantized-mesh terrain over the real samples and generated bad rasters.

use crate::helpers::{assert_data_error, run_with_threads, samples, tessera, tree};
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use tessera_fixtures::tiff::{TiffBuilder, Val};
use tessera_model::{QuadTileId, TilingScheme};
use tessera_pipeline::raster::{read_window, ChunkCache, GeoTiff, WindowRequest};
use tessera_pipeline::terrain::TerrainOptions;
use tessera_pipeline::{JobSpec, Target};

fn terrain_spec(input: &Path, out: &Path, opts: TerrainOptions) -> JobSpec {
    let mut spec = JobSpec::new(vec![input.to_path_buf()], out.to_path_buf());
    spec.target = Target::Terrain;
    spec.terrain = opts;
    spec
}

/// A decoded quantized-mesh tile: header heights, u/v/h per vertex, triangles.
struct Qm {
    min_h: f64,
    max_h: f64,
    u: Vec<f64>,
    v: Vec<f64>,
    h: Vec<f64>,
    tris: Vec<[usize; 3]>,
    /// (extension id, payload).
    extensions: Vec<(u8, Vec<u8>)>,
}

fn decode(path: &Path) -> Qm {
    let gz = std::fs::read(path).unwrap();
    let mut b = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut b)
        .unwrap();
    let f32_at = |o: usize| f64::from(f32::from_le_bytes(b[o..o + 4].try_into().unwrap()));
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let (min_h, max_h) = (f32_at(24), f32_at(28));
    let n = u32_at(88);
    let mut arrays = Vec::new();
    let mut pos = 92;
    for _ in 0..3 {
        let mut acc = 0i32;
        let mut v = Vec::with_capacity(n);
        for k in 0..n {
            let z = i32::from(u16_at(pos + 2 * k));
            acc += (z >> 1) ^ -(z & 1);
            v.push(f64::from(acc));
        }
        arrays.push(v);
        pos += 2 * n;
    }
    assert!(n <= 65_536, "16-bit indices expected");
    let tri_count = u32_at(pos);
    pos += 4;
    let mut highest = 0usize;
    let mut idx = Vec::with_capacity(tri_count * 3);
    for k in 0..tri_count * 3 {
        let code = usize::from(u16_at(pos + 2 * k));
        idx.push(highest - code);
        if code == 0 {
            highest += 1;
        }
    }
    let tris = idx.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect();
    pos += tri_count * 6;
    for _ in 0..4 {
        let k = u32_at(pos);
        pos += 4 + 2 * k;
    }
    let mut extensions = Vec::new();
    while pos < b.len() {
        let id = b[pos];
        let len = u32_at(pos + 1);
        extensions.push((id, b[pos + 5..pos + 5 + len].to_vec()));
        pos += 5 + len;
    }
    let h = arrays.pop().unwrap();
    let v = arrays.pop().unwrap();
    let u = arrays.pop().unwrap();
    Qm {
        min_h,
        max_h,
        u,
        v,
        h,
        tris,
        extensions,
    }
}

impl Qm {
    /// Mesh height at (u, v) in 0..32767, by barycentric interpolation.
    fn height_at(&self, u: f64, v: f64) -> Option<f64> {
        let hm = |i: usize| self.min_h + (self.max_h - self.min_h) * self.h[i] / 32767.0;
        for t in &self.tris {
            let (a, b, c) = (t[0], t[1], t[2]);
            let d = (self.v[b] - self.v[c]) * (self.u[a] - self.u[c])
                + (self.u[c] - self.u[b]) * (self.v[a] - self.v[c]);
            let l1 = ((self.v[b] - self.v[c]) * (u - self.u[c])
                + (self.u[c] - self.u[b]) * (v - self.v[c]))
                / d;
            let l2 = ((self.v[c] - self.v[a]) * (u - self.u[c])
                + (self.u[a] - self.u[c]) * (v - self.v[c]))
                / d;
            let l3 = 1.0 - l1 - l2;
            if l1 >= -1e-9 && l2 >= -1e-9 && l3 >= -1e-9 {
                return Some(l1 * hm(a) + l2 * hm(b) + l3 * hm(c));
            }
        }
        None
    }
}

#[test]
fn every_dem_converts_with_consistent_layer_json() {
    let Some(s) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for name in ["dom1_32_356_5699_1_nw_2020.tif", "pysheds_dem.tif"] {
        let out = tmp.path().join(name);
        let r = run_with_threads(
            &terrain_spec(
                &s.join("geotiff/dem").join(name),
                &out,
                TerrainOptions::default(),
            ),
            2,
        )
        .unwrap();
        let layer: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("layer.json")).unwrap()).unwrap();
        assert_eq!(layer["format"], "quantized-mesh-1.0");
        assert_eq!(layer["scheme"], "tms");
        let available = layer["available"].as_array().unwrap();
        assert_eq!(available.len(), usize::from(r.max_level) + 1);
        // Every tile listed exists, and nothing else does.
        let mut listed = 0;
        for (z, ranges) in available.iter().enumerate() {
            for rg in ranges.as_array().unwrap() {
                let n = |k: &str| rg[k].as_u64().unwrap();
                for x in n("startX")..=n("endX") {
                    for y in n("startY")..=n("endY") {
                        assert!(
                            out.join(format!("{z}/{x}/{y}.terrain")).is_file(),
                            "{z}/{x}/{y}"
                        );
                        listed += 1;
                    }
                }
            }
        }
        let files = tree(&out)
            .into_iter()
            .filter(|(p, _)| p.ends_with(".terrain"))
            .count();
        assert_eq!(files, listed);
        assert_eq!(files as u64, r.tiles);
        assert!(out.join("0/0/0.terrain").is_file() && out.join("0/1/0.terrain").is_file());
    }
}

#[test]
fn mesh_heights_stay_within_the_requested_error() {
    let Some(s) = samples() else { return };
    let src = s.join("geotiff/dem/dom1_32_356_5699_1_nw_2020.tif");
    let tmp = tempfile::tempdir().unwrap();
    let max_err = 0.5;
    let opts = TerrainOptions {
        max_error_m: Some(max_err),
        ..TerrainOptions::default()
    };
    let r = run_with_threads(&terrain_spec(&src, tmp.path(), opts), 2).unwrap();
    let z = r.max_level;
    let tiff = GeoTiff::open(&src).unwrap();
    let inv = tiff.geo.inverse().unwrap();
    let cache = ChunkCache::new(64 << 20);
    let dem = read_window(
        &cache,
        0,
        &tiff,
        WindowRequest {
            level: 0,
            x0: 0,
            y0: 0,
            width: 1000,
            height: 1000,
            factor: 1,
        },
    )
    .unwrap();
    let to_utm = tessera_proj::Transformer::new("EPSG:4326", "EPSG:25832").unwrap();
    let scheme = TilingScheme::GeographicQuad;
    let mut checked = 0;
    let mut seed = 12345u64;
    let mut rnd = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for (rel, _) in tree(tmp.path()) {
        let parts: Vec<&str> = rel.trim_end_matches(".terrain").split('/').collect();
        if parts.len() != 3 || parts[0] != z.to_string() {
            continue;
        }
        let (x, tms_y): (u32, u32) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        let id = QuadTileId::new(z, x, scheme.tiles_y(z) - 1 - tms_y);
        let rect = scheme.tile_rect(id);
        let qm = decode(&tmp.path().join(&rel));
        let step = (qm.max_h - qm.min_h) / 32767.0;
        for _ in 0..200 {
            // A random point of the tile's 129 x 129 vertex grid.
            let (i, j) = (rnd(129) as f64, rnd(129) as f64);
            let (lon, lat) = (
                rect.min_x + rect.width() * i / 128.0,
                rect.min_y + rect.height() * j / 128.0,
            );
            let mut p = [[lon, lat, 0.0]];
            to_utm.transform(&mut p).unwrap();
            let (c, rw) = inv.apply(p[0][0], p[0][1]);
            // Only points well inside the DEM (the mesh drops to 0 m outside it).
            if !(1.0..998.0).contains(&c) || !(1.0..998.0).contains(&rw) {
                continue;
            }
            let (tx, ty) = (c - 0.5, rw - 0.5);
            let (x0, y0) = (tx.floor() as usize, ty.floor() as usize);
            let (ax, ay) = (tx - x0 as f64, ty - y0 as f64);
            let at = |x: usize, y: usize| f64::from(dem.values[y * 1000 + x]);
            let want = (1.0 - ay) * ((1.0 - ax) * at(x0, y0) + ax * at(x0 + 1, y0))
                + ay * ((1.0 - ax) * at(x0, y0 + 1) + ax * at(x0 + 1, y0 + 1));
            let got = qm
                .height_at(i * 32767.0 / 128.0, j * 32767.0 / 128.0)
                .unwrap();
            assert!(
                (got - want).abs() <= max_err + step + 1e-3,
                "tile {rel}, grid point {i},{j}: mesh {got:.3} m, DEM {want:.3} m"
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} points checked");
}

#[test]
fn one_and_four_threads_write_the_same_terrain() {
    let Some(s) = samples() else { return };
    let src = s.join("geotiff/dem/pysheds_dem.tif");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_with_threads(&terrain_spec(&src, &a, TerrainOptions::default()), 1).unwrap();
    run_with_threads(&terrain_spec(&src, &b, TerrainOptions::default()), 4).unwrap();
    assert_eq!(tree(&a), tree(&b));
}

#[test]
fn bad_dems_are_refused_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let run = |p: &Path, out: &str| {
        vec![
            "convert".to_string(),
            "--to".into(),
            "terrain".into(),
            p.to_str().unwrap().into(),
            "-o".into(),
            t.join(out).to_str().unwrap().into(),
            "-q".into(),
        ]
    };
    let call = |p: &Path, out: &str, needle: &str| {
        let args = run(p, out);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_data_error(&tessera(&refs, Duration::from_secs(60)), p, needle);
    };
    let gray16 = |b: TiffBuilder| {
        b.tag(258, Val::Short(vec![16]))
            .tag(262, Val::Short(vec![1]))
            .tag(277, Val::Short(vec![1]))
            .tag(339, Val::Short(vec![2]))
    };
    // 10^6 x 10^6 pixels claimed.
    let mut huge = gray16(TiffBuilder::new(1_000_000, 1_000_000))
        .tag(259, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![1_000_000]))
        .georef(4326, true, 0.0, 10.0, 0.00001);
    huge.strips.push(vec![0; 64]);
    let p = t.join("huge.tif");
    std::fs::write(&p, huge.build()).unwrap();
    call(&p, "o1", "more than the");
    // JPEG 2000 compression.
    let mut j2k = gray16(TiffBuilder::new(4, 4))
        .tag(259, Val::Short(vec![34712]))
        .tag(278, Val::Long(vec![4]))
        .georef(4326, true, 0.0, 10.0, 1.0);
    j2k.strips.push(vec![0; 32]);
    let p = t.join("j2k.tif");
    std::fs::write(&p, j2k.build()).unwrap();
    call(&p, "o2", "JPEG 2000");
    // No CRS.
    let mut nocrs = gray16(TiffBuilder::new(4, 4))
        .tag(259, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![4]))
        .tag(33550, Val::Double(vec![1.0, 1.0, 0.0]))
        .tag(33922, Val::Double(vec![0.0, 0.0, 0.0, 5.0, 45.0, 0.0]));
    nocrs.strips.push(vec![0; 32]);
    let p = t.join("nocrs.tif");
    std::fs::write(&p, nocrs.build()).unwrap();
    call(&p, "o3", "--input-crs");
    // An RGB image given as terrain.
    if let Some(s) = samples() {
        let rgb = s.join("geotiff/imagery/RGB.byte.tif");
        call(&rgb, "o4", "single-band elevation model");
    }
}

#[test]
fn water_mask_raster_becomes_the_watermask_extension() {
    let Some(s) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // West of -97.33 water, east land: one 8-bit row of two pixels over the DEM's area.
    let mut b = TiffBuilder::new(2, 1)
        .tag(258, Val::Short(vec![8]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![1]))
        .georef(4326, true, -97.49, 32.83, 0.16);
    b.strips.push(vec![1, 0]);
    let mask = tmp.path().join("water.tif");
    std::fs::write(&mask, b.build()).unwrap();
    let out = tmp.path().join("out");
    let opts = TerrainOptions {
        watermask: true,
        water_mask: Some(mask),
        ..TerrainOptions::default()
    };
    run_with_threads(
        &terrain_spec(&s.join("geotiff/dem/pysheds_dem.tif"), &out, opts),
        2,
    )
    .unwrap();
    let (mut full, mut water_px, mut land_px) = (0, 0, 0);
    for (rel, _) in tree(&out)
        .into_iter()
        .filter(|(p, _)| p.ends_with(".terrain"))
    {
        let qm = decode(&out.join(&rel));
        let (_, m) = qm
            .extensions
            .iter()
            .find(|(id, _)| *id == 2)
            .expect("watermask extension");
        assert!(
            m.len() == 1 || m.len() == 65_536,
            "{rel}: {} bytes",
            m.len()
        );
        if m.len() == 65_536 {
            full += 1;
            water_px += m.iter().filter(|v| **v == 255).count();
            land_px += m.iter().filter(|v| **v == 0).count();
            // Columns run west to east: water exactly over the mask's western pixel.
            let parts: Vec<u32> = rel
                .trim_end_matches(".terrain")
                .split('/')
                .map(|p| p.parse().unwrap())
                .collect();
            let span = 180.0 / f64::from(1u32 << parts[0]);
            if parts[0] < 6 {
                continue; // mask pixels smaller than a tile pixel
            }
            let west = -180.0 + f64::from(parts[1]) * span;
            let north = -90.0 + f64::from(parts[2] + 1) * span;
            let r = ((north - 32.75) / span * 256.0).floor();
            if !(0.0..256.0).contains(&r) {
                continue;
            }
            let r = r as usize;
            let row = &m[r * 256..(r + 1) * 256];
            for (c, v) in row.iter().enumerate() {
                let lon = west + (c as f64 + 0.5) / 256.0 * span;
                if (-97.485..-97.335).contains(&lon) {
                    assert_eq!(*v, 255, "{rel} column {c} (lon {lon:.4}) should be water");
                } else if !(-97.495..-97.325).contains(&lon) {
                    assert_eq!(*v, 0, "{rel} column {c} (lon {lon:.4}) should be land");
                }
            }
        }
    }
    assert!(
        full > 0 && water_px > 0 && land_px > 0,
        "{full} full masks, {water_px} water, {land_px} land"
    );
}

/// A Float32 DEM in EPSG:4326, north-west corner (lon, lat), 0.01° pixels, every pixel `h`.
fn flat_dem(w: u32, h_px: u32, lon: f64, lat: f64, h: f32) -> Vec<u8> {
    let data: Vec<u8> = (0..w * h_px).flat_map(|_| h.to_le_bytes()).collect();
    let mut b = TiffBuilder::new(w, h_px)
        .tag(258, Val::Short(vec![32]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![h_px]))
        .tag(339, Val::Short(vec![3]))
        .georef(4326, true, lon, lat, 0.01);
    b.strips.push(data);
    b.build()
}

#[test]
fn several_dems_mosaic_into_one_surface() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dems");
    std::fs::create_dir(&dir).unwrap();
    // Two 1° x 1° DEMs side by side at 100 m and 300 m.
    std::fs::write(dir.join("a.tif"), flat_dem(100, 100, 10.0, 46.0, 100.0)).unwrap();
    std::fs::write(dir.join("b.tif"), flat_dem(100, 100, 11.0, 46.0, 300.0)).unwrap();
    let out = tmp.path().join("out");
    let opts = TerrainOptions {
        max_zoom: Some(8),
        ..TerrainOptions::default()
    };
    let mut spec = terrain_spec(&dir, &out, opts);
    spec.inputs = vec![dir.clone()];
    let r = run_with_threads(&spec, 2).unwrap();
    assert_eq!(r.inputs.len(), 2);
    let scheme = TilingScheme::GeographicQuad;
    let z = 8u8;
    let span = scheme.tile_span(z);
    // Points well inside each DEM read that DEM's height from the mesh.
    for (lon, lat, want) in [
        (10.3, 45.5, 100.0),
        (10.7, 45.3, 100.0),
        (11.3, 45.5, 300.0),
        (11.8, 45.2, 300.0),
    ] {
        let id = QuadTileId::new(
            z,
            ((lon + 180.0) / span) as u32,
            ((90.0 - lat) / span) as u32,
        );
        let rect = scheme.tile_rect(id);
        let qm = decode(&out.join(format!("{z}/{}/{}.terrain", id.x, scheme.tms_y(id))));
        let u = (lon - rect.min_x) / rect.width() * 32767.0;
        let v = (lat - rect.min_y) / rect.height() * 32767.0;
        let got = qm.height_at(u, v).unwrap();
        assert!(
            (got - want).abs() < 0.5,
            "{lon},{lat}: {got} m, want {want}"
        );
    }
}
