//! `cargo xtask bench sdk [LOADS]`: the browser SDK's size and speed.
//!
//! 1. Builds the SDK (`sdk::build`, the same pipeline as `build-sdk`).
//! 2. Prints raw, gzip -9 and brotli (quality 11) sizes of the `.wasm` and
//!    the JS of the script-tag bundle (`npm/dist/script/`) and of the npm
//!    ES module (`npm/dist/esm/`), with the totals against the 4 KB gzip
//!    target and Plausible's 786 B script.
//! 3. `twiggy top` of the wasm as cargo built it (names kept), and the
//!    `core::fmt` items left in it (should be none but a panic stub).
//! 4. Loads the script tag in Debian's Chromium (`tests/browser/bench-sdk.mjs`)
//!    against a page whose one-line script only calls `sendBeacon`, and prints
//!    the time from the script's first statement to the first beacon, and the
//!    longest main-thread task and the main-thread time between the script's
//!    evaluation and the beacon (Chromium trace), each as a ratio to the baseline.
//!
//! Figures only: nothing here asserts a time.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{encode, sdk, tools};

/// The target for wasm + glue, gzip -9.
const TARGET_GZ: usize = 4 * 1024;
/// Plausible's script, gzipped (the reference the issue names).
const PLAUSIBLE_GZ: usize = 786;

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let loads: u32 = match args.first() {
        Some(n) => n.parse().context("usage: cargo xtask bench sdk [LOADS]")?,
        None => 15,
    };
    sdk::build(root)?;
    let dist = root.join("npm/dist");
    println!("\nBrowser SDK size (bytes; gzip -9, brotli q11)\n");
    println!("{:<28} {:>8} {:>8} {:>8}", "file", "raw", "gzip", "brotli");
    // The script tag's JS is wasm-bindgen's glue plus the host; the npm
    // package keeps them apart (glue.js, index.js).
    let script = ["script/tallymark.wasm", "script/tallymark.js"];
    let esm = ["esm/tallymark_bg.wasm", "esm/glue.js", "esm/index.js"];
    let mut script_total = Sizes::default();
    for file in script {
        script_total = script_total.add(row(&dist, file)?);
    }
    let mut esm_total = Sizes::default();
    for file in esm {
        esm_total = esm_total.add(row(&dist, file)?);
    }
    println!();
    for (name, total) in [("script tag", script_total), ("npm ESM", esm_total)] {
        println!(
            "{:<28} {:>8} {:>8} {:>8}   {:.2}x the {} B gzip target, {:.1}x Plausible's {} B",
            format!("total, {name}"),
            total.raw,
            total.gzip,
            total.brotli,
            total.gzip as f64 / TARGET_GZ as f64,
            TARGET_GZ,
            total.gzip as f64 / PLAUSIBLE_GZ as f64,
            PLAUSIBLE_GZ,
        );
    }

    twiggy(root)?;

    tools::ensure_chromium()?;
    tools::ensure_npm(&root.join("tests"))?;
    println!("\nBrowser SDK in Chromium (median of {loads} loads each, same run)\n");
    let out = Command::new("node")
        .arg(root.join("tests/browser/bench-sdk.mjs"))
        .arg(dist.join("script"))
        .arg(loads.to_string())
        .stderr(std::process::Stdio::null())
        .output()
        .context("starting node")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("bench-sdk.mjs failed: {stdout}");
    }
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).context("bench-sdk.mjs printed no JSON")?;
    let ms = |page: &str, key: &str| report[page][key].as_f64().unwrap_or(f64::NAN);
    println!("{:<34} {:>10} {:>10} {:>8}", "", "SDK", "baseline", "ratio");
    for (label, key) in [
        ("script start → first beacon (ms)", "first_beacon_ms"),
        ("longest main-thread task (ms)", "longest_task_ms"),
        ("main-thread busy until beacon (ms)", "main_thread_busy_ms"),
    ] {
        let (sdk, base) = (ms("sdk", key), ms("baseline", key));
        println!("{label:<34} {sdk:>10.2} {base:>10.2} {:>7.1}x", sdk / base);
    }
    println!(
        "long tasks (> 50 ms) seen: SDK {:.0} ms, baseline {:.0} ms (0 = none); \
         cross-origin isolated timers: {}",
        ms("sdk", "longtasks_over_50ms_max_ms"),
        ms("baseline", "longtasks_over_50ms_max_ms"),
        report["isolated"]
    );
    println!(
        "baseline: a deferred script whose one line is navigator.sendBeacon(…); \
         the SDK's time includes fetching, compiling and instantiating the wasm.\n\
         tasks: main-thread RunTasks (Chromium trace) from the script's evaluation \
         to the beacon's request; traced loads: SDK {}, baseline {}.",
        report["sdk"]["traced_loads"], report["baseline"]["traced_loads"]
    );
    Ok(())
}

/// The largest items of the SDK's wasm as cargo built it (names kept, before
/// wasm-bindgen and wasm-opt), and whether any `core::fmt` code is left.
fn twiggy(root: &Path) -> Result<()> {
    let bin = tools::ensure_cargo_bin("twiggy", tools::TWIGGY_VERSION, "twiggy")?;
    let wasm = root.join("target/wasm32-unknown-unknown/wasm-release/tallymark_sdk.wasm");
    let top = |n: &str| -> Result<String> {
        let out = Command::new(&bin)
            .args(["top", "-n", n])
            .arg(&wasm)
            .output()
            .context("starting twiggy")?;
        if !out.status.success() {
            bail!("twiggy failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    println!(
        "
Largest items (twiggy top, {}):
",
        wasm.display()
    );
    print!("{}", top("15")?);
    let fmt: Vec<String> = top("100000")?
        .lines()
        .filter(|l| l.contains("::fmt"))
        .map(|l| l.rsplit('┊').next().unwrap_or(l).trim().to_string())
        .collect();
    println!("core::fmt items left: {} {fmt:?}", fmt.len());
    Ok(())
}

#[derive(Default, Clone, Copy)]
struct Sizes {
    raw: usize,
    gzip: usize,
    brotli: usize,
}

impl Sizes {
    fn add(self, o: Sizes) -> Sizes {
        Sizes {
            raw: self.raw + o.raw,
            gzip: self.gzip + o.gzip,
            brotli: self.brotli + o.brotli,
        }
    }
}

fn row(dist: &Path, file: &str) -> Result<Sizes> {
    let bytes = std::fs::read(dist.join(file)).with_context(|| format!("reading {file}"))?;
    let sizes = Sizes {
        raw: bytes.len(),
        gzip: encode::gzip(&bytes)?.len(),
        brotli: encode::brotli(&bytes)?.len(),
    };
    println!(
        "{file:<28} {:>8} {:>8} {:>8}",
        sizes.raw, sizes.gzip, sizes.brotli
    );
    Ok(sizes)
}
