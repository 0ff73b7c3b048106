//! State in SQLite (WAL): assets, tokens, upload sessions and the server secret. Files
//! live beside it under the data folder: `sources/{id}/` (uploads) and `assets/{id}/`
//! (served output).

use crate::wire::{ProcessingError, ProcessingWarning, Token};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    AwaitingFiles,
    NotStarted,
    InProgress,
    Complete,
    DataError,
    Error,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::AwaitingFiles,
        Status::NotStarted,
        Status::InProgress,
        Status::Complete,
        Status::DataError,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingFiles => "AWAITING_FILES",
            Status::NotStarted => "NOT_STARTED",
            Status::InProgress => "IN_PROGRESS",
            Status::Complete => "COMPLETE",
            Status::DataError => "DATA_ERROR",
            Status::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Complete | Status::DataError | Status::Error)
    }
}

/// One asset as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    pub id: i64,
    pub type_: String,
    pub name: String,
    pub description: String,
    pub attribution: String,
    pub bytes: u64,
    pub date_added: String,
    pub status: Status,
    pub percent: u8,
    pub options: Value,
    pub stage: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub tiles_written: u64,
    pub error: Option<ProcessingError>,
    pub warnings: Vec<ProcessingWarning>,
    /// File the endpoint points at, relative to the asset folder ("" for folder roots).
    pub entry: String,
    /// Times the job started without finishing cleanly (a worker or the server killed
    /// under it); the job is failed instead of started a third time.
    pub attempts: u32,
}

/// An export of an asset's served tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveRow {
    pub id: i64,
    pub asset_id: i64,
    pub format: String,
    pub status: String,
    pub bytes: u64,
}

/// Per-asset S3 credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadSession {
    pub access_key: String,
    pub secret: String,
    pub session_token: String,
    pub asset_id: i64,
    pub expires_unix: i64,
    pub closed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, attribution TEXT NOT NULL,
  bytes INTEGER NOT NULL DEFAULT 0, date_added TEXT NOT NULL,
  status TEXT NOT NULL, percent INTEGER NOT NULL DEFAULT 0, options TEXT NOT NULL,
  stage TEXT, started_at TEXT, finished_at TEXT, tiles_written INTEGER NOT NULL DEFAULT 0,
  error TEXT, warnings TEXT NOT NULL DEFAULT '[]', entry TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS tokens (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, token TEXT NOT NULL,
  date_added TEXT NOT NULL, date_modified TEXT NOT NULL, date_last_used TEXT,
  scopes TEXT NOT NULL, asset_ids TEXT, allowed_urls TEXT, is_default INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS archives (
  id INTEGER PRIMARY KEY AUTOINCREMENT, asset_id INTEGER NOT NULL, format TEXT NOT NULL,
  status TEXT NOT NULL, bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS upload_sessions (
  access_key TEXT PRIMARY KEY, secret TEXT NOT NULL, session_token TEXT NOT NULL,
  asset_id INTEGER NOT NULL, expires_unix INTEGER NOT NULL, closed INTEGER NOT NULL DEFAULT 0
);
";

const ASSET_COLUMNS: &str = "id, type, name, description, attribution, bytes, date_added, status, percent, options, stage, started_at, finished_at, tiles_written, error, warnings, entry, attempts";

/// Columns added after the first release, for databases made before them.
const MIGRATIONS: &[(&str, &str)] = &[(
    "attempts",
    "ALTER TABLE assets ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
)];

fn asset_from_row(r: &Row) -> rusqlite::Result<AssetRow> {
    let options: String = r.get(9)?;
    let error: Option<String> = r.get(14)?;
    let warnings: String = r.get(15)?;
    let status: String = r.get(7)?;
    Ok(AssetRow {
        id: r.get(0)?,
        type_: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        attribution: r.get(4)?,
        bytes: r.get::<_, i64>(5)?.max(0) as u64,
        date_added: r.get(6)?,
        status: Status::parse(&status).unwrap_or(Status::Error),
        percent: r.get::<_, i64>(8)?.clamp(0, 100) as u8,
        options: serde_json::from_str(&options).unwrap_or(Value::Null),
        stage: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        tiles_written: r.get::<_, i64>(13)?.max(0) as u64,
        error: error.and_then(|e| serde_json::from_str(&e).ok()),
        warnings: serde_json::from_str(&warnings).unwrap_or_default(),
        entry: r.get(16)?,
        attempts: r.get::<_, i64>(17)?.clamp(0, i64::from(u32::MAX)) as u32,
    })
}

fn token_from_row(r: &Row) -> rusqlite::Result<Token> {
    let scopes: String = r.get(6)?;
    let ids: Option<String> = r.get(7)?;
    let urls: Option<String> = r.get(8)?;
    Ok(Token {
        id: r.get(0)?,
        name: r.get(1)?,
        token: r.get(2)?,
        date_added: r.get(3)?,
        date_modified: r.get(4)?,
        date_last_used: r.get(5)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        asset_ids: ids.and_then(|s| serde_json::from_str(&s).ok()),
        allowed_urls: urls.and_then(|s| serde_json::from_str(&s).ok()),
        is_default: r.get::<_, i64>(9)? != 0,
    })
}

const TOKEN_COLUMNS: &str = "id, name, token, date_added, date_modified, date_last_used, scopes, asset_ids, allowed_urls, is_default";

/// First asset id handed out (local ids stay clear of ion's well-known ones).
pub const FIRST_ASSET_ID: i64 = 1000;

impl Store {
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join("tessera.sqlite");
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let columns: Vec<String> = {
            let mut st = conn
                .prepare("SELECT name FROM pragma_table_info('assets')")
                .map_err(err)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        for (column, sql) in MIGRATIONS {
            if !columns.iter().any(|c| c == column) {
                conn.execute_batch(sql).map_err(err)?;
            }
        }
        Ok(Store {
            path: path.clone(),
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&c).map_err(|source| StoreError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
        })
    }

    /// Insert a new asset with the next id (never reused).
    pub fn create_asset(&self, a: &AssetRow) -> Result<i64, StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let next: i64 = tx
                .query_row("SELECT value FROM meta WHERE key = 'next_asset_id'", [], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
                .and_then(|s| s.parse().ok())
                .unwrap_or(FIRST_ASSET_ID);
            tx.execute(
                "INSERT INTO assets (id, type, name, description, attribution, bytes, date_added, status, percent, options, entry) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, 0, ?8, ?9)",
                params![next, a.type_, a.name, a.description, a.attribution, a.date_added, a.status.as_str(), a.options.to_string(), a.entry],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('next_asset_id', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(next + 1).to_string()],
            )?;
            tx.commit()?;
            Ok(next)
        })
    }

    pub fn asset(&self, id: i64) -> Result<Option<AssetRow>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?1"),
                [id],
                asset_from_row,
            )
            .optional()
        })
    }

    pub fn assets(&self) -> Result<Vec<AssetRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {ASSET_COLUMNS} FROM assets ORDER BY id"))?;
            let rows = st.query_map([], asset_from_row)?;
            rows.collect()
        })
    }

    /// Write every mutable column of `a`.
    pub fn update_asset(&self, a: &AssetRow) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE assets SET name = ?2, description = ?3, attribution = ?4, bytes = ?5, status = ?6, percent = ?7, stage = ?8, started_at = ?9, finished_at = ?10, tiles_written = ?11, error = ?12, warnings = ?13, entry = ?14, attempts = ?15 WHERE id = ?1",
                params![
                    a.id,
                    a.name,
                    a.description,
                    a.attribution,
                    a.bytes as i64,
                    a.status.as_str(),
                    a.percent as i64,
                    a.stage,
                    a.started_at,
                    a.finished_at,
                    a.tiles_written as i64,
                    a.error.as_ref().map(|e| serde_json::to_string(e).unwrap_or_default()),
                    serde_json::to_string(&a.warnings).unwrap_or_else(|_| "[]".into()),
                    a.entry,
                    i64::from(a.attempts),
                ],
            )
            .map(|_| ())
        })
    }

    pub fn delete_asset(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM upload_sessions WHERE asset_id = ?1", [id])?;
            c.execute("DELETE FROM archives WHERE asset_id = ?1", [id])?;
            c.execute("DELETE FROM assets WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
    }

    pub fn insert_token(&self, t: &Token) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (id, name, token, date_added, date_modified, date_last_used, scopes, asset_ids, allowed_urls, is_default) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t.id,
                    t.name,
                    t.token,
                    t.date_added,
                    t.date_modified,
                    t.date_last_used,
                    serde_json::to_string(&t.scopes).unwrap_or_default(),
                    t.asset_ids.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()),
                    t.allowed_urls.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()),
                    t.is_default as i64,
                ],
            )
            .map(|_| ())
        })
    }

    pub fn update_token(&self, t: &Token) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tokens SET name = ?2, date_modified = ?3, scopes = ?4, asset_ids = ?5, allowed_urls = ?6 WHERE id = ?1",
                params![
                    t.id,
                    t.name,
                    t.date_modified,
                    serde_json::to_string(&t.scopes).unwrap_or_default(),
                    t.asset_ids.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()),
                    t.allowed_urls.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()),
                ],
            )
            .map(|_| ())
        })
    }

    pub fn touch_token(&self, id: &str, when: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tokens SET date_last_used = ?2 WHERE id = ?1",
                [id, when],
            )
            .map(|_| ())
        })
    }

    pub fn token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"),
                [id],
                token_from_row,
            )
            .optional()
        })
    }

    pub fn tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY seq"))?;
            let rows = st.query_map([], token_from_row)?;
            rows.collect()
        })
    }

    pub fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM tokens WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
    }

    pub fn insert_session(&self, s: &UploadSession) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO upload_sessions (access_key, secret, session_token, asset_id, expires_unix, closed) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![s.access_key, s.secret, s.session_token, s.asset_id, s.expires_unix],
            )
            .map(|_| ())
        })
    }

    pub fn session(&self, access_key: &str) -> Result<Option<UploadSession>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT access_key, secret, session_token, asset_id, expires_unix, closed FROM upload_sessions WHERE access_key = ?1",
                [access_key],
                |r| {
                    Ok(UploadSession {
                        access_key: r.get(0)?,
                        secret: r.get(1)?,
                        session_token: r.get(2)?,
                        asset_id: r.get(3)?,
                        expires_unix: r.get(4)?,
                        closed: r.get::<_, i64>(5)? != 0,
                    })
                },
            )
            .optional()
        })
    }

    pub fn insert_archive(&self, asset_id: i64, format: &str) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO archives (asset_id, format, status) VALUES (?1, ?2, 'NOT_STARTED')",
                params![asset_id, format],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn set_archive(&self, id: i64, status: &str, bytes: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE archives SET status = ?2, bytes = ?3 WHERE id = ?1",
                params![id, status, bytes as i64],
            )
            .map(|_| ())
        })
    }

    /// `(id, asset_id, format, status, bytes)` of an asset's archives, oldest first.
    pub fn archives(&self, asset_id: i64) -> Result<Vec<ArchiveRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, asset_id, format, status, bytes FROM archives WHERE asset_id = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([asset_id], |r| {
                Ok(ArchiveRow {
                    id: r.get(0)?,
                    asset_id: r.get(1)?,
                    format: r.get(2)?,
                    status: r.get(3)?,
                    bytes: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })?;
            rows.collect()
        })
    }

    pub fn delete_archive(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM archives WHERE id = ?1", [id])
                .map(|n| n > 0)
        })
    }

    pub fn close_sessions(&self, asset_id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE upload_sessions SET closed = 1 WHERE asset_id = ?1",
                [asset_id],
            )
            .map(|_| ())
        })
    }
}
