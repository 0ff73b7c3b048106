//! Hostile LAS/LAZ and GeoTIFF inputs, derived at run time from the real samples (header
//! fields patched) or written by the tests: each is refused promptly, in bounded memory,
//! with a reason naming the file, and leaves no output behind; or, where bad values can be
//! set aside, converts with a counted warning.

use crate::helpers::{assert_refused, run_with_threads, samples, tessera_capped, Capped};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_fixtures::tiff::{TiffBuilder, Val};
use tessera_pipeline::{JobSpec, Target};

/// A runaway allocation past this aborts instead of swapping the machine.
const MEM_CAP: u64 = 4 << 30;
/// Longer than the 10 s the assertions allow, so a slow answer fails with its numbers.
const DEADLINE: Duration = Duration::from_secs(60);

/// Run `tessera convert file -o out -q extra...` in `dir`.
fn convert(dir: &Path, file: &Path, out: &Path, extra: &[&str]) -> Capped {
    let mut args = vec![
        "convert",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    tessera_capped(&args, dir, MEM_CAP, DEADLINE)
}

/// Write `bytes` as `name` in `dir`, convert it and require a refusal with `code` saying
/// `needle`, no output left and the input untouched.
fn refused(dir: &Path, name: &str, bytes: &[u8], extra: &[&str], code: i32, needle: &str) {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let out = dir.join(format!("{name}.out"));
    let c = convert(dir, &file, &out, extra);
    eprintln!(
        "{name}: exit {:?} in {:?}, peak RSS {} MiB: {}",
        c.code,
        c.elapsed,
        c.peak_rss_bytes >> 20,
        c.stderr.trim()
    );
    assert_refused(&c, code, Some(&file), needle);
    assert!(!c.stdout.contains("panicked"), "{name}: {}", c.stdout);
    assert!(!out.exists(), "{name}: output left at {}", out.display());
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "{name}: input changed"
    );
}

fn sample(rel: &str) -> Option<Vec<u8>> {
    let root: PathBuf = samples()?;
    Some(std::fs::read(root.join(rel)).unwrap())
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn get_u32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// LAS public header fields by byte offset.
const LEGACY_COUNT: usize = 107;
const X_SCALE: usize = 131;
const X_OFFSET: usize = 155;
const MAX_X: usize = 179;
const COUNT_64: usize = 247;
const FIRST_EVLR: usize = 235;

/// Byte offset of the payload of the VLR `user`/`record`.
fn vlr_payload(b: &[u8], user: &str, record: usize) -> usize {
    let mut at = get_u16(b, 94);
    for _ in 0..get_u32(b, 100) {
        let id = &b[at + 2..at + 18];
        let end = id.iter().position(|c| *c == 0).unwrap_or(16);
        let len = get_u16(b, at + 20);
        if &id[..end] == user.as_bytes() && get_u16(b, at + 18) == record {
            return at + 54;
        }
        at += 54 + len;
    }
    panic!("no {user}/{record} VLR");
}

/// Byte offset of the chunk table of a LAZ whose chunk-table offset is filled in.
fn chunk_table(b: &[u8]) -> usize {
    get_u64(b, get_u32(b, 96)) as usize
}

#[test]
fn las_point_counts_of_2_pow_64_are_refused_promptly() {
    let Some(laz12) = sample("las/laspy/autzen_trim.laz") else {
        return;
    };
    let laz14 = sample("las/ign/test_semis_2023_0292_6833_LA93_IGN69.laz").unwrap();
    let las14 = sample("las/pdal/autzen_trim_7.las").unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut b = laz12.clone();
    put_u32(&mut b, LEGACY_COUNT, u32::MAX);
    refused(
        dir.path(),
        "count32.laz",
        &b,
        &[],
        1,
        "chunk table holds at most",
    );

    let mut b = laz14.clone();
    put_u64(&mut b, COUNT_64, u64::MAX);
    refused(
        dir.path(),
        "count64.laz",
        &b,
        &[],
        1,
        "18446744073709551615 points",
    );

    // Legacy and 64-bit fields both at their maximum: the legacy one counts.
    let mut b = las14.clone();
    put_u32(&mut b, LEGACY_COUNT, u32::MAX);
    put_u64(&mut b, COUNT_64, u64::MAX);
    refused(dir.path(), "count_both.las", &b, &[], 1, "truncated");

    let mut b = las14;
    put_u32(&mut b, LEGACY_COUNT, 0);
    put_u64(&mut b, COUNT_64, u64::MAX);
    refused(
        dir.path(),
        "count64.las",
        &b,
        &[],
        1,
        "18446744073709551615 points",
    );

    // A fixed-chunk LAZ claiming one point more than its chunks can hold.
    let mut b = laz12;
    put_u32(&mut b, LEGACY_COUNT, 150_001);
    refused(
        dir.path(),
        "one_more.laz",
        &b,
        &[],
        1,
        "150000 (3 chunks of 50000)",
    );
}

#[test]
fn laz_chunk_tables_claiming_4g_chunks_are_refused() {
    let Some(fixed) = sample("las/laspy/autzen_trim.laz") else {
        return;
    };
    let variable = sample("las/laspy/simple.copc.laz").unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in [("chunks.laz", fixed), ("chunks.copc.laz", variable)] {
        let mut b = src.clone();
        let at = chunk_table(&b);
        put_u32(&mut b, at + 4, u32::MAX);
        refused(dir.path(), name, &b, &[], 1, "4294967295 chunks");
    }
    // The chunk-table offset pointing past the end of the file.
    let mut b = sample("las/laspy/autzen_trim.laz").unwrap();
    let len = b.len() as u64;
    let data = get_u32(&b, 96);
    put_u64(&mut b, data, len + 1000);
    refused(
        dir.path(),
        "table_past_end.laz",
        &b,
        &[],
        1,
        "the chunk table",
    );

    // A chunk size raised to 2^32 - 2 so that six chunks could hold 4e9 points.
    let mut b = sample("las/ign/test_semis_2023_0292_6833_LA93_IGN69.laz").unwrap();
    let z = vlr_payload(&b, "laszip encoded", 22204);
    put_u32(&mut b, z + 12, u32::MAX - 1);
    put_u64(&mut b, COUNT_64, 4_000_000_000);
    refused(
        dir.path(),
        "chunk_size.laz",
        &b,
        &[],
        1,
        "6 chunks of 4294967294 hold more than",
    );
}

#[test]
fn laszip_records_without_fields_or_with_empty_fields_are_refused() {
    let Some(src) = sample("las/laspy/autzen_trim.laz") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let z = vlr_payload(&src, "laszip encoded", 22204);

    let mut b = src.clone();
    put_u16(&mut b, z + 32, 0);
    refused(
        dir.path(),
        "no_items.laz",
        &b,
        &[],
        1,
        "lists no point fields",
    );

    let mut b = src.clone();
    put_u16(&mut b, z + 34 + 2, 0);
    refused(dir.path(), "empty_item.laz", &b, &[], 1, "size 0 bytes");

    // The point10 field claiming 2 bytes instead of 20.
    let mut b = src.clone();
    put_u16(&mut b, z + 34 + 2, 2);
    refused(
        dir.path(),
        "short_item.laz",
        &b,
        &[],
        1,
        "that field has 20",
    );

    // More items than the record holds.
    let mut b = src;
    put_u16(&mut b, z + 32, u16::MAX);
    refused(
        dir.path(),
        "many_items.laz",
        &b,
        &[],
        1,
        "65535 point fields",
    );
}

#[test]
fn non_finite_scale_offset_and_bounds_are_named() {
    let Some(src) = sample("las/pdal/autzen_trim_7.las") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut b = src.clone();
    b[X_OFFSET..X_OFFSET + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    refused(
        dir.path(),
        "nan_offset.las",
        &b,
        &[],
        1,
        "offset for x is NaN",
    );

    let mut b = src.clone();
    b[X_SCALE + 8..X_SCALE + 16].copy_from_slice(&f64::INFINITY.to_le_bytes());
    refused(
        dir.path(),
        "inf_scale.las",
        &b,
        &[],
        1,
        "scale factor for y is inf",
    );

    let mut b = src;
    b[MAX_X..MAX_X + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    refused(dir.path(), "nan_bounds.las", &b, &[], 1, "bounds for x");
}

#[test]
fn vlr_evlr_and_copc_lengths_are_checked_against_the_file() {
    let Some(copc) = sample("las/laspy/simple.copc.laz") else {
        return;
    };
    let las = sample("las/lazperf/point10.las").unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut b = las.clone();
    put_u32(&mut b, 100, u32::MAX);
    refused(dir.path(), "vlr_count.las", &b, &[], 1, "4294967295 VLRs");

    let mut b = las.clone();
    put_u32(&mut b, 96, u32::MAX);
    refused(
        dir.path(),
        "point_data_past_end.las",
        &b,
        &[],
        1,
        "past the end",
    );

    // The first EVLR's u64 length (20 bytes into its header) at 2^64 - 1.
    let evlr = get_u64(&copc, FIRST_EVLR) as usize;
    let mut b = copc.clone();
    put_u64(&mut b, evlr + 20, u64::MAX);
    refused(dir.path(), "evlr_len.copc.laz", &b, &[], 1, "EVLR 0 claims");

    let mut b = copc.clone();
    put_u32(&mut b, FIRST_EVLR + 8, u32::MAX);
    refused(
        dir.path(),
        "evlr_count.copc.laz",
        &b,
        &[],
        1,
        "4294967295 EVLRs",
    );

    let mut b = copc.clone();
    put_u64(&mut b, FIRST_EVLR, u64::MAX - 10);
    refused(
        dir.path(),
        "evlr_start.copc.laz",
        &b,
        &[],
        1,
        "the first EVLR",
    );

    // The COPC info's root hierarchy page size (48 bytes into its payload).
    let info = vlr_payload(&copc, "copc", 1);
    let mut b = copc.clone();
    put_u64(&mut b, info + 48, u64::MAX);
    refused(
        dir.path(),
        "hier_size.copc.laz",
        &b,
        &[],
        1,
        "COPC root hierarchy page",
    );

    let mut b = copc;
    put_u64(&mut b, info + 48, 33);
    refused(
        dir.path(),
        "hier_odd.copc.laz",
        &b,
        &[],
        1,
        "32-byte entries",
    );
}

/// A Float32 DEM in EPSG:4326, north-west corner at 10°E 46°N, 0.01° pixels, pixel (x, y)
/// holding `h(x, y)`; one strip.
fn float_dem(w: u32, h_px: u32, h: impl Fn(u32, u32) -> f32) -> Vec<u8> {
    let data: Vec<u8> = (0..h_px)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| h(x, y).to_le_bytes())
        .collect();
    let mut b = TiffBuilder::new(w, h_px)
        .tag(258, Val::Short(vec![32]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![1]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![h_px]))
        .tag(339, Val::Short(vec![3]))
        .georef(4326, true, 10.0, 46.0, 0.01);
    b.strips.push(data);
    b.build()
}

/// Header heights (min, max) of every quantized-mesh tile under `dir`.
fn tile_heights(dir: &Path) -> Vec<(f32, f32)> {
    use std::io::Read;
    crate::helpers::tree(dir)
        .into_iter()
        .filter(|(p, _)| p.ends_with(".terrain"))
        .map(|(_, gz)| {
            let mut b = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut b)
                .unwrap();
            let f = |o: usize| f32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            (f(24), f(28))
        })
        .collect()
}

fn terrain_spec(input: &Path, out: &Path) -> JobSpec {
    let mut spec = JobSpec::new(vec![input.to_path_buf()], out.to_path_buf());
    spec.target = Target::Terrain;
    spec.terrain.max_zoom = Some(7);
    spec
}

#[test]
fn dems_without_a_plausible_height_are_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    for (name, v) in [
        ("inf.tif", f32::INFINITY),
        ("minus_inf.tif", f32::NEG_INFINITY),
        ("absurd.tif", 3e38),
        ("space.tif", 150_000.0),
    ] {
        let bytes = float_dem(64, 64, |_, _| v);
        refused(
            dir.path(),
            name,
            &bytes,
            &["--to", "terrain"],
            1,
            "no pixel holds a usable value",
        );
        let file = dir.path().join(name);
        let out = dir.path().join(format!("{name}.lib"));
        let e = run_with_threads(&terrain_spec(&file, &out), 2).unwrap_err();
        assert_eq!(e.code(), "EMPTY_DATA", "{name}: {e}");
        assert!(e.to_string().contains("4096 pixels"), "{name}: {e}");
        assert!(!out.exists());
    }
}

#[test]
fn dems_with_a_few_implausible_heights_convert_with_a_counted_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spikes.tif");
    // 100 m everywhere but 3 infinite pixels and 2 at 3e38 (finite, absurd).
    let bytes = float_dem(100, 100, |x, y| match (x, y) {
        (10, 10) | (50, 50) => f32::INFINITY,
        (70, 20) => f32::NEG_INFINITY,
        (30, 80) | (31, 80) => 3e38,
        _ => 100.0,
    });
    std::fs::write(&file, &bytes).unwrap();
    let out = dir.path().join("out");
    let r = run_with_threads(&terrain_spec(&file, &out), 2).unwrap();
    let w: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.code == "implausible-heights")
        .collect();
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert!(
        w[0].message
            .contains("5 pixels of the full-resolution image"),
        "{}",
        w[0].message
    );
    let heights = tile_heights(&out);
    assert!(!heights.is_empty());
    for (lo, hi) in heights {
        assert!(lo.is_finite() && hi.is_finite(), "{lo}..{hi}");
        assert!((-0.5..=100.5).contains(&lo) && hi <= 100.5, "{lo}..{hi}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

#[test]
fn float_imagery_with_infinities_stretches_over_the_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inf_imagery.tif");
    // Values 0..99 by column, every other row infinite.
    let bytes = float_dem(100, 100, |x, y| match y % 2 {
        0 => f32::INFINITY,
        _ => x as f32,
    });
    std::fs::write(&file, &bytes).unwrap();
    let out = dir.path().join("out");
    let mut spec = JobSpec::new(vec![file.clone()], out.clone());
    spec.target = Target::Imagery;
    let r = run_with_threads(&spec, 2).unwrap();
    let stretch = r
        .warnings
        .iter()
        .find(|w| w.code == "scaled-to-8-bit")
        .unwrap();
    // The 2nd-98th percentile of the finite values 0..99.
    assert!(
        stretch.message.contains("from 2.000000..97.000000"),
        "{}",
        stretch.message
    );
    assert!(
        r.warnings.iter().any(|w| w.code == "infinite-values"),
        "{:?}",
        r.warnings
    );
    assert!(r.tiles > 0);
}

/// Byte offset of IFD `index` of a classic little-endian TIFF.
fn ifd_at(b: &[u8], index: usize) -> usize {
    let mut at = get_u32(b, 4);
    for _ in 0..index {
        at = get_u32(b, at + 2 + 12 * get_u16(b, at));
    }
    at
}

/// Byte offset of the 12-byte entry of `tag` in the IFD at `ifd`.
fn entry(b: &[u8], ifd: usize, tag: usize) -> usize {
    (0..get_u16(b, ifd))
        .map(|i| ifd + 2 + 12 * i)
        .find(|e| get_u16(b, *e) == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))
}

/// Set `tag` of the IFD at `ifd` to one LONG value.
fn set_long(b: &mut [u8], ifd: usize, tag: usize, v: u32) {
    let e = entry(b, ifd, tag);
    put_u16(b, e + 2, 4);
    put_u32(b, e + 4, 1);
    put_u32(b, e + 8, v);
}

/// Make the IFD at `ifd` list a single tile (its first), stored inline.
fn single_tile(b: &mut [u8], ifd: usize) {
    for tag in [324, 325] {
        let e = entry(b, ifd, tag);
        let first = get_u32(b, get_u32(b, e + 8));
        put_u32(b, e + 4, 1);
        put_u32(b, e + 8, first as u32);
    }
}

#[test]
fn tiff_sizes_beyond_the_limits_are_refused_from_the_header() {
    let Some(tiled) = sample("geotiff/dem/pysheds_dem.tif") else {
        return;
    };
    let strips = sample("geotiff/dem/dom1_32_356_5699_1_nw_2020.tif").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let terrain = ["--to", "terrain"];

    // 2^31 x 2^31 tiles of 64 16-bit bands: 2^69 bytes, zero when wrapped to 64 bits.
    let mut b = tiled.clone();
    let ifd = ifd_at(&b, 0);
    set_long(&mut b, ifd, 322, 1 << 31);
    set_long(&mut b, ifd, 323, 1 << 31);
    set_long(&mut b, ifd, 277, 64);
    single_tile(&mut b, ifd);
    refused(
        dir.path(),
        "tile_2g.tif",
        &b,
        &terrain,
        1,
        "too big to decode safely",
    );

    let mut b = strips.clone();
    let ifd = ifd_at(&b, 0);
    set_long(&mut b, ifd, 277, 65535);
    refused(
        dir.path(),
        "bands.tif",
        &b,
        &terrain,
        1,
        "65535 band(s), an implausible band count",
    );

    // The last strip's byte count running 4 GB past the end of the file.
    let mut b = strips.clone();
    let counts = get_u32(&b, entry(&b, ifd_at(&b, 0), 279) + 8);
    put_u32(&mut b, counts + 4 * 499, u32::MAX - 16);
    refused(
        dir.path(),
        "strip_past_end.tif",
        &b,
        &terrain,
        1,
        "strip 499 claims bytes",
    );

    // A strip starting past the end.
    let mut b = strips.clone();
    let offsets = get_u32(&b, entry(&b, ifd_at(&b, 0), 273) + 8);
    put_u32(&mut b, offsets, u32::MAX - 16);
    refused(
        dir.path(),
        "strip_offset.tif",
        &b,
        &terrain,
        1,
        "the file is truncated or corrupt",
    );

    // Fewer tile offsets than the 23 x 23 tiles the size needs.
    let mut b = tiled;
    let ifd = ifd_at(&b, 0);
    for tag in [324, 325] {
        let e = entry(&b, ifd, tag);
        put_u32(&mut b, e + 4, 100);
    }
    refused(
        dir.path(),
        "few_tiles.tif",
        &b,
        &terrain,
        1,
        "inconsistent sizes",
    );
}

#[test]
fn tiff_overviews_and_masks_are_held_to_the_image() {
    let Some(src) = sample("geotiff/imagery/cogeo.tif") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let imagery = ["--to", "imagery"];
    // IFD 1 is the mask, IFD 2 the first (512 x 512, one tile) overview.
    let mut b = src.clone();
    let ifd = ifd_at(&b, 2);
    set_long(&mut b, ifd, 256, 2048);
    set_long(&mut b, ifd, 257, 2048);
    set_long(&mut b, ifd, 322, 2048);
    set_long(&mut b, ifd, 323, 2048);
    refused(
        dir.path(),
        "big_overview.tif",
        &b,
        &imagery,
        1,
        "overview IFD 2 claims 2048 x 2048 pixels, more than the 1024 x 1024 image",
    );

    let mut b = src.clone();
    let ifd = ifd_at(&b, 2);
    set_long(&mut b, ifd, 322, 1 << 20);
    set_long(&mut b, ifd, 323, 1 << 20);
    refused(
        dir.path(),
        "overview_tile.tif",
        &b,
        &imagery,
        1,
        "too big to decode safely (overview IFD 2)",
    );

    let mut b = src;
    let ifd = ifd_at(&b, 1);
    set_long(&mut b, ifd, 322, 1 << 20);
    set_long(&mut b, ifd, 323, 1 << 20);
    refused(dir.path(), "mask_tile.tif", &b, &imagery, 1, "IFD 1: ");
}

#[test]
fn looping_ifd_chains_end_promptly() {
    let Some(dem) = sample("geotiff/dem/pysheds_dem.tif") else {
        return;
    };
    let cog = sample("geotiff/imagery/cogeo.tif").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let loop_back = |src: &[u8], from: usize, to: usize| {
        let mut b = src.to_vec();
        let at = ifd_at(&b, from);
        let next = at + 2 + 12 * get_u16(&b, at);
        let target = ifd_at(&b, to) as u32;
        put_u32(&mut b, next, target);
        b
    };
    // The only IFD pointing at itself: the decoder finds the cycle at once.
    let b = loop_back(&dem, 0, 0);
    refused(
        dir.path(),
        "self_loop.tif",
        &b,
        &["--to", "terrain"],
        1,
        "cycle in the list of IFDs",
    );

    // The last overview pointing back to the first IFD.
    let b = loop_back(&cog, 13, 0);
    refused(
        dir.path(),
        "back_loop.tif",
        &b,
        &["--to", "imagery"],
        1,
        "IFD 13: format error: file contained a cycle",
    );
}

#[test]
fn raster_tiles_are_held_to_the_jobs_memory_budget() {
    let Some(root) = samples() else { return };
    let file = root.join("geotiff/dem/pysheds_dem.tif");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut spec = terrain_spec(&file, &out);
    spec.budget = tessera_pipeline::Budget {
        memory_bytes: 64 << 20,
    };
    let e = run_with_threads(&spec, 2).unwrap_err();
    assert_eq!(e.code(), "LIMIT_EXCEEDED", "{e}");
    assert!(e.to_string().contains("memory budget"), "{e}");
    assert!(!out.exists());
    spec.budget = tessera_pipeline::Budget::default();
    run_with_threads(&spec, 2).unwrap();
}

#[test]
fn a_tiff_that_is_only_a_mask_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // NewSubfileType 4 and photometric 4: a GDAL transparency mask, alone in the file.
    let mut b = TiffBuilder::new(8, 8)
        .tag(254, Val::Long(vec![4]))
        .tag(258, Val::Short(vec![1]))
        .tag(259, Val::Short(vec![1]))
        .tag(262, Val::Short(vec![4]))
        .tag(277, Val::Short(vec![1]))
        .tag(278, Val::Long(vec![8]))
        .georef(4326, true, 10.0, 46.0, 0.01);
    b.strips.push(vec![0xff; 8]);
    refused(
        dir.path(),
        "mask_only.tif",
        &b.build(),
        &["--to", "imagery"],
        1,
        "photometric interpretation 4 is not supported",
    );
}
