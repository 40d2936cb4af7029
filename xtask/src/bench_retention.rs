//! `cargo xtask bench retention [--events N]`: the first `--retention-days`
//! pass over a year of seeded rows, under paced ingest load. Prints how long
//! the deletion took and how many rows a second, and the ingest latency in
//! 5-second windows during it against a baseline run of the same load on the
//! same database just before (same process, same machine).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::bench_ingest::{Load, Server, add_site, build, load, start, tempfile_dir};
use crate::seed::{self, SeedArgs};

/// Days of seeded data the retention keeps (of the 365 seeded).
const KEEP_SEEDED_DAYS: i64 = 120;
/// Offered load while it deletes, requests per second.
const PACE: &str = "1000";
const WINDOW_SECONDS: u32 = 5;

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut forwarded = vec!["bench".to_string(), "retention".to_string()];
    forwarded.extend(args.iter().cloned());
    if seed::reexec_in_release(&forwarded)? {
        return Ok(());
    }
    let mut events = 2_000_000;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            ("--events", Some(v)) => events = seed::parse_count(v)?,
            _ => bail!("usage: cargo xtask bench retention [--events N]"),
        }
    }
    let bin = build(root)?;
    let data = tempfile_dir()?;
    eprintln!("seeding {events} events over 365 days ...");
    seed::seed(&SeedArgs {
        events,
        data: data.clone(),
        sites: 3,
        seed: 1,
        days: 365,
    })?;
    add_site(&bin, &data)?;
    // Keep the seeded year's last KEEP_SEEDED_DAYS days: days counted back
    // from today (the seeded data ends at seed::END_UTC).
    let end: jiff::Timestamp = seed::END_UTC.parse()?;
    let keep_from_ms = end.as_millisecond() - KEEP_SEEDED_DAYS * 86_400_000;
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let days = (now_ms - keep_from_ms) / 86_400_000;
    let db = seed::db_path(&data);
    let counts = || -> Result<(i64, i64, i64)> {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM sessions),
                    (SELECT COUNT(*) FROM engagements)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    };
    let before = counts()?;
    let size_before = std::fs::metadata(&db)?.len();

    println!(
        "| run ({PACE} req/s offered, 32 connections, loadgen on the same 2 cores) | req/s | p50 ms | p99 ms | non-202 | rows deleted by then |"
    );
    println!("|---|---|---|---|---|---|");
    let server = serve(&bin, &data, &[])?;
    let base = load(root, &server, 32, 10, PACE, "distinct", "base", "")?;
    row("before: no retention (10 s)", &base, 0);
    drop(server);

    let started = Instant::now();
    let server = serve(&bin, &data, &["--retention-days", &days.to_string()])?;
    let deleted = Arc::new(Mutex::new((0u64, Duration::ZERO)));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (deleted, stop, port) = (deleted.clone(), stop.clone(), server.port);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = deleted_rows(port)
                    && let Ok(mut d) = deleted.lock()
                    && n > d.0
                {
                    *d = (n, started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut windows = Vec::new();
    let mut quiet = 0;
    for i in 0.. {
        let seen = deleted.lock().map(|d| d.0).unwrap_or(0);
        let w = load(
            root,
            &server,
            32,
            WINDOW_SECONDS,
            PACE,
            "distinct",
            &format!("w{i}"),
            "",
        )?;
        let now = deleted.lock().map(|d| d.0).unwrap_or(0);
        row(
            &format!("deleting: window {} ({WINDOW_SECONDS} s)", i + 1),
            &w,
            now,
        );
        windows.push((w, now > seen));
        quiet = if now > 0 && now == seen { quiet + 1 } else { 0 };
        if quiet >= 2 || i > 200 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = poller.join();
    drop(server);
    let (rows, took) = deleted.lock().map(|d| *d).unwrap_or_default();
    let after = counts()?;
    // A fresh connection: the file as the next reader finds it.
    let size_after = std::fs::metadata(&db)?.len();
    println!();
    let ingested: u64 = windows.iter().map(|(w, _)| w.stored).sum::<u64>() + base.stored;
    println!(
        "retention {days} days: deleted {rows} rows (events {} → {} of which {ingested} ingested by the runs, \
         visits {} → {}, engagement {} → {}) in {:.1} s from the start of serve = {:.0} rows/s, \
         under {PACE} req/s of ingest",
        before.0,
        after.0,
        before.1,
        after.1,
        before.2,
        after.2,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64().max(0.001)
    );
    let during: Vec<&Load> = windows.iter().filter(|(_, d)| *d).map(|(w, _)| w).collect();
    if let Some(worst) = during.iter().map(|w| w.p99).reduce(f64::max) {
        let mut p99s: Vec<f64> = during.iter().map(|w| w.p99).collect();
        p99s.sort_by(f64::total_cmp);
        let median = p99s[p99s.len() / 2];
        println!(
            "ingest p99 while deleting: median of {} windows {median:.2} ms ({:.1}× the {:.2} ms before), worst {worst:.2} ms ({:.1}×)",
            during.len(),
            median / base.p99.max(0.001),
            base.p99,
            worst / base.p99.max(0.001)
        );
    }
    let lost: u64 = windows.iter().map(|(w, _)| w.other + w.errors).sum();
    println!(
        "non-202 answers while deleting: {lost}; database file {:.0} MB → {:.0} MB (freed pages are reused, not returned)",
        size_before as f64 / 1e6,
        size_after as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

fn serve(bin: &Path, data: &Path, flags: &[&str]) -> Result<Server> {
    start(
        Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(flags),
    )
}

fn row(name: &str, l: &Load, deleted: u64) {
    println!(
        "| {name:<36} | {:>6.0} | {:>6.2} | {:>7.2} | {:>4} | {deleted:>10} |",
        l.rps,
        l.p50,
        l.p99,
        l.other + l.errors
    );
}

/// `tallymark_retention_deleted_rows_total` from the collector's `/metrics`.
fn deleted_rows(port: u16) -> Option<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("tallymark_retention_deleted_rows_total ")?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| v as u64)
    })
}
