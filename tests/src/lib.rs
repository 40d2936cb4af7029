//! Harness for the end-to-end tests: a real `tallymark` process on a free
//! port with a temporary data directory, and real headless Chromium driven by
//! `playwright-core` scripts in `tests/browser/`.
//!
//! `cargo xtask test` builds the collector and the SDK first and points
//! `TALLYMARK_BIN` at the binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Two people to the collector: a desktop Firefox and a macOS Safari.
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
pub const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

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

/// A running collector; killed when dropped. Its log (stderr) goes to a
/// file, printed if the test fails.
pub struct Collector {
    child: Child,
    pub port: u16,
    pub data: TempDir,
    log: tempfile::NamedTempFile,
}

impl Collector {
    /// A collector with the site `localhost` registered (what the demo page
    /// reports as).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`Collector::start`], with extra `serve` flags.
    pub fn start_with(flags: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        tallymark(&["site", "add", "localhost", "--data"], data.path());
        Self::serve(data, flags)
    }

    /// Starts `serve` on an existing data directory.
    pub fn serve(data: TempDir, flags: &[&str]) -> Self {
        Self::serve_with_env(data, flags, &[])
    }

    /// Like [`Collector::serve`], with extra environment variables.
    pub fn serve_with_env(data: TempDir, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(flags)
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log file"))
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
        Collector {
            child,
            port,
            data,
            log,
        }
    }

    /// The collector's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the collector logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no flush. Returns the data directory.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data, placeholder)
    }

    /// Sends `signal` (a `kill -s` name: `TERM`, what systemd and `docker
    /// stop` send; `INT`, Ctrl-C) to the collector.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits up to `limit` for the collector to exit; returns its exit
    /// status and how long the wait took, or `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends one HTTP/1.1 POST to `path`; returns the status and the raw
    /// response head, or `None` if the connection failed.
    pub fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        http_post(self.port, path, body, headers)
    }

    /// Sends one event as a browser with User-Agent `ua` and checks it was
    /// accepted (`202`).
    pub fn accept(&self, ua: &str, body: &str) {
        let sent = self.post("/api/event", body, &[("User-Agent", ua)]);
        assert_eq!(sent.map(|(status, _)| status), Some(202), "{body}");
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

    /// The value of a metric line in `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = http_get(self.port, "/metrics", &[])?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Waits until ClickHouse (`serve --clickhouse`) holds `events` events
    /// and none wait.
    pub fn wait_shipped(&self, events: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let shipped = self.metric("tallymark_clickhouse_shipped_events_total");
            let lag = self.metric("tallymark_clickhouse_lag_events");
            if shipped == Some(events) && lag == Some(0.0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "shipped {shipped:?}, lag {lag:?} after 30 s; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
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
        if std::thread::panicking() {
            eprintln!("--- collector log ---\n{}", self.logs());
        }
    }
}

/// A minimal HTTP/1.1 client (one request per connection), so load tests
/// measure the collector, not a client library.
pub fn http_post(
    port: u16,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    http("POST", port, path, body, headers)
}

/// `GET path`: the status and the whole response (head and body).
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    http("GET", port, path, "", headers)
}

fn http(
    method: &str,
    port: u16,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response))
}

/// Runs `tallymark ARGS DATA_DIR` to completion; returns its stdout.
pub fn tallymark(args: &[&str], data: &Path) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg(data)
        .output()
        .expect("running tallymark");
    assert!(
        out.status.success(),
        "tallymark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
