//! GeoTIFF → TMS imagery over the real samples and over generated odd rasters.

use crate::helpers::{assert_data_error, run_with_threads, samples, tessera, tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_fixtures::tiff::{TiffBuilder, Val};
use tessera_model::{QuadTileId, TilingScheme};
use tessera_pipeline::imagery::{ImageryOptions, Resampling};
use tessera_pipeline::{JobReport, JobSpec, Target};

fn imagery_spec(input: &Path, out: &Path, opts: ImageryOptions) -> JobSpec {
    let mut spec = JobSpec::new(vec![input.to_path_buf()], out.to_path_buf());
    spec.target = Target::Imagery;
    spec.imagery = opts;
    spec
}

/// Every tile under `dir`: (z, x, row as written) → RGBA image.
fn read_tiles(dir: &Path) -> BTreeMap<(u8, u32, u32), image::RgbaImage> {
    let mut out = BTreeMap::new();
    for (rel, _) in tree(dir) {
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() != 3 {
            continue;
        }
        let (stem, _ext) = parts[2].split_once('.').unwrap();
        let key = (
            parts[0].parse().unwrap(),
            parts[1].parse().unwrap(),
            stem.parse().unwrap(),
        );
        let img = image::open(dir.join(&rel)).unwrap().to_rgba8();
        out.insert(key, img);
    }
    out
}

/// Structural checks every pyramid must pass: the XML, tile sizes, tile ranges, no empty tiles.
fn check_pyramid(dir: &Path, report: &JobReport, scheme: TilingScheme) {
    let xml = std::fs::read_to_string(dir.join("tilemapresource.xml")).unwrap();
    assert!(
        xml.contains(&format!("<SRS>{}</SRS>", scheme.crs_code())),
        "{xml}"
    );
    let levels = xml.matches("<TileSet ").count();
    assert_eq!(levels, usize::from(report.max_level - report.min_level) + 1);
    let tiles = read_tiles(dir);
    assert_eq!(tiles.len() as u64, report.tiles);
    let e = report.extent_deg;
    for (&(z, x, row), img) in &tiles {
        assert!((report.min_level..=report.max_level).contains(&z));
        assert_eq!(img.dimensions(), (256, 256));
        assert!(img.pixels().any(|p| p.0[3] > 0), "{z}/{x}/{row} is empty");
        let id = QuadTileId::new(z, x, scheme.tiles_y(z) - 1 - row);
        let r = scheme.tile_rect(id);
        let (w, s, ea, n) = match scheme {
            TilingScheme::GeographicQuad => (r.min_x, r.min_y, r.max_x, r.max_y),
            TilingScheme::WebMercatorQuad => {
                let lat = |y: f64| (y / 6_378_137.0).sinh().atan().to_degrees();
                let lon = |x: f64| (x / 6_378_137.0).to_degrees();
                (lon(r.min_x), lat(r.min_y), lon(r.max_x), lat(r.max_y))
            }
        };
        assert!(
            w < e[2] + 1e-9 && ea > e[0] - 1e-9 && s < e[3] + 1e-9 && n > e[1] - 1e-9,
            "{z}/{x}/{row} lies outside the extent {e:?}"
        );
    }
}

fn imagery_samples() -> Option<Vec<PathBuf>> {
    let dir = samples()?.join("geotiff/imagery");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn every_imagery_sample_converts() {
    let Some(files) = imagery_samples() else {
        return;
    };
    assert!(files.len() >= 7);
    let tmp = tempfile::tempdir().unwrap();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let mut opts = ImageryOptions::default();
        if name == "cog_world" {
            // Low zooms of a 36000 x 18000 raster come from its overviews alone.
            opts.max_zoom = Some(3);
        }
        let out = tmp.path().join(&name);
        let r = run_with_threads(&imagery_spec(f, &out, opts), 2).unwrap();
        assert!(r.tiles > 0, "{name}");
        check_pyramid(&out, &r, TilingScheme::WebMercatorQuad);
        let reads = &r.inputs[0].raster_chunks_read;
        if name == "cog_world" {
            assert_eq!(reads[0], 0, "full resolution read for zoom 3: {reads:?}");
            assert!(reads.iter().sum::<u64>() > 0);
        }
        if name == "rio-tiler_cog_uint16" {
            assert!(r.warnings.iter().any(|w| w.code == "scaled-to-8-bit"));
            let tiles = read_tiles(&out);
            let (lo, hi) = tiles
                .values()
                .flat_map(|t| t.pixels())
                .filter(|p| p.0[3] == 255)
                .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
            assert!(hi - lo > 150, "16-bit values stretched to {lo}..{hi}");
        }
    }
}

#[test]
fn same_tiles_as_gdal2tiles_would_write() {
    // The tile set gdal2tiles -x -z 7-11 writes for RGB.byte.tif (counted with GDAL 3.6).
    let Some(s) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageryOptions {
        min_zoom: Some(7),
        max_zoom: Some(11),
        ..ImageryOptions::default()
    };
    let r = run_with_threads(
        &imagery_spec(&s.join("geotiff/imagery/RGB.byte.tif"), tmp.path(), opts),
        2,
    )
    .unwrap();
    let tiles = read_tiles(tmp.path());
    let per_level: Vec<usize> = (7..=11)
        .map(|z| tiles.keys().filter(|k| k.0 == z).count())
        .collect();
    assert_eq!(per_level, vec![3, 5, 14, 40, 133], "{} tiles", r.tiles);
    assert!(tiles.contains_key(&(7, 36, 73)) && tiles.contains_key(&(11, 575, 1163)));
}

#[test]
fn known_coordinate_lands_in_its_pixel() {
    let Some(s) = samples() else { return };
    let src = s.join("geotiff/imagery/RGB.byte.tif");
    let tiff = tessera_pipeline::raster::GeoTiff::open(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let z = 12;
    let opts = ImageryOptions {
        min_zoom: Some(z),
        max_zoom: Some(z),
        resampling: Resampling::Nearest,
        ..ImageryOptions::default()
    };
    run_with_threads(&imagery_spec(&src, tmp.path(), opts), 2).unwrap();
    let tiles = read_tiles(tmp.path());
    // Source pixels spread over the scene; their centres go through PROJ to web mercator.
    let to_merc = tessera_proj::Transformer::new("EPSG:32618", "EPSG:3857").unwrap();
    let scheme = TilingScheme::WebMercatorQuad;
    let mut checked = 0;
    for (col, row) in [
        (200u32, 300u32),
        (395, 359),
        (500, 150),
        (600, 500),
        (300, 600),
    ] {
        let (x, y) = tiff.geo.apply(f64::from(col) + 0.5, f64::from(row) + 0.5);
        let mut p = [[x, y, 0.0]];
        to_merc.transform(&mut p).unwrap();
        let span = scheme.tile_span(z);
        let e = scheme.extent();
        let fx = (p[0][0] - e.min_x) / span;
        let fy = (e.max_y - p[0][1]) / span;
        let id = QuadTileId::new(z, fx.floor() as u32, fy.floor() as u32);
        let px = ((fx - fx.floor()) * 256.0) as i64;
        let py = ((fy - fy.floor()) * 256.0) as i64;
        let Some(img) = tiles.get(&(z, id.x, scheme.tms_y(id))) else {
            panic!("no tile {id} for source pixel {col},{row}")
        };
        let want = source_pixel(&tiff, col, row);
        if want == [0, 0, 0] {
            continue; // nodata
        }
        let found = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
            .any(|(dx, dy)| {
                let (qx, qy) = (px + dx, py + dy);
                (0..256).contains(&qx)
                    && (0..256).contains(&qy)
                    && img.get_pixel(qx as u32, qy as u32).0[..3] == want
            });
        assert!(
            found,
            "source pixel {col},{row} {want:?} not within 1 px of {id} ({px},{py})"
        );
        checked += 1;
    }
    assert!(checked >= 4);
}

/// One pixel of an 8-bit RGB GeoTIFF through the library's own window reader.
fn source_pixel(t: &tessera_pipeline::raster::GeoTiff, col: u32, row: u32) -> [u8; 3] {
    use tessera_pipeline::raster::{read_window, ChunkCache, WindowRequest};
    let cache = ChunkCache::new(1 << 20);
    let w = read_window(
        &cache,
        0,
        t,
        WindowRequest {
            level: 0,
            x0: i64::from(col),
            y0: i64::from(row),
            width: 1,
            height: 1,
            factor: 1,
        },
    )
    .unwrap();
    [w.values[0] as u8, w.values[1] as u8, w.values[2] as u8]
}

#[test]
fn one_and_four_threads_write_the_same_tiles() {
    let Some(s) = samples() else { return };
    let src = s.join("geotiff/imagery/rgb_lzw.tif");
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageryOptions {
        min_zoom: Some(6),
        max_zoom: Some(10),
        resampling: Resampling::Cubic,
        ..ImageryOptions::default()
    };
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    run_with_threads(&imagery_spec(&src, &a, opts.clone()), 1).unwrap();
    run_with_threads(&imagery_spec(&src, &b, opts), 4).unwrap();
    assert_eq!(tree(&a), tree(&b));
}

#[test]
fn geodetic_profile_xyz_rows_and_wmts() {
    let Some(s) = samples() else { return };
    let src = s.join("geotiff/imagery/world.rgb.tif");
    let tmp = tempfile::tempdir().unwrap();
    let opts = ImageryOptions {
        profile: TilingScheme::GeographicQuad,
        min_zoom: Some(0),
        max_zoom: Some(1),
        ..ImageryOptions::default()
    };
    let r = run_with_threads(&imagery_spec(&src, tmp.path(), opts.clone()), 2).unwrap();
    check_pyramid(tmp.path(), &r, TilingScheme::GeographicQuad);
    let tiles = read_tiles(tmp.path());
    assert_eq!(tiles.keys().filter(|k| k.0 == 0).count(), 2);
    assert_eq!(tiles.keys().filter(|k| k.0 == 1).count(), 8);
    let xml = std::fs::read_to_string(tmp.path().join("tilemapresource.xml")).unwrap();
    assert!(
        xml.contains(r#"profile="geodetic""#)
            && xml.contains(r#"units-per-pixel="0.70312500000000""#)
    );
    // The world's north-west tile at zoom 1: TMS row 1, XYZ row 0; both hold the same image.
    let xyz = tmp.path().join("xyz");
    let opts = ImageryOptions {
        xyz: true,
        wmts: true,
        ..opts
    };
    run_with_threads(&imagery_spec(&src, &xyz, opts), 2).unwrap();
    let xyz_tiles = read_tiles(&xyz);
    assert_eq!(tiles[&(1, 0, 1)], xyz_tiles[&(1, 0, 0)]);
    let caps = std::fs::read_to_string(xyz.join("WMTSCapabilities.xml")).unwrap();
    assert!(caps.contains("<MatrixWidth>4</MatrixWidth><MatrixHeight>2</MatrixHeight>"));
}

/// An 8-bit palette raster, PackBits-compressed, georeferenced in EPSG:4326.
fn palette_tiff() -> Vec<u8> {
    let (w, h) = (64u32, 32u32);
    let mut idx = Vec::new();
    for y in 0..h {
        for x in 0..w {
            idx.push(if x < w / 2 { 1u8 } else { 2 } + if y >= h / 2 { 2 } else { 0 });
        }
    }
    // PackBits: literal runs of at most 128 bytes.
    let mut packed = Vec::new();
    for c in idx.chunks(128) {
        packed.push((c.len() - 1) as u8);
        packed.extend_from_slice(c);
    }
    let mut cmap = vec![0u16; 3 * 256];
    let colours = [
        [0, 0, 0],
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 0],
    ];
    for (i, c) in colours.iter().enumerate() {
        for ch in 0..3 {
            cmap[ch * 256 + i] = c[ch] * 257;
        }
    }
    let mut b = TiffBuilder::new(w, h)
        .tag(258, Val::Short(vec![8]))
        .tag(259, Val::Short(vec![32773]))
        .tag(262, Val::Short(vec![3]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![h]))
        .tag(320, Val::Short(cmap))
        .georef(4326, true, 10.0, 50.0, 0.25);
    b.strips.push(packed);
    b.build()
}

#[test]
fn palette_rasters_keep_their_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("palette.tif");
    std::fs::write(&src, palette_tiff()).unwrap();
    let out = tmp.path().join("out");
    let opts = ImageryOptions {
        profile: TilingScheme::GeographicQuad,
        resampling: Resampling::Nearest,
        ..ImageryOptions::default()
    };
    let r = run_with_threads(&imagery_spec(&src, &out, opts), 2).unwrap();
    check_pyramid(&out, &r, TilingScheme::GeographicQuad);
    let tiles = read_tiles(&out);
    let deepest = tiles.keys().map(|k| k.0).max().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (_, img) in tiles.iter().filter(|(k, _)| k.0 == deepest) {
        for p in img.pixels().filter(|p| p.0[3] == 255) {
            seen.insert([p.0[0], p.0[1], p.0[2]]);
        }
    }
    for c in [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]] {
        assert!(seen.contains(&c), "colour {c:?} missing from {seen:?}");
    }
    assert!(
        seen.len() <= 4,
        "nearest resampling invented colours: {seen:?}"
    );
}

const LIMIT: Duration = Duration::from_secs(60);

fn convert_imagery(input: &Path, out: &Path) -> crate::helpers::Outcome {
    tessera(
        &[
            "convert",
            "--to",
            "imagery",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ],
        LIMIT,
    )
}

fn assert_refused(input: &Path, out: &Path, needle: &str) {
    assert_data_error(&convert_imagery(input, out), input, needle);
    assert!(!out.join("tilemapresource.xml").exists());
}

#[test]
fn hostile_rasters_are_refused_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let gray = |b: TiffBuilder| {
        b.tag(258, Val::Short(vec![8]))
            .tag(259, Val::Short(vec![1]))
            .tag(262, Val::Short(vec![1]))
            .tag(277, Val::Short(vec![1]))
    };
    // 10^9 pixels claimed in one strip, a few bytes present.
    let mut huge = gray(TiffBuilder::new(40_000, 25_000))
        .tag(278, Val::Long(vec![25_000]))
        .georef(4326, true, 0.0, 10.0, 0.0001);
    huge.strips.push(vec![0; 16]);
    let p = write("huge_strip.tif", huge.build());
    assert_refused(&p, &tmp.path().join("o1"), "too big to decode safely");
    // 10^9 pixels claimed in 256 x 256 tiles whose data is not there.
    let tiles = 157 * 98;
    let huge = gray(TiffBuilder::new(40_000, 25_000))
        .tag(322, Val::Long(vec![256]))
        .tag(323, Val::Long(vec![256]))
        .tag(324, Val::Long(vec![1_000_000; tiles]))
        .tag(325, Val::Long(vec![65_536; tiles]))
        .georef(4326, true, 0.0, 10.0, 0.0001);
    let p = write("huge_tiles.tif", huge.build());
    assert_refused(
        &p,
        &tmp.path().join("o2"),
        "the file is truncated or corrupt",
    );
    // Complex samples.
    let mut complex = TiffBuilder::new(4, 4)
        .tag(258, Val::Short(vec![16]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![4]))
        .tag(339, Val::Short(vec![5]))
        .georef(4326, true, 0.0, 10.0, 1.0);
    complex.strips.push(vec![0; 32]);
    let p = write("complex.tif", complex.build());
    assert_refused(&p, &tmp.path().join("o3"), "complex");
    // No georeferencing at all.
    let mut plain = gray(TiffBuilder::new(4, 4)).tag(278, Val::Long(vec![4]));
    plain.strips.push(vec![7; 16]);
    let p = write("plain.tif", plain.build());
    assert_refused(&p, &tmp.path().join("o4"), "no georeferencing");
    // Georeferenced but no CRS.
    let mut nocrs = gray(TiffBuilder::new(4, 4))
        .tag(278, Val::Long(vec![4]))
        .tag(33550, Val::Double(vec![1.0, 1.0, 0.0]))
        .tag(33922, Val::Double(vec![0.0, 0.0, 0.0, 5.0, 45.0, 0.0]));
    nocrs.strips.push(vec![7; 16]);
    let p = write("nocrs.tif", nocrs.build());
    assert_refused(&p, &tmp.path().join("o5"), "--input-crs");
    // A point cloud given to the imagery route.
    let las = write("cloud.tif", b"LASF and then some".to_vec());
    assert_refused(&las, &tmp.path().join("o6"), "not a GeoTIFF raster");
}

#[test]
fn nodata_pixels_become_transparent() {
    let tmp = tempfile::tempdir().unwrap();
    // Left half value 0 (= nodata), right half 200.
    let (w, h) = (32u32, 32u32);
    let data: Vec<u8> = (0..w * h)
        .map(|i| if i % w < w / 2 { 0 } else { 200 })
        .collect();
    let mut b = TiffBuilder::new(w, h)
        .tag(258, Val::Short(vec![8]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![h]))
        .tag(42113, Val::Ascii("0".into()))
        .georef(4326, true, 10.0, 50.0, 0.5);
    b.strips.push(data);
    let src = tmp.path().join("nodata.tif");
    std::fs::write(&src, b.build()).unwrap();
    let out = tmp.path().join("out");
    let opts = ImageryOptions {
        profile: TilingScheme::GeographicQuad,
        ..ImageryOptions::default()
    };
    run_with_threads(&imagery_spec(&src, &out, opts), 2).unwrap();
    let tiles = read_tiles(&out);
    let px: Vec<[u8; 4]> = tiles
        .values()
        .flat_map(|t| t.pixels().map(|p| p.0))
        .collect();
    assert!(px.iter().any(|p| p[3] == 255 && p[0] == 200));
    // Nothing dark leaks in: every visible pixel is the data value.
    assert!(
        px.iter().filter(|p| p[3] > 0).all(|p| p[0] == 200),
        "nodata blended in"
    );
    let opaque = px.iter().filter(|p| p[3] == 255).count();
    let clear = px.iter().filter(|p| p[3] == 0).count();
    assert!(
        opaque > 0 && clear > opaque,
        "{opaque} opaque, {clear} clear"
    );
}

/// An 8-bit RGB raster in EPSG:4326 with its north-west corner at (lon, lat) and 0.1°
/// pixels, every pixel `rgb`.
fn solid_rgb_tiff(w: u32, h: u32, lon: f64, lat: f64, rgb: [u8; 3]) -> Vec<u8> {
    let data: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
    let mut b = TiffBuilder::new(w, h)
        .tag(258, Val::Short(vec![8, 8, 8]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![2]))
        .tag(277, Val::Short(vec![3]))
        .tag(278, Val::Long(vec![h]))
        .georef(4326, true, lon, lat, 0.1);
    b.strips.push(data);
    b.build()
}

#[test]
fn several_rasters_mosaic_without_seams() {
    let tmp = tempfile::tempdir().unwrap();
    // Two 4° x 4° rasters side by side, and a third overlapping both that is painted last.
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("a.tif"),
        solid_rgb_tiff(40, 40, 0.0, 4.0, [200, 0, 0]),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.tif"),
        solid_rgb_tiff(40, 40, 4.0, 4.0, [0, 200, 0]),
    )
    .unwrap();
    std::fs::write(
        dir.join("c.tif"),
        solid_rgb_tiff(10, 10, 3.5, 2.5, [0, 0, 200]),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let mut spec = imagery_spec(
        &dir,
        &out,
        ImageryOptions {
            profile: TilingScheme::GeographicQuad,
            min_zoom: Some(5),
            max_zoom: Some(7),
            ..ImageryOptions::default()
        },
    );
    spec.inputs = vec![dir.clone()];
    let r = run_with_threads(&spec, 2).unwrap();
    assert_eq!(r.inputs.len(), 3);
    assert!((r.extent_deg[0] - 0.0).abs() < 1e-9 && (r.extent_deg[2] - 8.0).abs() < 1e-9);
    let tiles = read_tiles(&out);
    let scheme = TilingScheme::GeographicQuad;
    // Sample the deepest level on a 0.05° lattice inside the union: every point opaque, and
    // the colour is the topmost raster's.
    let z = 7u8;
    let span = scheme.tile_span(z);
    for iy in 1..80 {
        for ix in 1..160 {
            let (lon, lat) = (ix as f64 * 0.05 + 0.0125, iy as f64 * 0.05 + 0.0125);
            let fx = (lon + 180.0) / span;
            let fy = (90.0 - lat) / span;
            let id = QuadTileId::new(z, fx as u32, fy as u32);
            let img = &tiles[&(z, id.x, scheme.tms_y(id))];
            let p = img
                .get_pixel(((fx.fract()) * 256.0) as u32, ((fy.fract()) * 256.0) as u32)
                .0;
            let in_c = (3.5..4.5).contains(&lon) && (1.5..2.5).contains(&lat);
            let near_edge = ((lon - 3.5).abs() < 0.06 || (lon - 4.5).abs() < 0.06)
                && (1.45..2.55).contains(&lat)
                || ((lat - 1.5).abs() < 0.06 || (lat - 2.5).abs() < 0.06)
                    && (3.45..4.55).contains(&lon);
            if near_edge {
                continue;
            }
            let want = if in_c {
                [0, 0, 200]
            } else if lon < 4.0 {
                [200, 0, 0]
            } else {
                [0, 200, 0]
            };
            assert_eq!(p[3], 255, "hole at {lon},{lat}");
            let close = p[..3]
                .iter()
                .zip(want)
                .all(|(a, b)| (i32::from(*a) - b).abs() <= 2);
            // At the a/b seam bilinear blends the two rasters; anything else must match.
            if (lon - 4.0).abs() > 0.06 {
                assert!(close, "{p:?} at {lon},{lat}, want {want:?}");
            }
        }
    }
}
