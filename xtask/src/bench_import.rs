//! `cargo xtask bench import [--rows N]`: `tallymark import` (release) of a
//! made-up GoatCounter CSV export of N rows (default 1M) over a year, gzipped
//! as GoatCounter hands it out, into a fresh data directory. Prints rows a
//! second and the database's size, against a baseline run of the same
//! command on the same file right after, which reads and checks every row
//! but writes nothing (every day is then already imported).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::bench_ingest::{build, tempfile_dir};
use crate::seed::{self, Rng};

const PATHS: usize = 300;
const BROWSERS: &[&str] = &[
    "Chrome 131",
    "Chrome 120",
    "Firefox 133",
    "Safari 17.5",
    "Edge 131",
    "Opera 114",
    "",
];
const SYSTEMS: &[&str] = &[
    "Windows 10",
    "macOS 10.15",
    "iOS 17.5",
    "Android 14",
    "Linux Ubuntu",
    "Chrome OS",
];
const REFERRERS: &[(&str, &str)] = &[
    ("", "o"),
    ("", "o"),
    ("", "o"),
    ("Google", "g"),
    ("Google", "g"),
    ("Hacker News", "g"),
    ("www.reddit.com/r/rust", "h"),
    ("news.example.org/2025/05/a-post", "h"),
    ("duckduckgo.com", "h"),
    ("newsletter", "c"),
    ("android-app://com.slack", "o"),
];
const WIDTHS: &[&str] = &["1920,0,1", "1440,0,2", "390,0,3", "768,0,2", "0,0,1"];
const LOCATIONS: &[&str] = &["US-TX", "US-CA", "DE-BY", "FR", "GB", "NL", "IN", ""];

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut forwarded = vec!["bench".to_string(), "import".to_string()];
    forwarded.extend(args.iter().cloned());
    if seed::reexec_in_release(&forwarded)? {
        return Ok(());
    }
    let mut rows = 1_000_000u64;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            ("--rows", Some(v)) => rows = seed::parse_count(v)?,
            _ => bail!("usage: cargo xtask bench import [--rows N]"),
        }
    }
    let bin = build(root)?;
    let dir = tempfile_dir()?;
    let data = dir.join("data");
    let file = dir.join("goatcounter-export-bench.csv.gz");
    let (written, bots) = export(&file, rows)?;
    println!(
        "export: {written} rows ({bots} marked as bots), {:.1} MB gzipped",
        std::fs::metadata(&file)?.len() as f64 / 1e6
    );
    let status = Command::new(&bin)
        .args(["site", "add", "gc.example", "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("site add failed");
    }
    // Peak memory from GNU time where the machine has it (Debian's `time`).
    let time = Path::new("/usr/bin/time");
    let import = || -> Result<(f64, String, Option<u64>)> {
        let started = Instant::now();
        let mut command = if time.exists() {
            let mut c = Command::new(time);
            c.args(["-f", "peak-kb %M"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let out = command
            .args(["import", "--site", "gc.example"])
            .arg(&file)
            .arg("--data")
            .arg(&data)
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let peak = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("peak-kb ")?.trim().parse().ok());
        Ok((
            seconds,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            peak,
        ))
    };
    let (seconds, report, peak) = import()?;
    let (baseline, again, baseline_peak) = import()?;
    for line in report.lines().chain(again.lines()) {
        eprintln!("  {line}");
    }
    let db = data.join("tallymark.sqlite3");
    let conn = rusqlite::Connection::open(&db)?;
    let (events, visits, days): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM sessions),
                (SELECT COUNT(DISTINCT day) FROM rollup_days)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if events as u64 != written - bots {
        bail!("{events} events stored, {} expected", written - bots);
    }
    let size = std::fs::metadata(&db)?.len()
        + std::fs::metadata(dir.join("data/tallymark.sqlite3-wal")).map_or(0, |m| m.len());
    println!("| run | seconds | rows/s | |");
    println!("|---|---|---|---|");
    println!(
        "| import: {events} events, {visits} visits, {days} days rolled up | {seconds:.1} | {:.0} | {:.2}× the baseline's time |",
        written as f64 / seconds,
        seconds / baseline
    );
    println!(
        "| baseline: the same import again (every row read and checked, nothing written) | {baseline:.1} | {:.0} | |",
        written as f64 / baseline
    );
    println!("database after the import: {:.1} MB", size as f64 / 1e6);
    if let (Some(peak), Some(base)) = (peak, baseline_peak) {
        println!(
            "peak memory (resident): import {:.0} MB, baseline {:.0} MB",
            peak as f64 / 1e3,
            base as f64 / 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Writes `rows` rows of a GoatCounter CSV export (version 2, today's
/// format: no User-Agent) to `file`, gzipped: visits of 1 to 8 hits a few
/// minutes apart, over the 365 days before 2026-01-01 (UTC). Returns the
/// rows written and how many are marked as bots.
fn export(file: &Path, rows: u64) -> Result<(u64, u64)> {
    let out = std::fs::File::create(file).with_context(|| file.display().to_string())?;
    let mut gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::default());
    writeln!(
        gz,
        "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date"
    )?;
    let mut rng = Rng::new(7);
    let start: jiff::Timestamp = "2025-01-01T00:00:00Z".parse()?;
    let year_ms = 365 * 86_400_000;
    let (mut written, mut bots, mut session) = (0u64, 0u64, 0u64);
    while written < rows {
        session += 1;
        let hits = 1 + rng.below(8);
        let mut at = start.as_millisecond() + rng.below(year_ms) as i64;
        let browser = BROWSERS[rng.below(BROWSERS.len() as u64) as usize];
        let system = SYSTEMS[rng.below(SYSTEMS.len() as u64) as usize];
        let (referrer, scheme) = REFERRERS[rng.below(REFERRERS.len() as u64) as usize];
        let width = WIDTHS[rng.below(WIDTHS.len() as u64) as usize];
        let location = LOCATIONS[rng.below(LOCATIONS.len() as u64) as usize];
        let bot = u8::from(rng.chance(0.02));
        for hit in 0..hits {
            if written == rows {
                break;
            }
            let event = rng.chance(0.05);
            let path = if event {
                ["signup", "download-pdf", "click-cta"][rng.below(3) as usize].to_string()
            } else {
                let n = rng.below(PATHS as u64);
                if n == 0 {
                    "/".to_string()
                } else {
                    format!("/docs/page-{n}")
                }
            };
            let (referrer, scheme) = if hit == 0 {
                (referrer, scheme)
            } else {
                ("", "o")
            };
            let date = jiff::Timestamp::from_millisecond(at)?;
            writeln!(
                gz,
                "{path},A title,{},,{browser},{system},{:x}-{:x},{bot},{referrer},{scheme},\"{width}\",{location},{},{}",
                u8::from(event),
                session,
                session.wrapping_mul(0x9E37_79B9),
                u8::from(hit == 0),
                date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )?;
            written += 1;
            bots += u64::from(bot);
            at += 30_000 + rng.below(9 * 60_000) as i64;
        }
    }
    gz.finish()?.flush()?;
    Ok((written, bots))
}
