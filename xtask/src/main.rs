//! `cargo xtask`: the project's one build entry point (matklad's pattern).
//!
//!   cargo xtask run        build the SDK, start the collector with the demo page and dashboard
//!   cargo xtask test       everything CI checks: fmt, clippy, wasm build, all tests
//!   cargo xtask build-sdk  build the browser SDK into npm/dist
//!   cargo xtask bench ingest [SECONDS]  load test: collector vs a bare handler
//!   cargo xtask seed --events N [--data DIR] [--sites K] [--seed S]  a deterministic data set
//!   cargo xtask bench stats [--events N]  stats API dashboard timings on SQLite
//!   cargo xtask bench sdk [LOADS]  browser SDK sizes (raw/gzip/brotli) and Chromium timings
//!   cargo xtask bench retention [--events N]  the first --retention-days pass under ingest load
//!   cargo xtask fuzz [SECONDS]  fuzz core's parsers, SECONDS per target (default 60)
//!
//! Every command installs what it needs on a bare Debian machine first,
//! idempotently and pinned (see `tools.rs`).

mod bench_import;
mod bench_ingest;
mod bench_retention;
mod bench_sdk;
mod bench_stats;
mod encode;
mod fuzz;
mod sdk;
mod seed;
mod tools;
mod wasm_names;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A relative `--data DIR` means from where the command was typed, not from
/// the project root that xtask then works in.
fn absolute_data_dirs(mut args: Vec<String>) -> Result<Vec<String>> {
    let here = std::env::current_dir()?;
    for i in 1..args.len() {
        if args[i - 1] == "--data" && Path::new(&args[i]).is_relative() {
            args[i] = here.join(&args[i]).display().to_string();
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = absolute_data_dirs(std::env::args().skip(1).collect())?;
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => run(&root, &args[1..]),
        Some("test") => test(&root),
        Some("build-sdk") => sdk::build(&root),
        Some("test-data") => {
            tools::ensure_npm(&root.join("tests/data"))?;
            tools::ensure_city_databases(&root)
        }
        Some("fuzz") => {
            let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
            fuzz::run(&root, seconds)
        }
        Some("seed") => {
            if seed::reexec_in_release(&args)? {
                return Ok(());
            }
            seed::run(&args[1..])
        }
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("ingest") => {
                let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
                bench_ingest::run(&root, seconds)
            }
            Some("stats") => bench_stats::run(&root, &args[2..]),
            Some("sdk") => bench_sdk::run(&root, &args[2..]),
            Some("retention") => bench_retention::run(&root, &args[2..]),
            Some("import") => bench_import::run(&root, &args[2..]),
            _ => bail!(
                "usage: cargo xtask bench <ingest [SECONDS] | stats [--events N] | sdk [LOADS] | retention [--events N] | import [--rows N]>"
            ),
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing command")
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>
  run [--listen ADDR] [--data DIR]   build the SDK and the collector, serve the demo and dashboard
  test                               everything CI runs
  build-sdk                          the browser SDK, the npm tarball, the script tag
  test-data                          the GeoIP databases the tests read (test installs them too)
  fuzz [SECONDS]                     the fuzz targets, SECONDS each
  seed …                             a database of made-up traffic (see xtask/src/seed.rs)
  bench <ingest [SECONDS] | stats [--events N] | sdk [LOADS] | retention [--events N] | import [--rows N]>";

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds the SDK and the collector, then serves the demo until Ctrl-C.
fn run(root: &Path, extra: &[String]) -> Result<()> {
    sdk::build(root)?;
    cargo(&["build", "--release", "-p", "tallymark-collector"])?;
    let bin = root.join("target/release/tallymark");
    let mut listen = "127.0.0.1:8080".to_string();
    let mut data = "tallymark-data".to_string();
    let mut it = extra.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next()) {
            ("--listen", Some(v)) => listen = v.clone(),
            ("--data", Some(v)) => data = v.clone(),
            _ => bail!("unknown run option {flag}"),
        }
    }
    let port = listen.rsplit(':').next().unwrap_or("8080");
    // The demo page reports as site `localhost`.
    tools::run(Command::new(&bin).args([
        "site",
        "add",
        "localhost",
        "--exist-ok",
        "--data",
        &data,
    ]))?;
    // A read-only share token for the demo site, so the dashboard link
    // below opens as is (one more per run; `tallymark token list|revoke`).
    let token = Command::new(&bin)
        .args([
            "token",
            "create",
            "--site",
            "localhost",
            "--share",
            "--data",
            &data,
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .context("creating the demo's dashboard token")?;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    println!();
    println!("  demo page:  http://localhost:{port}/demo   (each load records one pageview)");
    println!("  dashboard:  http://localhost:{port}/dashboard#token={token}");
    println!(
        "              (the demo site, read-only; `target/release/tallymark token create --data {data}` for all sites)"
    );
    println!("  ingest:     POST http://localhost:{port}/api/event");
    println!("  script:     http://localhost:{port}/js/tallymark.js");
    println!("  database:   {data}/tallymark.sqlite3");
    println!();
    let mut serve = Command::new(bin);
    serve.args(["serve", "--listen", &listen, "--data", &data]);
    // The collector replaces this process, so a SIGTERM sent to `cargo
    // xtask run` (a supervisor, `kill`) reaches it: it used to stop xtask
    // only and leave the collector running, holding the port and the data
    // directory.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = serve.exec();
        Err(error).context("starting tallymark")
    }
    #[cfg(not(unix))]
    {
        let status = serve.status().context("starting tallymark")?;
        if !status.success() {
            bail!("tallymark exited with {status}");
        }
        Ok(())
    }
}

/// Seconds per fuzz target in `cargo xtask test`.
const FUZZ_SECONDS_IN_TEST: u32 = 20;

/// Everything CI checks, cheapest first.
fn test(root: &Path) -> Result<()> {
    step("rustfmt");
    cargo(&["fmt", "--all", "--", "--check"])?;
    step("clippy -D warnings");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    step("core for wasm32 (without and with the server feature)");
    tools::ensure_wasm_target()?;
    cargo(&[
        "build",
        "-p",
        "tallymark-core",
        "--no-default-features",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
    // The whole domain, server parts included, is pure too: it must build
    // for wasm32 as well (no I/O, no platform code).
    cargo(&[
        "check",
        "-p",
        "tallymark-core",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
    cargo(&[
        "clippy",
        "-p",
        "tallymark-sdk",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ])?;
    step("SDK");
    sdk::build(root)?;
    step("browser, database and test tools");
    tools::ensure_chromium()?;
    tools::ensure_clickhouse()?;
    tools::ensure_npm(&root.join("tests"))?;
    tools::ensure_npm(&root.join("tests/data"))?;
    tools::ensure_city_databases(root)?;
    tools::ensure_npm_file(
        "umami",
        tools::UMAMI_VERSION,
        "package/src/tracker/index.js",
        // tests/tests/umami.rs reads it under this name.
        &root.join(format!(
            "target/test-clients/umami-{}-tracker.js",
            tools::UMAMI_VERSION
        )),
    )?;
    step("collector binary");
    cargo(&["build", "-p", "tallymark-collector"])?;
    step("tests");
    let (passed, failed) = cargo_test(root)?;
    if failed == 0 {
        step("fuzz (bounded)");
        fuzz::run(root, FUZZ_SECONDS_IN_TEST)?;
    }
    // One closing line for the whole run (cargo prints one per test binary).
    println!("\ntests: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// `cargo test --workspace`, echoing its output and summing its result lines.
fn cargo_test(root: &Path) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("cargo")
        .args(["test", "--workspace"])
        .env("TALLYMARK_BIN", root.join("target/debug/tallymark"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed: {status}");
    }
    Ok((passed, failed))
}

/// In `"ok. 3 passed; 0 failed; …"`, the number before `label`.
fn count_before(text: &str, label: &str) -> u64 {
    text.split(';')
        .filter_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
        })
        .filter_map(|n| n.trim().parse().ok())
        .next()
        .unwrap_or(0)
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    tools::run(Command::new("cargo").args(args))
}
