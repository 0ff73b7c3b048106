//! Uploaded zips, treated as hostile: entries must stay inside the destination, and the
//! unpacked size is capped both absolutely and relative to the archive (zip bombs).

use std::io::{Read, Write};
use std::path::Path;

/// Most bytes unpacked from one archive.
const MAX_TOTAL_BYTES: u64 = 64 << 30;
/// Most unpacked bytes per archive byte (real data compresses far less).
const MAX_RATIO: u64 = 200;
const MAX_ENTRIES: usize = 200_000;

/// Unpack `zip` into `dest`; the message says what was wrong.
pub fn extract(zip: &Path, dest: &Path) -> Result<u64, String> {
    let file = std::fs::File::open(zip).map_err(|e| format!("cannot open: {e}"))?;
    let packed = file.metadata().map(|m| m.len()).unwrap_or(0);
    let budget = MAX_TOTAL_BYTES.min(packed.saturating_mul(MAX_RATIO).max(1 << 20));
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip: {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "{} entries, more than {MAX_ENTRIES}",
            archive.len()
        ));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if entry.encrypted() {
            return Err(format!("entry {i} is encrypted"));
        }
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!("entry {i} points outside the archive's folder"));
        };
        let out = dest.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        let mut w = std::fs::File::create(&out).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", rel.display()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > budget {
                return Err(format!(
                    "unpacks to more than {budget} bytes from {packed} (a zip bomb, or beyond the limits)"
                ));
            }
            w.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn make(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, data) in entries {
            z.start_file(*name, SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
        f
    }

    #[test]
    fn slips_and_bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ok = make(&[("a/b.txt", b"hello")]);
        assert_eq!(extract(ok.path(), dir.path()).unwrap(), 5);
        assert_eq!(std::fs::read(dir.path().join("a/b.txt")).unwrap(), b"hello");
        let slip = make(&[("../evil.txt", b"x")]);
        assert!(extract(slip.path(), &dir.path().join("s"))
            .unwrap_err()
            .contains("outside"));
        assert!(!dir.path().join("evil.txt").exists());
        let zeros = vec![0u8; 300 << 20];
        let bomb = make(&[("z.bin", &zeros)]);
        let e = extract(bomb.path(), &dir.path().join("b")).unwrap_err();
        assert!(e.contains("zip bomb"), "{e}");
    }
}
