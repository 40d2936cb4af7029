//! `cargo xtask bench ingest`: load against `tallymark serve` (durable acks,
//! SQLite group commit) and against a bare axum handler that only parses the
//! same JSON, in one run; prints req/s, p50, p99 and the ratios, then checks
//! that every acknowledged event is in the database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cargo;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(cmd: &mut Command) -> Result<Server> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {line:?}"))?;
    Ok(Server { child, port })
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Load {
    pub(crate) requests: u64,
    pub(crate) stored: u64,
    pub(crate) other: u64,
    pub(crate) errors: u64,
    pub(crate) rps: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    /// The server's own CPU time (user + system, all threads) per request,
    /// in microseconds: what the host's stealing does not change.
    pub(crate) cpu_us: f64,
}

/// One loadgen run: `pace` is `0` (closed loop), a rate per second, or
/// `burst`; `extra` is `ids` for a unique `event_id` per request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load(
    root: &Path,
    server: &Server,
    connections: u32,
    seconds: u32,
    pace: &str,
    visitors: &str,
    tag: &str,
    extra: &str,
) -> Result<Load> {
    let cpu_before = cpu_ms(server.child.id());
    let out = Command::new(root.join("target/release/examples/loadgen"))
        .args([
            server.port.to_string(),
            connections.to_string(),
            seconds.to_string(),
            pace.to_string(),
            visitors.to_string(),
            tag.to_string(),
            extra.to_string(),
        ])
        .output()?;
    let cpu = cpu_ms(server.child.id())
        .zip(cpu_before)
        .map_or(0, |(a, b)| a.saturating_sub(b));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).with_context(|| format!("loadgen said {text:?}"))?;
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok(Load {
        requests: f("requests") as u64,
        stored: f("stored") as u64,
        other: f("other_status") as u64,
        errors: f("errors") as u64,
        rps: f("rps"),
        p50: f("p50_ms"),
        p99: f("p99_ms"),
        cpu_us: cpu as f64 * 1000.0 / f("requests").max(1.0),
    })
}

fn row(name: &str, l: &Load) {
    println!(
        "| {name:<44} | {:>8.0} | {:>7.2} | {:>7.2} | {:>8} | {:>6} | {:>6.1} |",
        l.rps,
        l.p50,
        l.p99,
        l.requests,
        l.other + l.errors,
        l.cpu_us
    );
}

/// Builds the collector and the load generator (release); the binary.
pub(crate) fn build(root: &Path) -> Result<std::path::PathBuf> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "tallymark-collector",
        "--bins",
        "--examples",
    ])?;
    Ok(root.join("target/release/tallymark"))
}

/// Registers the site the load generator sends for (`localhost`).
pub(crate) fn add_site(bin: &Path, data: &Path) -> Result<()> {
    let status = Command::new(bin)
        .args(["site", "add", "localhost", "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("site add failed");
    }
    Ok(())
}

pub fn run(root: &Path, seconds: u32) -> Result<()> {
    let bin = build(root)?;
    let data = tempfile_dir()?;
    add_site(&bin, &data)?;

    println!(
        "| run (2-core machine, loadgen on the same cores) | req/s | p50 ms | p99 ms | requests | non-202 | server CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|");
    let bare = start(&mut Command::new(
        root.join("target/release/examples/bare_ingest"),
    ))?;
    let base = load(root, &bare, 32, seconds, "0", "distinct", "base", "")?;
    row("bare axum parse + 202, 32 connections", &base);
    // The load generator's own pacing jitter, to read the paced p99 against.
    let base_paced = load(root, &bare, 32, seconds, "5000", "distinct", "bp", "")?;
    row("bare axum at 5,000 req/s offered", &base_paced);
    drop(bare);

    let server = start(
        Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    )?;
    // Every run against the collector counts what it stored, checked
    // against the database at the end.
    let mut stored = 0;
    let mut run = |on: &Server, tag: &str, connections, pace: &str, visitors, extra| {
        let l = load(root, on, connections, seconds, pace, visitors, tag, extra)?;
        stored += l.stored;
        anyhow::Ok(l)
    };
    let full = run(&server, "full", 32, "0", "distinct", "")?;
    row("tallymark serve, durable acks, 32 connections", &full);
    // Paced three times: on this shared VM the tail moves with the time
    // the host takes the CPUs away (steal), printed with each run.
    let mut paced_runs = Vec::new();
    for i in 0..3 {
        let before = steal_ms();
        let paced = run(&server, &format!("paced{i}"), 32, "5000", "distinct", "")?;
        let stolen = steal_ms().zip(before).map(|(a, b)| a.saturating_sub(b));
        let label = match stolen {
            Some(ms) => format!("tallymark serve at 5,000 req/s ({ms} ms stolen)"),
            None => "tallymark serve at 5,000 req/s offered".to_string(),
        };
        row(&label, &paced);
        paced_runs.push(paced);
    }
    paced_runs.sort_by(|a, b| a.p99.total_cmp(&b.p99));
    let paced = paced_runs[1].clone();
    let with_ids = run(&server, "ids", 32, "0", "distinct", "ids")?;
    row("same, every request with its own event_id", &with_ids);
    let burst1 = run(&server, "burst1", 1, "burst", "same", "")?;
    row("one request of one visitor at a time", &burst1);
    let burst20 = run(&server, "burst20", 20, "burst", "same", "")?;
    row("bursts of 20 concurrent requests, one visitor", &burst20);
    let burst20d = run(&server, "burst20d", 20, "burst", "distinct", "")?;
    row("bursts of 20 concurrent requests, 20 visitors", &burst20d);
    let single = run(&server, "single", 1, "0", "same", "")?;
    row("one visitor, 1 connection, closed loop", &single);
    let same20 = run(&server, "same20", 20, "0", "same", "")?;
    row("one visitor, 20 connections, closed loop", &same20);
    let distinct20 = run(&server, "distinct20", 20, "0", "distinct", "")?;
    row("20 visitors, 20 connections, closed loop", &distinct20);
    drop(server);

    let fsync = start(
        Command::new(&bin)
            .args(["serve", "--fsync", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    )?;
    let synced = run(&fsync, "fsync", 32, "0", "distinct", "")?;
    row("tallymark serve --fsync, 32 connections", &synced);
    let synced_big = run(&fsync, "fsync256", 256, "0", "distinct", "")?;
    row("tallymark serve --fsync, 256 connections", &synced_big);
    drop(fsync);

    let conn_rows = count_rows(&data)?;
    println!();
    println!(
        "throughput ratio (tallymark / bare):        {:.2} (target >= 0.7); server CPU per request: {:.1} / {:.1} µs = {:.2}",
        full.rps / base.rps,
        base.cpu_us,
        full.cpu_us,
        base.cpu_us / full.cpu_us.max(0.001)
    );
    println!(
        "p99 at 5,000 req/s offered, median of 3:     {:.2} ms (target <= 5 ms; runs {:.2} / {:.2} / {:.2}); bare handler, same pacing: {:.2} ms",
        paced.p99, paced_runs[0].p99, paced_runs[1].p99, paced_runs[2].p99, base_paced.p99
    );
    println!(
        "p99 burst of 20, one visitor / one request:  {:.2} (target <= 2)",
        burst20.p99 / burst1.p99.max(0.001)
    );
    println!(
        "p99 burst of 20, one visitor / 20 visitors:  {:.2}",
        burst20.p99 / burst20d.p99.max(0.001)
    );
    println!(
        "closed loop p99, one visitor x20 / x1:       {:.2}; / 20 visitors x20: {:.2}",
        same20.p99 / single.p99.max(0.001),
        same20.p99 / distinct20.p99.max(0.001)
    );
    println!(
        "events acknowledged (202, stored): {stored}; rows in the database: {conn_rows}; lost: {}",
        stored.saturating_sub(conn_rows)
    );
    let _ = std::fs::remove_dir_all(&data);
    if conn_rows < stored {
        bail!("{} acknowledged events are missing", stored - conn_rows);
    }
    Ok(())
}

/// A process's CPU time so far (user + system, all threads), in ms.
fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10)
}

/// CPU time the hypervisor gave to others (`steal` in /proc/stat, both
/// CPUs), in milliseconds; `None` where there is no /proc.
fn steal_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let jiffies: u64 = stat
        .lines()
        .next()?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some(jiffies * 10)
}

/// Rows in the stopped collector's database, read with Debian's sqlite3.
fn count_rows(data: &Path) -> Result<u64> {
    crate::tools::ensure_apt("/usr/bin/sqlite3", &["sqlite3"])?;
    let out = Command::new("sqlite3")
        .arg(data.join("tallymark.sqlite3"))
        .arg("SELECT COUNT(*) FROM events")
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tallymark-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
