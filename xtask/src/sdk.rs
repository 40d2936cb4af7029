//! Builds the browser SDK:
//!
//! 1. `wasm-pack build` (cargo, profile `wasm-release`, + wasm-bindgen `--target web`)
//!    → `target/sdk/web/` (the ES module the npm package will ship);
//! 2. wasm-bindgen `--target no-modules` on the same `.wasm`, wrapped in an
//!    IIFE with a bootstrap that reads the script tag → `npm/dist/script/`
//!    (what the collector embeds and serves at `/js/tallymark.js`);
//! 3. `wasm-opt -Oz` from npm `binaryen@132` on every `.wasm`
//!    (Debian's binaryen 108 breaks wasm-bindgen 0.2.130 output).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::tools;

/// Reads `data-site` / `data-api` from the script tag, loads the `.wasm`
/// next to the script, and starts the beacon. Any failure is swallowed: the
/// host page never sees an exception from us.
const BOOTSTRAP: &str = r#"
try {
  var s = document.currentScript;
  if (s) {
    var src = s.src, base = src.slice(0, src.lastIndexOf('/') + 1);
    var site = s.getAttribute('data-site') || location.hostname;
    var api = s.getAttribute('data-api') || new URL('/api/event', src).href;
    wasm_bindgen({ module_or_path: base + 'tallymark.wasm' })
      .then(function () { wasm_bindgen.start(site, api); })
      .catch(function () {});
  }
} catch (e) {}
"#;

/// Wasm features the Rust wasm32 target enables by default; wasm-opt must
/// accept them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

pub fn build(root: &Path) -> Result<()> {
    tools::ensure_wasm_tools()?;
    tools::ensure_npm(&root.join("npm"))?;
    let path = tools::path_with_tools();
    let web_dir = root.join("target/sdk/web");
    tools::run(
        Command::new("wasm-pack")
            .env("PATH", &path)
            .args(["build", "--mode", "no-install", "--no-pack", "--no-opt"])
            .args(["--target", "web", "--profile", "wasm-release"])
            .args(["--out-name", "tallymark", "--out-dir"])
            .arg(&web_dir)
            .arg(root.join("sdk-wasm")),
    )?;
    let raw = root.join("target/wasm32-unknown-unknown/wasm-release/tallymark_sdk.wasm");
    let classic = root.join("target/sdk/no-modules");
    tools::run(
        Command::new("wasm-bindgen")
            .env("PATH", &path)
            .args([
                "--target",
                "no-modules",
                "--out-name",
                "tallymark",
                "--out-dir",
            ])
            .arg(&classic)
            .arg(&raw),
    )?;
    let script_dir = root.join("npm/dist/script");
    std::fs::create_dir_all(&script_dir)?;
    let glue = std::fs::read_to_string(classic.join("tallymark.js"))
        .context("reading the no-modules glue")?;
    // The IIFE keeps wasm-bindgen's `wasm_bindgen` global out of the host page.
    let bundle = format!("(function () {{\n{glue}\n{BOOTSTRAP}\n}})();\n");
    std::fs::write(script_dir.join("tallymark.js"), bundle)?;
    wasm_opt(
        root,
        &classic.join("tallymark_bg.wasm"),
        &script_dir.join("tallymark.wasm"),
    )?;
    let web_wasm = web_dir.join("tallymark_bg.wasm");
    wasm_opt(root, &web_wasm, &web_wasm)?;
    eprintln!("SDK built: {}", script_dir.display());
    Ok(())
}

fn wasm_opt(root: &Path, input: &Path, output: &Path) -> Result<()> {
    let bin = root.join("npm/node_modules/.bin/wasm-opt");
    tools::run(
        Command::new(bin)
            .arg("-Oz")
            .args(WASM_FEATURES)
            .arg(input)
            .arg("-o")
            .arg(output),
    )
}
