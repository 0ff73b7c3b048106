//! Small helpers: time stamps, sizes, random strings.

use rand::Rng;
use std::path::{Path, PathBuf};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const RFC3339_MS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// RFC 3339 UTC with milliseconds, as ion writes dates.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(RFC3339_MS)
        .unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether a file name is an upload still being written (a direct PUT's
/// `.NAME.upload-XXXX` or an S3 upload's `.upload-XXXX`): never an asset's file.
pub fn is_partial_upload(name: &str) -> bool {
    name.starts_with('.') && name.contains(".upload-") || name.starts_with(".upload-")
}

/// Partial uploads under `dir`, recursively.
pub fn list_partial_uploads(dir: &Path) -> Vec<PathBuf> {
    walk_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| is_partial_upload(&n.to_string_lossy()))
        })
        .collect()
}

/// Files under `dir`, recursively, sorted; uploads still being written are left out.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    walk_files(dir)
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| is_partial_upload(&n.to_string_lossy()))
        })
        .collect()
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Bytes of every file below `dir` (0 when absent).
pub fn dir_size(dir: &Path) -> u64 {
    list_files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Random characters from `alphabet`.
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A relative upload path: `/`-separated, no empty, `.` or `..` segment, no backslash
/// or NUL, at most 1024 bytes.
pub fn safe_relative(path: &str) -> Option<&str> {
    if path.is_empty() || path.len() > 1024 || path.contains('\\') || path.contains('\0') {
        return None;
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_paths_stay_relative() {
        assert_eq!(safe_relative("dem/a.tif"), Some("dem/a.tif"));
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a\\b",
            "..",
            "a/",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_have_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_740_820_502).unwrap();
        assert_eq!(rfc3339(t), "2025-03-01T09:15:02.000Z");
    }
}
