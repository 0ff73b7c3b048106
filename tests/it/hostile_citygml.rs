//! Hostile CityGML, derived at run time from the real samples (or written here): texture
//! references that reach for files outside the input's folder, devices and pipes,
//! attribute floods, coordinates off the Earth, UTF-16 text, documents that end early,
//! broken zips, and sizes no document needs. Each runs the binary under a memory cap:
//! the right exit code within 10 s and 1 GiB, no panic, nothing left at the output on
//! failure, the input untouched.

use crate::helpers::{
    assert_converted, assert_refused, run_with_threads, samples, tessera_capped, tree, Capped,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use tessera_pipeline::JobSpec;

/// A runaway allocation aborts at this size instead of swapping the machine.
const MEM_CAP: u64 = 4 << 30;
/// Past this the run counts as a hang (the 10 s limit is asserted on its own).
const DEADLINE: Duration = Duration::from_secs(60);

fn convert(input: &Path, out: &Path, extra: &[&str]) -> Capped {
    let mut args = vec![
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tessera_capped(&args, input.parent().unwrap(), MEM_CAP, DEADLINE)
}

/// A hostile input refused as a data error (exit 1) naming `file` and saying `needle`,
/// within the limits.
fn refused(c: &Capped, file: &Path, needle: &str) {
    eprintln!(
        "refused in {:?}, peak RSS {} MiB: {}",
        c.elapsed,
        c.peak_rss_bytes >> 20,
        c.stderr.trim()
    );
    assert_refused(c, 1, Some(file), needle);
}

/// Every byte written under `dir`, file after file.
fn all_bytes(dir: &Path) -> Vec<u8> {
    tree(dir).into_iter().flat_map(|(_, b)| b).collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap()
}

/// Images embedded in the tiles of `dir`.
fn images_in(dir: &Path) -> usize {
    tree(dir)
        .iter()
        .filter(|(name, _)| name.ends_with(".glb"))
        .map(|(_, b)| {
            let (doc, _) = crate::helpers::read_glb(b);
            doc["images"].as_array().map_or(0, Vec::len)
        })
        .sum()
}

const LYON_GML: &str = "LYON_2EME_BATI_2015_small_house.gml";
const LYON_JPG: &str = "LYON_2EME_BATI_2015_small_house.jpg";
/// Appended to the secret image (a JPEG decoder ignores it; a tile that embeds the file
/// carries it).
const MARKER: &[u8] = b"TESSERA-SECRET-0c9f2e7a51d4";

#[test]
fn textures_outside_the_input_folder_are_never_read() {
    let Some(s) = samples() else { return };
    let lyon = s.join("citygml/lyon");
    let t = tempfile::tempdir().unwrap();
    let input = t.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join(LYON_JPG), read(&lyon.join(LYON_JPG))).unwrap();
    let secret = t.path().join("secret.jpg");
    let mut secret_bytes = read(&lyon.join(LYON_JPG));
    secret_bytes.extend_from_slice(MARKER);
    std::fs::write(&secret, &secret_bytes).unwrap();
    std::os::unix::fs::symlink(&secret, input.join("link.jpg")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", input.join("zero.jpg")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(input.join("fifo.jpg"))
        .status()
        .unwrap()
        .success());
    let original = text(&lyon.join(LYON_GML));
    let with_image = |uri: &str| {
        let doc = original.replace(
            &format!("<app:imageURI>{LYON_JPG}</app:imageURI>"),
            &format!("<app:imageURI>{uri}</app:imageURI>"),
        );
        assert!(uri == LYON_JPG || doc != original);
        std::fs::write(input.join(LYON_GML), &doc).unwrap();
        doc
    };
    let crs = ["--input-crs", "EPSG:3946"];
    // The image beside the document is drawn.
    with_image(LYON_JPG);
    let out = t.path().join("ok");
    let c = convert(&input, &out, &crs);
    assert_converted(&c);
    assert!(!c.stderr.contains("refused"), "{}", c.stderr);
    assert_eq!(images_in(&out), 1);
    let secret_path = secret.to_str().unwrap().to_string();
    let cases = [
        (secret_path.as_str(), "outside"),
        ("../secret.jpg", "outside"),
        ("%2E%2E/secret.jpg", "outside"),
        ("link.jpg", "outside"),
        ("zero.jpg", "outside"),
        ("fifo.jpg", "not a regular file"),
    ];
    for (i, (uri, why)) in cases.iter().enumerate() {
        let doc = with_image(uri);
        let out = t.path().join(format!("o{i}"));
        let c = convert(&input, &out, &crs);
        assert_converted(&c);
        assert!(
            c.stderr
                .contains("1 texture image(s) not found or refused (first: ")
                && c.stderr.contains("1 refused, first: ")
                && c.stderr.contains(why),
            "{uri}: {}",
            c.stderr
        );
        let written = all_bytes(&out);
        assert!(
            !holds(&written, MARKER),
            "{uri}: the secret is in the tiles"
        );
        assert_eq!(images_in(&out), 0, "{uri}");
        assert_eq!(text(&input.join(LYON_GML)), doc);
    }
    assert_eq!(read(&secret), secret_bytes);
    // What keeps it out: allowed to read outside, the job does embed the file.
    with_image(&secret_path);
    let mut spec = JobSpec::new(vec![input.clone()], t.path().join("allowed"));
    spec.input_crs = Some(tessera_model::CrsSpec::parse("EPSG:3946").unwrap());
    spec.allow_outside_refs = true;
    run_with_threads(&spec, 2).unwrap();
    assert!(holds(&all_bytes(&t.path().join("allowed")), MARKER));
}

#[test]
fn references_inside_a_zip_stay_inside_it() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let secret = t.path().join("secret.jpg");
    let mut secret_bytes = read(&s.join("citygml/lyon").join(LYON_JPG));
    secret_bytes.extend_from_slice(MARKER);
    std::fs::write(&secret, &secret_bytes).unwrap();
    let escapes = [
        secret.to_str().unwrap().to_string(),
        "../../../secret.jpg".to_string(),
        "../../../../../../../../../../".to_string() + secret.to_str().unwrap(),
    ];
    let source = std::fs::File::open(s.join("citygml/plateau-yokosuka.zip")).unwrap();
    let mut source = zip::ZipArchive::new(source).unwrap();
    let zp = t.path().join("data").join("yokosuka.zip");
    std::fs::create_dir_all(zp.parent().unwrap()).unwrap();
    std::fs::copy(&secret, t.path().join("data/secret.jpg")).unwrap();
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        for i in 0..source.len() {
            let mut f = source.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            if f.is_dir() {
                continue;
            }
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            if name.ends_with(".gml") {
                let mut doc = String::from_utf8(bytes).unwrap();
                let mut k = 0;
                while let Some(at) = doc.find("<app:imageURI>5") {
                    let start = at + "<app:imageURI>".len();
                    let end = start + doc[start..].find('<').unwrap();
                    doc.replace_range(start..end, &escapes[k % escapes.len()]);
                    k += 1;
                }
                assert!(k >= 3, "{k}");
                bytes = doc.into_bytes();
            }
            z.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(&bytes).unwrap();
        }
        z.finish().unwrap();
    }
    let before = read(&zp);
    let out = t.path().join("out");
    let c = convert(&zp, &out, &[]);
    assert_converted(&c);
    assert!(
        c.stderr.contains("texture image(s) not found"),
        "{}",
        c.stderr
    );
    assert!(!holds(&all_bytes(&out), MARKER));
    assert_eq!(images_in(&out), 0);
    assert_eq!(read(&zp), before);
}

const FZK_LOD2: &str = "citygml/fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml";

/// The FZK house with `insert` right after its Building's start tag.
fn fzk_with(s: &Path, insert: &str) -> String {
    let doc = text(&s.join(FZK_LOD2));
    let at = doc.find("<bldg:Building ").unwrap();
    let at = at + doc[at..].find('>').unwrap() + 1;
    format!("{}{insert}{}", &doc[..at], &doc[at..])
}

/// The properties of the tileset's schema.
fn schema_properties(out: &Path) -> usize {
    let ts: Value = serde_json::from_slice(&read(&out.join("tileset.json"))).unwrap();
    ts["schema"]["classes"]["CityObject"]["properties"]
        .as_object()
        .unwrap()
        .len()
}

#[test]
fn attribute_floods_stay_within_budgets() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    // One building with 400,000 generic attributes.
    let mut flood = String::with_capacity(40 << 20);
    for i in 0..400_000 {
        flood.push_str(&format!(
            r#"<gen:stringAttribute name="attribute{i}"><gen:value>value {i}</gen:value></gen:stringAttribute>"#
        ));
    }
    let p = t.path().join("flood.gml");
    std::fs::write(&p, fzk_with(&s, &flood)).unwrap();
    let before = read(&p);
    let out = t.path().join("o1");
    let c = convert(&p, &out, &[]);
    assert_converted(&c);
    assert!(
        c.stderr.contains("attributes left out of the tiles: 399")
            && c.stderr.contains("past the limit of 1000 attributes"),
        "{}",
        c.stderr
    );
    assert!(schema_properties(&out) <= 3 + 1000);
    assert_eq!(read(&p), before);
    // Many buildings, each with its own 600 names: the tileset keeps 1,000 of them.
    let doc = text(&s.join(FZK_LOD2));
    let start = doc.find("<core:cityObjectMember>").unwrap();
    let end = doc.rfind("</core:cityObjectMember>").unwrap() + "</core:cityObjectMember>".len();
    let member = &doc[start..end];
    let mut members = String::new();
    for b in 0..4 {
        let mut names = String::new();
        for i in 0..600 {
            names.push_str(&format!(
                r#"<gen:intAttribute name="b{b}_{i}"><gen:value>{i}</gen:value></gen:intAttribute>"#
            ));
        }
        let m = member.replacen(
            "<bldg:Building gml:id=\"",
            &format!("<bldg:Building gml:id=\"B{b}_"),
            1,
        );
        let at = m.find("<bldg:Building ").unwrap();
        let at = at + m[at..].find('>').unwrap() + 1;
        members.push_str(&format!("{}{names}{}", &m[..at], &m[at..]));
    }
    let p = t.path().join("names.gml");
    std::fs::write(&p, format!("{}{members}{}", &doc[..start], &doc[end..])).unwrap();
    let out = t.path().join("o2");
    let c = convert(&p, &out, &[]);
    assert_converted(&c);
    // The house's own 11 attributes come first.
    let over = 11 + 4 * 600 - 1000;
    assert!(
        c.stderr.contains(&format!(
            "{over} value(s) of {over} attribute name(s) past the 1000 names"
        )),
        "{}",
        c.stderr
    );
    assert_eq!(schema_properties(&out), 3 + 1000);
}

/// Every number in a JSON value.
fn numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        Value::Null => out.push(f64::NAN),
        _ => {}
    }
}

/// The FZK house with the northing (or the height) of its first `<gml:pos>`, or of
/// every one, replaced by `value`.
fn fzk_pos(s: &Path, value: &str, height: bool, every: bool) -> String {
    let doc = text(&s.join(FZK_LOD2));
    let mut out = String::new();
    for (i, part) in doc.split("<gml:pos>").enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        out.push_str("<gml:pos>");
        if i == 1 || every {
            let mut tokens = part.splitn(3, ' ');
            let (east, north) = (tokens.next().unwrap(), tokens.next().unwrap());
            let (up, rest) = tokens.next().unwrap().split_once(' ').unwrap();
            if height {
                out.push_str(&format!("{east} {north} {value} {rest}"));
            } else {
                out.push_str(&format!("{east} {value} {up} {rest}"));
            }
        } else {
            out.push_str(part);
        }
    }
    out
}

fn fzk_northing(s: &Path, northing: &str, every: bool) -> String {
    fzk_pos(s, northing, false, every)
}

#[test]
fn coordinates_off_the_earth_are_dropped_or_refused() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    // One position with a northing of 1e308: its polygon is dropped and counted.
    let p = t.path().join("far.gml");
    std::fs::write(&p, fzk_northing(&s, "1e308", false)).unwrap();
    let out = t.path().join("o1");
    let c = convert(&p, &out, &[]);
    assert_converted(&c);
    assert!(
        c.stderr.contains("1 not on the Earth") && c.stderr.contains("1e308"),
        "{}",
        c.stderr
    );
    let ts: Value = serde_json::from_slice(&read(&out.join("tileset.json"))).unwrap();
    let mut all = Vec::new();
    numbers(&ts, &mut all);
    assert!(all.iter().all(|v| v.is_finite()), "{ts}");
    // The house is about 15 m across: no box reaches thousands of kilometres.
    let b = crate::helpers::numbers(&ts["root"]["boundingVolume"]["box"]);
    assert!(b[3..].iter().all(|h| h.abs() < 100.0), "{b:?}");
    assert!(ts["geometricError"].as_f64().unwrap() < 1000.0, "{ts}");
    // Every northing absurd, or every height 10,000 km up: nothing is left, refused.
    for (i, (doc, needle)) in [
        (fzk_northing(&s, "1e308", true), "1e308"),
        (fzk_northing(&s, "-9e99", true), "-9e99"),
        (fzk_pos(&s, "1e7", true, true), "km from the Earth's centre"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = t.path().join(format!("all{i}.gml"));
        std::fs::write(&p, &doc).unwrap();
        let out = t.path().join(format!("r{i}"));
        let c = convert(&p, &out, &[]);
        refused(&c, &p, "lies on the Earth");
        assert!(c.stderr.contains(needle), "{}", c.stderr);
        assert!(!out.exists());
        assert_eq!(text(&p), doc);
    }
    // A CRS that does not fit the numbers: PROJ fails on every one.
    let p = s.join(FZK_LOD2);
    let out = t.path().join("mislabelled");
    let c = convert(&p, &out, &["--input-crs", "EPSG:4326"]);
    refused(&c, &p, "cannot be in EPSG:4326");
    assert!(!out.exists());
}

#[test]
fn utf16_documents_convert_like_utf8() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let doc = text(&s.join(FZK_LOD2));
    let utf16 = |big_endian: bool, bom: bool| -> Vec<u8> {
        let units = bom
            .then_some(0xFEFFu16)
            .into_iter()
            .chain(doc.encode_utf16());
        units
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    };
    let variants = [
        ("utf8.gml", doc.clone().into_bytes()),
        ("le.gml", utf16(false, true)),
        ("be.gml", utf16(true, true)),
        ("le-nobom.gml", utf16(false, false)),
    ];
    let mut outputs = Vec::new();
    for (name, bytes) in &variants {
        let p = t.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        assert!(
            tessera_pipeline::citygml::is_city_job(std::slice::from_ref(&p)),
            "{name}"
        );
        assert!(tessera_pipeline::citygml::source::is_city_model(
            &bytes[..4096]
        ));
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, &[]);
        assert_converted(&c);
        outputs.push(tree(&out));
        assert_eq!(&read(&p), bytes);
    }
    for (o, (name, _)) in outputs.iter().zip(&variants) {
        assert_eq!(o, &outputs[0], "{name} converts differently");
    }
    // Truncated UTF-16 says so too.
    let bytes = utf16(false, true);
    let p = t.path().join("cut16.gml");
    let cut = bytes.len() / 2;
    std::fs::write(&p, &bytes[..cut]).unwrap();
    let out = t.path().join("cut16");
    let c = convert(&p, &out, &[]);
    refused(&c, &p, &format!("ends early at byte {cut}"));
    assert!(!out.exists());
}

#[test]
fn truncated_documents_say_where_they_end() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let doc = read(&s.join(FZK_LOD2));
    let lyon = read(&s.join("citygml/lyon").join(LYON_GML));
    let find =
        |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).position(|w| w == what).unwrap();
    let in_tag = find(&lyon, b"<gml:posList") + 6;
    // Inside the root's start tag, after its name (what tells it is CityGML).
    let in_root = find(&doc, b"<core:CityModel") + 30;
    for (name, bytes, cut, extra) in [
        ("half.gml", &doc, doc.len() * 3 / 5, &[][..]),
        ("tag.gml", &lyon, in_tag, &["--input-crs", "EPSG:3946"][..]),
        ("root.gml", &doc, in_root, &[][..]),
    ] {
        let p = t.path().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, extra);
        refused(&c, &p, &format!("ends early at byte {cut}"));
        assert!(c.stderr.contains("truncated"), "{}", c.stderr);
        assert!(!out.exists());
        assert_eq!(read(&p), &bytes[..cut]);
    }
}

/// The data offset and compressed size of the zip entry ending in `suffix`.
fn entry_data(zip_bytes: &[u8], suffix: &str) -> (usize, usize) {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    for i in 0..z.len() {
        let f = z.by_index_raw(i).unwrap();
        if f.name().unwrap().ends_with(suffix) {
            return (
                f.data_start().unwrap() as usize,
                f.compressed_size() as usize,
            );
        }
    }
    panic!("no {suffix}");
}

#[test]
fn corrupt_zips_are_invalid_archives() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let good = read(&s.join("citygml/plateau-yokosuka.zip"));
    // Truncated: the central directory is gone.
    let truncated = good[..good.len() / 2].to_vec();
    // A central directory whose entries are not entries.
    let mut bad_directory = good.clone();
    for i in 0..bad_directory.len() - 4 {
        if &bad_directory[i..i + 4] == b"PK\x01\x02" {
            bad_directory[i..i + 2].copy_from_slice(b"XX");
        }
    }
    // The document's compressed data overwritten in the middle.
    let mut bad_data = good.clone();
    let (start, len) = entry_data(&good, ".gml");
    bad_data[start + len / 2..start + len / 2 + 256].fill(0);
    for (name, bytes, needle) in [
        ("truncated.zip", truncated, "not a readable zip"),
        ("directory.zip", bad_directory, "not a readable zip"),
        ("data.zip", bad_data, "not a readable zip"),
    ] {
        let p = t.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, &[]);
        refused(&c, &p, needle);
        assert!(
            c.stderr
                .contains("the file is truncated or corrupt, re-create the zip"),
            "{}",
            c.stderr
        );
        assert!(!out.exists());
        assert_eq!(read(&p), bytes);
        let spec = JobSpec::new(vec![p.clone()], t.path().join(format!("lib-{name}")));
        let e = run_with_threads(&spec, 2).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARCHIVE", "{name}: {e}");
    }
}

#[test]
fn sizes_no_document_needs_are_refused() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let lyon = text(&s.join("citygml/lyon").join(LYON_GML));
    let crs = ["--input-crs", "EPSG:3946"];
    let deep = format!(
        "{}{}",
        "<gen:a>".repeat(200_000),
        "</gen:a>".repeat(200_000)
    );
    let at = lyon.find("<gml:posList>").unwrap() + "<gml:posList>".len();
    let endless = format!(
        "{}{}{}",
        &lyon[..at],
        "1842600.52763400 5174639.45745000 171.29714400 ".repeat(500_000),
        &lyon[at..]
    );
    let cdata = format!(
        "{}<bldg:note>{}</bldg:note>{}",
        &lyon[..at - "<gml:posList>".len()],
        "<![CDATA[0123456789abcdef0123456789abcdef]]>".repeat(600_000),
        &lyon[at - "<gml:posList>".len()..]
    );
    let deep_doc = {
        let b = lyon.find("<bldg:Building ").unwrap();
        let b = b + lyon[b..].find('>').unwrap() + 1;
        format!("{}{deep}{}", &lyon[..b], &lyon[b..])
    };
    for (name, doc, needle) in [
        ("deep.gml", deep_doc, "nested more than 256 deep"),
        ("endless.gml", endless, "an XML token larger than 16 MiB"),
        (
            "cdata.gml",
            cdata,
            "the text of one element is larger than 16 MiB",
        ),
    ] {
        let p = t.path().join(name);
        std::fs::write(&p, &doc).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, &crs);
        refused(&c, &p, needle);
        assert!(!out.exists());
        assert_eq!(read(&p).len(), doc.len());
        let spec = {
            let mut spec = JobSpec::new(vec![p.clone()], t.path().join(format!("lib-{name}")));
            spec.input_crs = Some(tessera_model::CrsSpec::parse("EPSG:3946").unwrap());
            spec
        };
        assert_eq!(
            run_with_threads(&spec, 2).unwrap_err().code(),
            "LIMIT_EXCEEDED"
        );
    }
    // Dimensions and counts that are not sizes: the ring is bad, the rest converts.
    for (name, attr) in [
        ("dim.gml", r#" srsDimension="1000000000000""#),
        ("dim0.gml", r#" srsDimension="0""#),
        ("count.gml", r#" count="18446744073709551615""#),
    ] {
        let doc = lyon.replacen("<gml:posList>", &format!("<gml:posList{attr}>"), 1);
        let p = t.path().join(name);
        std::fs::write(&p, &doc).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, &crs);
        assert_converted(&c);
        if attr.contains("srsDimension") {
            assert!(c.stderr.contains("without area"), "{}", c.stderr);
        }
        assert!(out.join("tileset.json").exists());
    }
}

/// A ring shaped like a comb (the slowest shape for ear cutting) of about `n` points
/// around the Lyon house, as a posList text.
fn comb(n: usize) -> String {
    let (x0, y0) = (1842600.0, 5174639.0);
    let teeth = n / 2 - 1;
    let mut pts = Vec::with_capacity(n + 1);
    for k in 0..teeth {
        let x = x0 + k as f64 * 0.001;
        pts.push((x, y0));
        pts.push((x + 0.0005, y0 + 10.0));
    }
    pts.push((x0 + teeth as f64 * 0.001, y0 - 1.0));
    pts.push((x0, y0 - 1.0));
    pts.push(pts[0]);
    pts.iter()
        .map(|(x, y)| format!("{x:.4} {y:.3} 171.3 "))
        .collect()
}

#[test]
fn polygons_too_large_to_triangulate_are_dropped() {
    let Some(s) = samples() else { return };
    let t = tempfile::tempdir().unwrap();
    let lyon = text(&s.join("citygml/lyon").join(LYON_GML));
    let at = lyon.find("<gml:posList>").unwrap() + "<gml:posList>".len();
    let end = at + lyon[at..].find("</gml:posList>").unwrap();
    let crs = ["--input-crs", "EPSG:3946"];
    for (name, points, dropped) in [("at-limit.gml", 32_000, false), ("over.gml", 200_000, true)] {
        let doc = format!("{}{}{}", &lyon[..at], comb(points), &lyon[end..]);
        let p = t.path().join(name);
        std::fs::write(&p, &doc).unwrap();
        let out = t.path().join(format!("out-{name}"));
        let c = convert(&p, &out, &crs);
        assert_converted(&c);
        assert_eq!(
            c.stderr.contains("(1 with more than 32768 vertices)"),
            dropped,
            "{name}: {}",
            c.stderr
        );
        assert_eq!(text(&p), doc);
    }
}
