//! Harness for the end-to-end tests: a real `tallymark` process on a free
//! port with a temporary data directory, and real headless Chromium driven by
//! `playwright-core` scripts in `tests/browser/`.
//!
//! `cargo xtask test` builds the collector and the SDK first and points
//! `TALLYMARK_BIN` at the binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The `tallymark` binary under test.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TALLYMARK_BIN") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join("target/debug/tallymark");
    assert!(
        p.exists(),
        "no tallymark binary at {}: run the tests with `cargo xtask test`",
        p.display()
    );
    p
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A running collector; killed when dropped.
pub struct Collector {
    child: Child,
    pub port: u16,
    pub data: TempDir,
}

impl Collector {
    pub fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning tallymark");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the listen line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Collector { child, port, data }
    }

    /// Base URL by name, as a browser would use it.
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.path().join("tallymark.sqlite3")
    }

    /// Polls `SELECT COUNT(*) …` until it reaches `want` or `timeout` passes;
    /// returns the last count.
    pub fn wait_for_count(&self, sql: &str, want: i64, timeout: Duration) -> i64 {
        let start = Instant::now();
        loop {
            let n = rusqlite::Connection::open_with_flags(
                self.db_path(),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .and_then(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
            .unwrap_or(-1);
            if n >= want || start.elapsed() > timeout {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn query<T: rusqlite::types::FromSql>(&self, sql: &str) -> Vec<Vec<T>> {
        let conn = rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db");
        let mut stmt = conn.prepare(sql).expect("prepare");
        let cols = stmt.column_count();
        stmt.query_map([], |r| (0..cols).map(|i| r.get(i)).collect())
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/browser/<script>` in node with `args`; returns the JSON it prints.
pub fn browser(script: &str, args: &[&str]) -> serde_json::Value {
    let path = workspace_root().join("tests/browser").join(script);
    let out = Command::new("node")
        .arg(&path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed: {stdout}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}
