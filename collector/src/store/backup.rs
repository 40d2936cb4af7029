//! `tallymark backup`: a consistent copy of the database, taken beside a
//! running collector (a WAL reader never blocks the writer), without the
//! daily salts.
//!
//! The salts stay out on purpose: a salt kept in a backup would outlive its
//! day and let that day's visitor ids be recomputed from a guessed IP and
//! User-Agent, which deleting salts after rotation exists to prevent. A
//! collector started on a restored copy makes a new salt for the current
//! day, so a visitor who comes back later that same day counts twice.

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
    #[error("backup to {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("backup to {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies the database at `db` to the new file `out` (one transaction's
/// snapshot, compacted), then removes the salts from the copy with secure
/// delete and compacts it again, so no salt byte is left in its free pages.
/// The copy is built as `<out>.partial` and renamed when done: `out` never
/// holds a salt, even if this is interrupted.
pub fn backup(db: &Path, out: &Path) -> Result<BackupSummary, BackupError> {
    if out.exists() {
        return Err(BackupError::Exists(out.display().to_string()));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    let summary = copy_without_salts(db, &partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, out).map_err(|source| BackupError::Io {
        path: out.display().to_string(),
        source,
    })?;
    Ok(summary)
}

fn copy_without_salts(db: &Path, to: &Path) -> Result<BackupSummary, BackupError> {
    let sql = |source| BackupError::Sqlite {
        path: to.display().to_string(),
        source,
    };
    let reader = super::schema::open_reader(db)?;
    reader
        .execute("VACUUM INTO ?1", [to.display().to_string()])
        .map_err(sql)?;
    drop(reader);
    let copy = Connection::open_with_flags(
        to,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    copy.execute_batch(
        "PRAGMA journal_mode = DELETE;
         PRAGMA secure_delete = ON;
         DELETE FROM salts;
         VACUUM;",
    )
    .map_err(sql)?;
    let count = |table: &str| {
        copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sql)
    };
    Ok(BackupSummary {
        events: count("events")?,
        sessions: count("sessions")?,
        sites: count("sites")?,
    })
}
