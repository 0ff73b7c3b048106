//! TerrainSampler over DEMs written here, the terrain route's own output for them, the real
//! DEM samples (when present) and things that are no terrain.

use super::*;
use crate::error::ErrorKind;
use crate::job::{JobSpec, Target};
use crate::progress::Progress;
use crate::raster::{read_window, ChunkCache, GeoTiff, WindowRequest};
use crate::terrain::{run_terrain, TerrainOptions};
use std::path::PathBuf;
use tessera_proj::Transformer;
use tiff::encoder::{colortype, TiffEncoder};
use tiff::tags::Tag;

/// A north-up single-band Float32 DEM: pixel (c, r) has its outer corner at
/// `origin + (c·pixel, −r·pixel)`.
struct DemFile {
    width: u32,
    height: u32,
    origin: (f64, f64),
    pixel: f64,
    epsg: u16,
    geographic: bool,
    nodata: Option<f64>,
}

impl DemFile {
    fn write(&self, path: &Path, value: impl Fn(u32, u32) -> f32) {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = TiffEncoder::new(std::io::BufWriter::new(file)).unwrap();
        let mut img = enc
            .new_image::<colortype::Gray32Float>(self.width, self.height)
            .unwrap();
        img.rows_per_strip(8).unwrap();
        let (model, key) = if self.geographic {
            (2u16, 2048u16)
        } else {
            (1, 3072)
        };
        let e = img.encoder();
        e.write_tag(Tag::ModelPixelScaleTag, &[self.pixel, self.pixel, 0.0][..])
            .unwrap();
        e.write_tag(
            Tag::ModelTiepointTag,
            &[0.0, 0.0, 0.0, self.origin.0, self.origin.1, 0.0][..],
        )
        .unwrap();
        e.write_tag(
            Tag::GeoKeyDirectoryTag,
            &[
                1u16, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, key, 0, 1, self.epsg,
            ][..],
        )
        .unwrap();
        if let Some(nd) = self.nodata {
            e.write_tag(Tag::GdalNodata, &format!("{nd}")[..]).unwrap();
        }
        let data: Vec<f32> = (0..self.height)
            .flat_map(|r| (0..self.width).map(move |c| (c, r)))
            .map(|(c, r)| value(c, r))
            .collect();
        img.write_data(&data).unwrap();
    }

    /// Longitude/latitude of pixel coordinate (u, v) (corner-based) of a geographic DEM.
    fn lon_lat(&self, u: f64, v: f64) -> (f64, f64) {
        (
            self.origin.0 + u * self.pixel,
            self.origin.1 - v * self.pixel,
        )
    }
}

/// 200 × 200 pixels of 0.0001° west of Bonn: lon 7.0..7.02, lat 50.0..50.02.
fn geographic_dem(nodata: Option<f64>) -> DemFile {
    DemFile {
        width: 200,
        height: 200,
        origin: (7.0, 50.02),
        pixel: 0.0001,
        epsg: 4326,
        geographic: true,
        nodata,
    }
}

/// A small deterministic generator for test points.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
}

fn open(path: &Path) -> TerrainSampler {
    TerrainSampler::open(path, None, &Warnings::default()).unwrap()
}

fn codes(s: &TerrainSampler) -> Vec<&'static str> {
    let w = Warnings::default();
    s.drain_warnings_into(&w);
    w.take().0.into_iter().map(|w| w.code).collect()
}

#[test]
fn dem_plane_is_interpolated_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plane.tif");
    let dem = geographic_dem(None);
    let plane = |c: f64, r: f64| 100.0 + 0.5 * c + 0.25 * r;
    dem.write(&path, |c, r| plane(f64::from(c), f64::from(r)) as f32);
    let s = open(&path);
    // Pixel centres give the stored values.
    for (c, r) in [(0u32, 0u32), (199, 199), (17, 120), (0, 199)] {
        let (lon, lat) = dem.lon_lat(f64::from(c) + 0.5, f64::from(r) + 0.5);
        let h = s.height_at(lon, lat).unwrap();
        assert!(
            (h - plane(f64::from(c), f64::from(r))).abs() < 1e-6,
            "{c},{r}: {h}"
        );
    }
    // Between pixel centres, bilinear interpolation of a plane is the plane.
    let mut rng = Rng(1);
    for _ in 0..200 {
        let (u, v) = (rng.range(0.5, 199.5), rng.range(0.5, 199.5));
        let (lon, lat) = dem.lon_lat(u, v);
        let h = s.height_at(lon, lat).unwrap();
        assert!((h - plane(u - 0.5, v - 0.5)).abs() < 1e-6, "{u},{v}: {h}");
    }
    assert!(codes(&s).is_empty());
}

#[test]
fn dem_in_utm_goes_through_proj_from_many_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("utm.tif");
    let dem = DemFile {
        width: 300,
        height: 250,
        origin: (356_000.0, 5_700_000.0),
        pixel: 2.0,
        epsg: 25832,
        geographic: false,
        nodata: None,
    };
    let plane = |c: f64, r: f64| 50.0 + 0.1 * c - 0.2 * r;
    dem.write(&path, |c, r| plane(f64::from(c), f64::from(r)) as f32);
    let s = open(&path);
    let to_geo = Transformer::new("EPSG:25832", "EPSG:4326").unwrap();
    let mut rng = Rng(2);
    let cases: Vec<(f64, f64, f64)> = (0..100)
        .map(|_| {
            let (u, v) = (rng.range(0.5, 299.5), rng.range(0.5, 249.5));
            let mut p = [[356_000.0 + 2.0 * u, 5_700_000.0 - 2.0 * v, 0.0]];
            to_geo.transform(&mut p).unwrap();
            (p[0][0], p[0][1], plane(u - 0.5, v - 0.5))
        })
        .collect();
    std::thread::scope(|scope| {
        for part in cases.chunks(25) {
            let s = &s;
            scope.spawn(move || {
                for (lon, lat, want) in part {
                    let h = s.height_at(*lon, *lat).unwrap();
                    assert!((h - want).abs() < 1e-5, "{lon},{lat}: {h} vs {want}");
                }
            });
        }
    });
}

#[test]
fn nodata_and_points_off_the_dem_have_no_height() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("holes.tif");
    let dem = geographic_dem(Some(-9999.0));
    let hole = |c: u32, r: u32| (50..53).contains(&c) && (50..53).contains(&r);
    dem.write(&path, |c, r| {
        if hole(c, r) {
            -9999.0
        } else {
            (c + 2 * r) as f32
        }
    });
    let s = open(&path);
    let at = |u: f64, v: f64| {
        let (lon, lat) = dem.lon_lat(u, v);
        s.height_at(lon, lat)
    };
    let near = |h: Option<f64>, want: f64| h.is_some_and(|h| (h - want).abs() < 1e-6);
    assert_eq!(at(51.5, 51.5), None, "the middle of the hole");
    assert!(near(at(10.5, 10.5), 30.0));
    // Beside the hole only pixels with data count (as the terrain route does).
    assert!(near(at(50.0, 40.5), 49.5 + 80.0));
    assert!(near(at(50.0, 51.5), 49.0 + 102.0));
    // Off the raster, and far away.
    assert_eq!(at(-0.1, 10.0), None);
    assert_eq!(at(10.0, 200.1), None);
    assert_eq!(s.height_at(8.0, 50.01), None);
    assert_eq!(s.height_at(7.01, -50.01), None);
    assert_eq!(s.height_at(f64::NAN, 50.01), None);
    assert_eq!(s.height_at(f64::INFINITY, 50.01), None);
    // The DEM's own half-pixel rim still has heights.
    assert!(near(at(0.1, 0.1), 0.0));
}

/// Terrain tiles written by the terrain route for `dem` into `out`; returns the finest zoom.
fn make_terrain(dem: &Path, out: &Path, max_error_m: f64) -> u8 {
    let mut spec = JobSpec::new(vec![dem.to_path_buf()], out.to_path_buf());
    spec.target = Target::Terrain;
    spec.terrain = TerrainOptions {
        max_error_m: Some(max_error_m),
        ..TerrainOptions::default()
    };
    run_terrain(&spec, &Progress::new()).unwrap().max_level
}

/// The tile file of the geographic TMS pyramid holding a point.
fn tile_file(root: &Path, z: u8, lon: f64, lat: f64) -> PathBuf {
    let span = 180.0 / f64::from(1u32 << z);
    let x = ((lon + 180.0) / span).floor();
    let y = ((lat + 90.0) / span).floor();
    root.join(format!("{z}/{x}/{y}.terrain"))
}

fn hills(c: u32, r: u32) -> f32 {
    let (x, y) = (f64::from(c), f64::from(r));
    (100.0 + 20.0 * (x / 12.0).sin() * (y / 15.0).cos() + 0.3 * x) as f32
}

#[test]
fn terrain_folder_agrees_with_its_dem() {
    let tmp = tempfile::tempdir().unwrap();
    let tif = tmp.path().join("hills.tif");
    let dem = geographic_dem(None);
    dem.write(&tif, hills);
    let out = tmp.path().join("terrain");
    let max_error_m = 0.25;
    let zoom = make_terrain(&tif, &out, max_error_m);
    let from_dem = open(&tif);
    let from_tiles = open(&out);
    let via_layer = open(&out.join("layer.json"));
    let mut rng = Rng(3);
    let points: Vec<(f64, f64)> = (0..48)
        .map(|_| dem.lon_lat(rng.range(1.0, 199.0), rng.range(1.0, 199.0)))
        .collect();
    let mut worst = 0f64;
    let mut heights = Vec::new();
    for &(lon, lat) in &points {
        let d = from_dem.height_at(lon, lat).unwrap();
        let t = from_tiles.height_at(lon, lat).unwrap();
        assert_eq!(via_layer.height_at(lon, lat), Some(t));
        worst = worst.max((d - t).abs());
        heights.push(t);
    }
    // The mesh keeps grid points within max_error_m of the DEM; between grid points (about
    // 1.7 DEM pixels apart at zoom `zoom`) its flat triangles add a little more.
    eprintln!("zoom {zoom}: worst difference {worst:.3} m");
    assert!(worst <= max_error_m + 0.15, "zoom {zoom}: worst {worst}");
    assert!(codes(&from_tiles).is_empty());
    // Outside the DEM's extent the terrain has no data (its tiles say 0 m there).
    assert_eq!(from_tiles.height_at(7.1, 50.01), None);
    assert_eq!(from_tiles.height_at(-120.0, -30.0), None);
    assert_eq!(from_tiles.height_at(7.01, 91.0), None);
    // The same tiles stored without gzip give the same heights.
    for &(lon, lat) in &points {
        let f = tile_file(&out, zoom, lon, lat);
        let gz = std::fs::read(&f).unwrap();
        if gz.starts_with(&[0x1f, 0x8b]) {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw)
                .unwrap();
            std::fs::write(&f, raw).unwrap();
        }
    }
    let plain = open(&out);
    for (&(lon, lat), h) in points.iter().zip(&heights) {
        assert_eq!(plain.height_at(lon, lat), Some(*h));
    }
}

#[test]
fn terrain_folder_agrees_with_a_projected_dem() {
    // 600 m × 500 m in UTM 32N at 2 m: the terrain route and the DEM sampler both go
    // through PROJ, so both must land on the same DEM pixels.
    let tmp = tempfile::tempdir().unwrap();
    let tif = tmp.path().join("utm-hills.tif");
    let dem = DemFile {
        width: 300,
        height: 250,
        origin: (356_000.0, 5_700_000.0),
        pixel: 2.0,
        epsg: 25832,
        geographic: false,
        nodata: None,
    };
    dem.write(&tif, hills);
    let out = tmp.path().join("terrain");
    let max_error_m = 0.25;
    let zoom = make_terrain(&tif, &out, max_error_m);
    let (from_dem, from_tiles) = (open(&tif), open(&out));
    let to_geo = Transformer::new("EPSG:25832", "EPSG:4326").unwrap();
    let mut rng = Rng(5);
    let mut worst = 0f64;
    for _ in 0..40 {
        let (u, v) = (rng.range(2.0, 298.0), rng.range(2.0, 248.0));
        let mut p = [[356_000.0 + 2.0 * u, 5_700_000.0 - 2.0 * v, 0.0]];
        to_geo.transform(&mut p).unwrap();
        let d = from_dem.height_at(p[0][0], p[0][1]).unwrap();
        let t = from_tiles.height_at(p[0][0], p[0][1]).unwrap();
        worst = worst.max((d - t).abs());
    }
    eprintln!("zoom {zoom}: worst difference {worst:.3} m");
    assert!(worst <= max_error_m + 0.15, "zoom {zoom}: worst {worst}");
}

#[test]
fn broken_and_missing_tiles_warn_and_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let tif = tmp.path().join("hills.tif");
    let dem = geographic_dem(None);
    dem.write(&tif, hills);
    let out = tmp.path().join("terrain");
    let zoom = make_terrain(&tif, &out, 0.25);
    let (lon, lat) = dem.lon_lat(100.0, 100.0);
    let reference = open(&tif).height_at(lon, lat).unwrap();

    // A missing finest tile: the parent answers, with a warning.
    let finest = tile_file(&out, zoom, lon, lat);
    let saved = std::fs::read(&finest).unwrap();
    std::fs::remove_file(&finest).unwrap();
    let s = open(&out);
    let h = s.height_at(lon, lat).unwrap();
    assert!((h - reference).abs() < 2.0, "{h} vs {reference}");
    assert_eq!(codes(&s), vec!["terrain-tile-missing"]);

    // A truncated tile and one of random bytes: no height there, one warning per tile.
    for bytes in [saved[..saved.len() / 2].to_vec(), vec![0x5a; 500]] {
        std::fs::write(&finest, &bytes).unwrap();
        let s = open(&out);
        assert_eq!(s.height_at(lon, lat), None);
        assert_eq!(s.height_at(lon, lat), None);
        assert_eq!(codes(&s), vec!["terrain-tile-corrupt"]);
    }
    // A gzip stream cut short.
    let raw = {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&saved[..]), &mut v).unwrap();
        v
    };
    assert!(raw.len() > 92);
    std::fs::write(&finest, &saved[..20]).unwrap();
    let s = open(&out);
    assert_eq!(s.height_at(lon, lat), None);
    let job = Warnings::default();
    s.drain_warnings_into(&job);
    let (w, _) = job.take();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].message.contains(&finest.display().to_string()),
        "{}",
        w[0].message
    );
}

#[test]
fn things_that_are_no_terrain_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let check = |path: &Path, needle: &str| {
        let e = match TerrainSampler::open(path, None, &Warnings::default()) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::Data);
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    };
    check(&dir.join("nowhere"), "no such file");
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    check(&empty, "no layer.json");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello, terrain").unwrap();
    check(&text, "--clamp-to-terrain takes");
    let void = dir.join("void.tif");
    std::fs::write(&void, "").unwrap();
    check(&void, "empty");
    let layer = |name: &str, json: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("layer.json"), json).unwrap();
        d
    };
    let d = layer("bad-json", "{ not json");
    check(&d.join("layer.json"), "not valid JSON");
    let d = layer(
        "heightmap",
        r#"{"format":"heightmap-1.0","tiles":["{z}/{x}/{y}.terrain"]}"#,
    );
    check(&d.join("layer.json"), "heightmap-1.0");
    let d = layer(
        "mercator",
        r#"{"format":"quantized-mesh-1.0","projection":"EPSG:3857","tiles":["{z}/{x}/{y}.terrain"]}"#,
    );
    check(&d.join("layer.json"), "EPSG:3857");
    let d = layer(
        "remote",
        r#"{"format":"quantized-mesh-1.0","tiles":["https://example.com/{z}/{x}/{y}.terrain"]}"#,
    );
    check(&d.join("layer.json"), "download");
    let d = layer(
        "no-tiles",
        r#"{"format":"quantized-mesh-1.0","tiles":["{z}/{x}/{y}.terrain?v={version}"]}"#,
    );
    check(&d.join("layer.json"), "no tile at level 0");
    // An RGB image is imagery, not a DEM.
    let rgb = dir.join("rgb.tif");
    {
        let file = std::fs::File::create(&rgb).unwrap();
        let mut enc = TiffEncoder::new(file).unwrap();
        let mut img = enc.new_image::<colortype::RGB8>(4, 4).unwrap();
        let e = img.encoder();
        e.write_tag(Tag::ModelPixelScaleTag, &[0.1, 0.1, 0.0][..])
            .unwrap();
        e.write_tag(Tag::ModelTiepointTag, &[0.0, 0.0, 0.0, 7.0, 50.0, 0.0][..])
            .unwrap();
        e.write_tag(
            Tag::GeoKeyDirectoryTag,
            &[1u16, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326][..],
        )
        .unwrap();
        img.write_data(&[0u8; 48]).unwrap();
    }
    check(&rgb, "single-band");
}

#[test]
fn a_geoid_is_reported_as_unused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("plane.tif");
    geographic_dem(None).write(&path, |_, _| 5.0);
    let w = Warnings::default();
    let s =
        TerrainSampler::open(&path, Some(Path::new("/usr/share/proj/egm96_15.gtx")), &w).unwrap();
    let h = s.height_at(7.01, 50.01).unwrap();
    assert!((h - 5.0).abs() < 1e-9, "{h}");
    let (w, _) = w.take();
    assert_eq!(
        w.iter().map(|w| w.code).collect::<Vec<_>>(),
        vec!["clamp-geoid-unused"]
    );
}

/// The shared sample data, or `None` (with a note) when it is absent outside CI.
fn samples() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("geotiff/dem").is_dir() {
        return Some(dir);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "sample data not found at {} (set TESSERA_SAMPLES)",
        dir.display()
    );
    eprintln!("skipping: sample data not found at {}", dir.display());
    None
}

#[test]
fn real_dems_give_their_pixel_values_at_pixel_centres() {
    let Some(data) = samples() else { return };
    for (name, crs) in [
        ("dom1_32_356_5699_1_nw_2020.tif", "EPSG:25832"),
        ("pysheds_dem.tif", "EPSG:4326"),
    ] {
        let path = data.join("geotiff/dem").join(name);
        let s = open(&path);
        let tiff = GeoTiff::open(&path).unwrap();
        let cache = ChunkCache::new(16 << 20);
        let to_geo = Transformer::new(crs, "EPSG:4326").unwrap();
        let mut rng = Rng(4);
        let (mut with_data, mut nodata) = (0, 0);
        for _ in 0..300 {
            let c = (rng.unit() * f64::from(tiff.width)) as i64;
            let r = (rng.unit() * f64::from(tiff.height)) as i64;
            let win = read_window(
                &cache,
                0,
                &tiff,
                WindowRequest {
                    level: 0,
                    x0: c,
                    y0: r,
                    width: 1,
                    height: 1,
                    factor: 1,
                },
            )
            .unwrap();
            let (x, y) = tiff.geo.apply(c as f64 + 0.5, r as f64 + 0.5);
            let mut p = [[x, y, 0.0]];
            to_geo.transform(&mut p).unwrap();
            let h = s.height_at(p[0][0], p[0][1]);
            if win.alpha[0] > 0.5 {
                let want = f64::from(win.values[0]);
                let h = h.unwrap_or_else(|| panic!("{name} ({c},{r}): no height"));
                assert!((h - want).abs() < 1e-3, "{name} ({c},{r}): {h} vs {want}");
                with_data += 1;
            } else {
                assert_eq!(h, None, "{name} ({c},{r}) is nodata");
                nodata += 1;
            }
        }
        assert!(
            with_data > 100,
            "{name}: {with_data} with data, {nodata} without"
        );
    }
}
