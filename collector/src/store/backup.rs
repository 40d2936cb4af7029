//! `tallymark backup`: a consistent copy of the database, taken beside a
//! running collector (a WAL reader never blocks the writer), without the
//! daily salts.
//!
//! The salts stay out on purpose: a salt kept in a backup would outlive its
//! day and let that day's visitor ids be recomputed from a guessed IP and
//! User-Agent, which deleting salts after rotation exists to prevent. They
//! are never written at all: the copy is a new database with the same
//! schema, filled table by table in one read transaction of the original
//! (`INSERT … SELECT`), every table but `salts`. A collector started on a
//! restored copy makes a new salt for the current day, so a visitor who
//! comes back later that same day counts twice.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub events: i64,
    pub sessions: i64,
    pub sites: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: give a new file (a backup never overwrites)")]
    Exists(String),
    #[error("{0} is a directory: give the name of a new file in it")]
    IsDirectory(String),
    #[error("directory {path} of the backup file: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("copying into {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The one table a backup leaves out.
const LEFT_OUT: &str = "salts";

/// Copies the database at `db` into the new file `out`. The copy is built
/// as a hidden file beside `out` and linked to `out` only when complete,
/// never over an existing file.
pub fn backup(db: &Path, out: &Path) -> Result<BackupSummary, BackupError> {
    let shown = out.display().to_string();
    if shown.ends_with('/') || out.is_dir() {
        return Err(BackupError::IsDirectory(shown));
    }
    let name = out
        .file_name()
        .ok_or_else(|| BackupError::IsDirectory(shown.clone()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Absolute: SQLite must never read the name as a `file:` URI.
    let dir = parent
        .canonicalize()
        .map_err(|source| BackupError::Directory {
            path: parent.display().to_string(),
            source,
        })?;
    let out = dir.join(name);
    if out.exists() {
        return Err(BackupError::Exists(shown));
    }
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".partial-{}", std::process::id()));
    let partial = dir.join(hidden);
    let remove_partial = || {
        for suffix in ["", "-journal"] {
            let mut p = partial.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    };
    remove_partial();
    let summary = match copy_without_salts(db, &partial) {
        Ok(summary) => summary,
        Err(e) => {
            remove_partial();
            return Err(e);
        }
    };
    // A hard link fails if `out` appeared meanwhile: never overwrites.
    let linked = std::fs::hard_link(&partial, &out);
    remove_partial();
    match linked {
        Ok(()) => Ok(summary),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(BackupError::Exists(shown)),
        Err(source) => Err(BackupError::Write {
            path: shown,
            source,
        }),
    }
}

fn copy_without_salts(db: &Path, to: &Path) -> Result<BackupSummary, BackupError> {
    let sql = |source| BackupError::Sqlite {
        path: to.display().to_string(),
        source,
    };
    // The original must exist and be a Tallymark database of a schema this
    // binary knows; opening it read-only checks the first.
    drop(super::schema::open_reader(db)?);
    let conn = Connection::open_with_flags(
        to,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.execute("ATTACH DATABASE ?1 AS src", [db.display().to_string()])
        .map_err(sql)?;
    // One transaction: every table is read from the same snapshot.
    conn.execute_batch("BEGIN").map_err(sql)?;
    let objects: Vec<(String, String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT type, name, sql FROM src.sqlite_master
                 WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
                 ORDER BY type = 'table' DESC, rowid",
            )
            .map_err(sql)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    // Tables, their rows (indexes after the rows: faster), then indexes.
    for (kind, name, create) in &objects {
        if kind == "table" {
            conn.execute_batch(create).map_err(sql)?;
            if name != LEFT_OUT {
                let quoted = name.replace('"', "\"\"");
                conn.execute(
                    &format!("INSERT INTO main.\"{quoted}\" SELECT * FROM src.\"{quoted}\""),
                    [],
                )
                .map_err(sql)?;
            }
        }
    }
    for (kind, _, create) in &objects {
        if kind != "table" {
            conn.execute_batch(create).map_err(sql)?;
        }
    }
    // AUTOINCREMENT's high-water marks (`visit_backlog`: a place given once
    // is never given again, also after a restore, whatever was deleted).
    let sequences: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM src.sqlite_master WHERE name = 'sqlite_sequence')",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if sequences {
        conn.execute_batch(
            "DELETE FROM main.sqlite_sequence;
             INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM src.sqlite_sequence;",
        )
        .map_err(sql)?;
    }
    let version: i64 = conn
        .query_row("PRAGMA src.user_version", [], |r| r.get(0))
        .map_err(sql)?;
    conn.pragma_update(None, "user_version", version)
        .map_err(sql)?;
    conn.execute_batch("COMMIT; DETACH DATABASE src;")
        .map_err(sql)?;
    let count = |table: &str| {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql)
    };
    Ok(BackupSummary {
        events: count("events")?,
        sessions: count("sessions")?,
        sites: count("sites")?,
    })
}
