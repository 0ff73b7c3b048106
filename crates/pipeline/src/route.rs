//! Which 3D Tiles route a job takes: told by what its files are (first bytes, XML root),
//! or fixed by the caller (the server's sourceType). Files of another kind found in the
//! input folders are named in a warning instead of being dropped silently.

use crate::detect::{require_regular, walk};
use crate::error::InputError;
use crate::job::JobSpec;
use crate::report::Warnings;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The kind of input a 3D Tiles job converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// LAS/LAZ/COPC point clouds.
    PointCloud,
    /// CityGML documents, folders and zips of them.
    CityModel,
    /// One glTF/GLB model.
    Model,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::PointCloud => "LAS/LAZ point clouds",
            Source::CityModel => "CityGML",
            Source::Model => "a glTF/GLB model",
        }
    }

    fn takes(self, kind: FileKind) -> bool {
        match self {
            Source::PointCloud => kind == FileKind::Las,
            Source::CityModel => matches!(kind, FileKind::CityGml | FileKind::Zip | FileKind::Xml),
            Source::Model => kind == FileKind::Gltf,
        }
    }
}

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Las,
    Tiff,
    Gltf,
    /// An XML document whose root element is a CityModel.
    CityGml,
    Zip,
    /// XML that is not (or not recognisably, e.g. truncated or UTF-16) a CityModel.
    Xml,
    Empty,
    Other,
}

impl FileKind {
    fn describe(self) -> &'static str {
        match self {
            FileKind::Las => "a LAS/LAZ point cloud",
            FileKind::Tiff => "a GeoTIFF raster",
            FileKind::Gltf => "a glTF/GLB model",
            FileKind::CityGml => "a CityGML document",
            FileKind::Zip => "a zip archive",
            FileKind::Xml => "an XML document",
            FileKind::Empty => "an empty file",
            FileKind::Other => "a file in no format Tessera reads",
        }
    }

    /// What to do with a file of this kind instead.
    fn advice(self) -> &'static str {
        match self {
            FileKind::Tiff => "convert it with --to imagery or --to terrain",
            _ => "convert it in a job of its own",
        }
    }
}

fn has_extension(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The first bytes of a regular file (empty when unreadable).
fn head(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(4096).read_to_end(&mut out);
    }
    out
}

fn looks_like_xml(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return true; // UTF-16 byte-order marks
    }
    let h = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    h.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<')
}

/// What `path` is. `named` files were given on the command line: a JSON document there is
/// taken as a `.gltf`; inside folders only `.gltf`/`.glb` names are models and only
/// `.gml`/`.xml`/`.citygml` names are XML candidates, so sidecar files do not change the
/// route.
pub fn classify(path: &Path, named: bool) -> FileKind {
    let h = head(path);
    let t = |p: &[u8]| h.starts_with(p);
    if h.is_empty() {
        FileKind::Empty
    } else if t(b"LASF") {
        FileKind::Las
    } else if t(b"II*\0") || t(b"MM\0*") || t(b"II+\0") || t(b"MM\0+") {
        FileKind::Tiff
    } else if t(b"glTF") {
        FileKind::Gltf
    } else if t(b"PK\x03\x04") || t(b"PK\x05\x06") || (named && has_extension(path, &["zip"])) {
        FileKind::Zip
    } else if looks_like_xml(&h) && (named || has_extension(path, &["gml", "xml", "citygml"])) {
        if crate::citygml::source::is_city_model(&h) {
            FileKind::CityGml
        } else {
            FileKind::Xml
        }
    } else if named && has_extension(path, &["gml", "citygml"]) {
        FileKind::Xml
    } else if has_extension(path, &["gltf"])
        || (named && h.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
    {
        FileKind::Gltf
    } else {
        FileKind::Other
    }
}

/// The route of a 3D Tiles job and the folder files it leaves out.
#[derive(Debug)]
pub struct Routed {
    pub source: Source,
    pub left_out: Vec<(PathBuf, FileKind)>,
}

/// Decide the route: `spec.source` when the caller fixed it, else CityGML when there is
/// any (documents and zips), else a glTF model, else point clouds. A file named on the
/// command line that the route cannot take is an error; files of other kinds found in
/// folders are returned for a warning.
pub fn route_tiles(spec: &JobSpec) -> Result<Routed, InputError> {
    let mut named: Vec<(PathBuf, FileKind)> = Vec::new();
    let mut found: Vec<(PathBuf, FileKind)> = Vec::new();
    for input in &spec.inputs {
        require_regular(input)?;
        if input.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            files.sort();
            found.extend(files.into_iter().map(|f| {
                let k = classify(&f, false);
                (f, k)
            }));
        } else {
            let k = classify(input, true);
            named.push((input.clone(), k));
        }
    }
    let all = || named.iter().chain(found.iter());
    let any = |want: &[FileKind]| all().any(|(_, k)| want.contains(k));
    let source = match spec.source {
        Some(s) => s,
        None if any(&[FileKind::CityGml, FileKind::Zip])
            || named.iter().any(|(_, k)| *k == FileKind::Xml) =>
        {
            Source::CityModel
        }
        None if any(&[FileKind::Gltf]) => Source::Model,
        None => Source::PointCloud,
    };
    // A file named explicitly must be of the route's kind.
    if let Some((path, kind)) = named.iter().find(|(_, k)| !source.takes(*k)) {
        let unknown = matches!(kind, FileKind::Other | FileKind::Empty);
        if !unknown || spec.source.is_some() || named.len() + found.len() > 1 {
            return Err(mismatch(path, *kind, source, spec.source.is_some()));
        }
    }
    // A fixed route with nothing it takes: name a file of another kind when there is one.
    if spec.source.is_some() && !all().any(|(_, k)| source.takes(*k)) {
        if let Some((path, kind)) = found
            .iter()
            .find(|(_, k)| !matches!(k, FileKind::Other | FileKind::Empty | FileKind::Xml))
        {
            return Err(mismatch(path, *kind, source, true));
        }
    }
    let left_out = found
        .into_iter()
        .filter(|(_, k)| {
            !source.takes(*k)
                && matches!(
                    k,
                    FileKind::Las
                        | FileKind::Tiff
                        | FileKind::Gltf
                        | FileKind::CityGml
                        | FileKind::Zip
                )
        })
        .filter(|(p, k)| {
            !(source == Source::Model && *k == FileKind::Gltf && has_extension(p, &["gltf", "glb"]))
        })
        .collect();
    Ok(Routed { source, left_out })
}

fn mismatch(path: &Path, kind: FileKind, source: Source, fixed: bool) -> InputError {
    let what = if fixed {
        format!("this is {}, not {}", kind.describe(), source.describe())
    } else {
        format!(
            "this is {} while the job converts {}; one job converts one kind of input, so {}",
            kind.describe(),
            source.describe(),
            kind.advice()
        )
    };
    InputError::Unsupported {
        path: path.into(),
        what,
        route: source.describe(),
    }
}

/// One warning per folder file the route leaves out.
pub fn warn_left_out(routed: &Routed, warnings: &Warnings) {
    for (path, kind) in &routed.left_out {
        warnings.push(
            "input-left-out",
            format!(
                "{}: left out: this is {} and the job converts {}; {}",
                path.display(),
                kind.describe(),
                routed.source.describe(),
                kind.advice()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    const CITY: &[u8] =
        b"<?xml version=\"1.0\"?>\n<core:CityModel xmlns:core=\"x\"></core:CityModel>";

    #[test]
    fn mixed_folders_take_the_city_route_and_name_the_rest() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.las", b"LASF....");
        write(d.path(), "b.gml", CITY);
        write(d.path(), "c.glb", b"glTF....");
        write(d.path(), "d.tif", b"II*\0....");
        write(d.path(), "e.jpg", b"\xFF\xD8\xFF");
        let spec = JobSpec::new(vec![d.path().into()], d.path().join("out"));
        let r = route_tiles(&spec).unwrap();
        assert_eq!(r.source, Source::CityModel);
        let names: Vec<String> = r
            .left_out
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.las", "c.glb", "d.tif"]);
    }

    #[test]
    fn broken_city_inputs_still_take_the_city_route() {
        let d = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("t.gml", &b"<?xml version=\"1.0\"?>\n<core:Ci"[..]),
            ("z.zip", b"PK\x03\x04 truncated"),
            ("u.gml", b"\xFF\xFE<\0?\0x\0m\0l\0"),
        ] {
            let p = write(d.path(), name, bytes);
            let spec = JobSpec::new(vec![p], d.path().join("out"));
            assert_eq!(
                route_tiles(&spec).unwrap().source,
                Source::CityModel,
                "{name}"
            );
        }
    }

    #[test]
    fn a_fixed_route_names_a_file_of_another_kind() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.las", b"LASF....");
        let mut spec = JobSpec::new(vec![d.path().into()], d.path().join("out"));
        spec.source = Some(Source::CityModel);
        let e = route_tiles(&spec).unwrap_err().to_string();
        assert!(
            e.contains("a.las") && e.contains("LAS/LAZ point cloud, not CityGML"),
            "{e}"
        );
    }

    #[test]
    fn named_files_of_two_kinds_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.las", b"LASF....");
        let b = write(d.path(), "b.gml", CITY);
        let spec = JobSpec::new(vec![a, b], d.path().join("out"));
        let e = route_tiles(&spec).unwrap_err().to_string();
        assert!(e.contains("a.las") && e.contains("one kind"), "{e}");
    }

    #[test]
    fn a_fifo_is_not_opened() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pipe.las");
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(ok.success());
        let spec = JobSpec::new(vec![p], d.path().join("out"));
        let e = route_tiles(&spec).unwrap_err().to_string();
        assert!(e.contains("named pipe"), "{e}");
    }
}
