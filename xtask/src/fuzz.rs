//! Bounded fuzzing of core's parsers with `cargo fuzz` (libFuzzer).
//!
//! Runs on the stable toolchain: `RUSTC_BOOTSTRAP=1` admits the `-Z` flags
//! cargo-fuzz passes, and `--sanitizer none` needs no sanitizer runtime (core
//! is `forbid(unsafe_code)`: the bugs to find are panics). Corpus and build
//! live in the tool cache so later runs start where earlier ones stopped.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::tools;

pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The fuzz targets in `core/fuzz/fuzz_targets/`.
pub const TARGETS: &[&str] = &["payload", "forwarded"];

pub fn run(root: &Path, seconds: u32) -> Result<()> {
    tools::ensure_cargo_bin("cargo-fuzz", CARGO_FUZZ_VERSION, "cargo-fuzz")?;
    let cache = tools::cache_dir().join("fuzz");
    std::fs::create_dir_all(cache.join("artifacts"))?;
    for target in TARGETS {
        let corpus = cache.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        if *target == "payload" {
            seed_from_fixtures(root, &corpus)?;
        }
        eprintln!("fuzzing {target} for {seconds}s");
        tools::run(
            Command::new("cargo")
                .env("PATH", tools::path_with_tools())
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_DIR", cache.join("target"))
                .current_dir(root.join("core"))
                .args(["fuzz", "run", "--sanitizer", "none", target])
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg("-print_final_stats=1")
                .arg(format!(
                    "-artifact_prefix={}/",
                    cache.join("artifacts").display()
                )),
        )?;
    }
    Ok(())
}

/// The golden wire fixtures are good starting inputs for the payload parser.
fn seed_from_fixtures(root: &Path, corpus: &Path) -> Result<()> {
    let fixtures = root.join("core/tests/fixtures/wire");
    for entry in std::fs::read_dir(fixtures)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, corpus.join(name))?;
        }
    }
    Ok(())
}
