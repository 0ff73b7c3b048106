//! Where encoded tiles go. Nothing is visible at the destination until `commit`; a sink
//! dropped without commit (error, cancellation) removes what it staged.

use crate::error::OutputError;
use md5::{Digest, Md5};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Receives tiles from parallel encoders.
pub trait TileSink: Sync {
    /// `path` is relative to the tileset root, with `/` separators.
    fn write(&self, path: &str, bytes: &[u8]) -> Result<(), OutputError>;
    /// Make the output visible at its destination, replacing what was there.
    fn commit(self: Box<Self>) -> Result<u64, OutputError>;
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.into(),
        source,
    }
}

/// A staging path next to `dest` (same file system, so the final rename is atomic).
fn staging_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tileset".into());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Whether a process with this id still runs (`true` when that cannot be told).
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Remove what runs that died without cleaning up (killed, aborted, power loss) left in
/// `dir`: entries named `{prefix}{pid}…` whose process no longer exists.
pub fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p);
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Staging entries of `dest` left by dead runs.
fn remove_stale_staging(dest: &Path) {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tileset".into());
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    remove_stale(dir, &format!(".{name}.partial-"));
}

/// Files at the root of an output Tessera writes; a folder holding one of them (or a
/// `.3tz` archive) is a previous output that `--force` may replace.
pub const ROOT_FILES: [&str; 3] = ["tileset.json", "layer.json", "tilemapresource.xml"];

/// Whether `path` holds a tileset, terrain or imagery pyramid (what Tessera writes), so
/// replacing it cannot destroy anything else.
pub fn is_tessera_output(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => ROOT_FILES.iter().any(|f| path.join(f).is_file()),
        Ok(m) if m.is_file() => is_3tz(path),
        _ => false,
    }
}

/// A zip whose last entry is the 3D Tiles archive index.
fn is_3tz(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(mut z) = ZipArchive::new(f) else {
        return false;
    };
    let n = z.len();
    n > 0
        && z.by_index_raw(n - 1)
            .is_ok_and(|e| e.name_raw() == INDEX_NAME.as_bytes())
}

fn remove_existing(dest: &Path) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dest).map_err(io_err(dest)),
        Ok(_) => std::fs::remove_file(dest).map_err(io_err(dest)),
        Err(_) => Ok(()),
    }
}

/// A directory of files.
pub struct DirectorySink {
    dest: PathBuf,
    staging: PathBuf,
    bytes: AtomicU64,
    committed: bool,
}

impl DirectorySink {
    pub fn new(dest: &Path) -> Result<DirectorySink, OutputError> {
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        remove_stale_staging(dest);
        let staging = staging_path(dest);
        remove_existing(&staging)?;
        std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        Ok(DirectorySink {
            dest: dest.into(),
            staging,
            bytes: AtomicU64::new(0),
            committed: false,
        })
    }
}

impl TileSink for DirectorySink {
    fn write(&self, path: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let full = self.staging.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        std::fs::write(&full, bytes).map_err(io_err(&full))?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<u64, OutputError> {
        remove_existing(&self.dest)?;
        std::fs::rename(&self.staging, &self.dest).map_err(io_err(&self.dest))?;
        self.committed = true;
        Ok(self.bytes.load(Ordering::Relaxed))
    }
}

impl Drop for DirectorySink {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// A 3D Tiles archive (`.3tz`): a zip with tiles stored uncompressed and the
/// `@3dtilesIndex1@` index (MD5 of each path → local header offset) as its last entry.
pub struct ArchiveSink {
    dest: PathBuf,
    staging: PathBuf,
    zip: Mutex<Option<ZipWriter<File>>>,
    bytes: AtomicU64,
    committed: bool,
}

const INDEX_NAME: &str = "@3dtilesIndex1@";

impl ArchiveSink {
    pub fn new(dest: &Path) -> Result<ArchiveSink, OutputError> {
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        remove_stale_staging(dest);
        let staging = staging_path(dest);
        let f = File::create(&staging).map_err(io_err(&staging))?;
        Ok(ArchiveSink {
            dest: dest.into(),
            staging,
            zip: Mutex::new(Some(ZipWriter::new(f))),
            bytes: AtomicU64::new(0),
            committed: false,
        })
    }

    fn zip_err(&self, e: impl std::fmt::Display) -> OutputError {
        OutputError::Archive {
            path: self.dest.clone(),
            reason: e.to_string(),
        }
    }

    fn options() -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(false)
    }

    /// Append the index: read back where each entry's local header starts.
    fn write_index(&self) -> Result<(), OutputError> {
        let f = File::open(&self.staging).map_err(io_err(&self.staging))?;
        let mut archive = ZipArchive::new(f).map_err(|e| self.zip_err(e))?;
        let mut entries: Vec<([u8; 16], u64)> = Vec::with_capacity(archive.len());
        for i in 0..archive.len() {
            let file = archive.by_index_raw(i).map_err(|e| self.zip_err(e))?;
            let name = file.name().map_err(|e| self.zip_err(e))?;
            let normalised = name.replace('\\', "/");
            let hash: [u8; 16] = Md5::digest(normalised.trim_start_matches('/').as_bytes()).into();
            entries.push((hash, file.header_start()));
        }
        let key = |h: &[u8; 16]| {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&h[..8]);
            b.copy_from_slice(&h[8..]);
            (u64::from_le_bytes(a), u64::from_le_bytes(b))
        };
        entries.sort_by_key(|(h, _)| key(h));
        let mut index = Vec::with_capacity(entries.len() * 24);
        for (h, off) in &entries {
            index.extend_from_slice(h);
            index.extend_from_slice(&off.to_le_bytes());
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.staging)
            .map_err(io_err(&self.staging))?;
        let mut zip = ZipWriter::new_append(f).map_err(|e| self.zip_err(e))?;
        zip.start_file(INDEX_NAME, Self::options())
            .map_err(|e| self.zip_err(e))?;
        zip.write_all(&index).map_err(io_err(&self.staging))?;
        zip.finish().map_err(|e| self.zip_err(e))?;
        Ok(())
    }
}

impl TileSink for ArchiveSink {
    fn write(&self, path: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let mut g = self.zip.lock().unwrap_or_else(|p| p.into_inner());
        let zip = g
            .as_mut()
            .ok_or_else(|| self.zip_err("archive already finished"))?;
        zip.start_file(path, Self::options())
            .map_err(|e| self.zip_err(e))?;
        zip.write_all(bytes).map_err(io_err(&self.staging))?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<u64, OutputError> {
        let zip = self
            .zip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| self.zip_err("archive already finished"))?;
        zip.finish().map_err(|e| self.zip_err(e))?;
        self.write_index()?;
        remove_existing(&self.dest)?;
        std::fs::rename(&self.staging, &self.dest).map_err(io_err(&self.dest))?;
        self.committed = true;
        let len = std::fs::metadata(&self.dest)
            .map_err(io_err(&self.dest))?
            .len();
        Ok(len.max(self.bytes.load(Ordering::Relaxed)))
    }
}

impl Drop for ArchiveSink {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_sink_commits_atomically_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let sink = DirectorySink::new(&dest).unwrap();
        sink.write("a/b.glb", b"123").unwrap();
        assert!(!dest.exists());
        assert_eq!(Box::new(sink).commit().unwrap(), 3);
        assert_eq!(std::fs::read(dest.join("a/b.glb")).unwrap(), b"123");
        let sink = DirectorySink::new(&dest).unwrap();
        sink.write("x.glb", b"1").unwrap();
        drop(sink);
        assert!(
            dest.join("a/b.glb").exists(),
            "dropped sink leaves the old output"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_staging_of_dead_runs_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        // No process has pid 4194304 + 1 (above Linux's pid_max).
        let stale = dir.path().join(".out.partial-4194305");
        std::fs::create_dir_all(stale.join("0")).unwrap();
        let mine = dir
            .path()
            .join(format!(".out.partial-{}", std::process::id()));
        let other = dir.path().join(".other.partial-4194305");
        std::fs::create_dir_all(&other).unwrap();
        let sink = DirectorySink::new(&dest).unwrap();
        assert!(!stale.exists(), "a dead run's staging is removed");
        assert!(mine.exists() && other.exists());
        Box::new(sink).commit().unwrap();
        assert!(!is_tessera_output(&dest), "no root file yet");
        std::fs::write(dest.join("layer.json"), b"{}").unwrap();
        assert!(is_tessera_output(&dest));
    }

    #[test]
    fn archive_has_index_last() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("t.3tz");
        let sink = ArchiveSink::new(&dest).unwrap();
        sink.write("tileset.json", b"{}").unwrap();
        sink.write("0/0-0-0.glb", b"glb").unwrap();
        Box::new(sink).commit().unwrap();
        let mut a = ZipArchive::new(File::open(&dest).unwrap()).unwrap();
        assert_eq!(a.len(), 3);
        let last = a.by_index(2).unwrap();
        assert_eq!(last.name().unwrap(), INDEX_NAME);
        assert_eq!(last.size(), 48);
        drop(last);
        assert!(is_tessera_output(&dest));
    }
}
