//! Builds the browser SDK:
//!
//! 1. `wasm-pack build` (cargo, profile `wasm-release`, + wasm-bindgen
//!    `--target web`) → `target/sdk/web/`;
//! 2. wasm-bindgen `--target no-modules` on the same `.wasm` → `target/sdk/no-modules/`;
//! 3. `wasm_names::shorten` on each `.wasm` + glue pair (wasm-bindgen's long
//!    internal import/export names → `_0`, `_1`, …), then `wasm-opt -Oz`
//!    from npm `binaryen@132` on the `.wasm` (Debian's binaryen 108 breaks
//!    wasm-bindgen 0.2.130 output);
//! 4. the script-tag bundle: an IIFE of the no-modules glue, `sdk-wasm/js/host.js`
//!    and `sdk-wasm/js/script.js`, minified with terser → `npm/dist/script/`
//!    (what the collector embeds and serves at `/js/tallymark.js`);
//! 5. the npm package's ES module: `npm/dist/esm/glue.js` (the web glue) and
//!    `index.js` (`host.js` + `esm.js`), minified, next to `tallymark_bg.wasm`;
//! 6. `npm pack` → `target/sdk/tallymark-<version>.tgz` (what the e2e tests install).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{encode, tools, wasm_names};

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
    let npm = root.join("npm");
    tools::ensure_npm(&npm)?;
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
            .args(["--target", "no-modules", "--no-typescript"])
            .args(["--out-name", "tallymark", "--out-dir"])
            .arg(&classic)
            .arg(&raw),
    )?;
    shorten_names(&classic)?;
    shorten_names(&web_dir)?;
    let js = root.join("sdk-wasm/js");
    let host = read(&js.join("host.js"))?;

    // The script tag. The IIFE keeps wasm-bindgen's `wasm_bindgen` and the
    // host's names out of the page; only `window.tallymark` is set.
    let script_dir = npm.join("dist/script");
    std::fs::create_dir_all(&script_dir)?;
    let script_wasm = script_dir.join("tallymark.wasm");
    wasm_opt(root, &classic.join("tallymark_bg.wasm"), &script_wasm)?;
    let version = content_hash(&std::fs::read(&script_wasm)?);
    let glue = read(&classic.join("tallymark.js"))?;
    let entry = read(&js.join("script.js"))?.replace("WASM_VERSION", &version);
    let bundle = format!("(function () {{\n{glue}\n{host}\n{entry}\n}})();\n");
    let script_js = script_dir.join("tallymark.js");
    terser(root, &bundle, &script_js, false)?;
    encode_script(&npm, &[&script_js, &script_wasm])?;

    // The npm ES module.
    let esm_dir = npm.join("dist/esm");
    std::fs::create_dir_all(&esm_dir)?;
    let web_glue = read(&web_dir.join("tallymark.js"))?;
    terser(root, &web_glue, &esm_dir.join("glue.js"), true)?;
    let entry = read(&js.join("esm.js"))?;
    let index = format!("import * as tmGlue from './glue.js';\n{host}\n{entry}\n");
    terser(root, &index, &esm_dir.join("index.js"), true)?;
    wasm_opt(
        root,
        &web_dir.join("tallymark_bg.wasm"),
        &esm_dir.join("tallymark_bg.wasm"),
    )?;

    let tarball = pack(root)?;
    eprintln!(
        "SDK built: {}, {}, {}",
        script_dir.display(),
        esm_dir.display(),
        tarball.display()
    );
    Ok(())
}

/// Writes gzip and brotli copies of the script-tag files into
/// `npm/dist/encoded/` (not part of the npm package), which the collector
/// embeds and serves by `Accept-Encoding`: compressed once, at the best
/// levels, instead of per request.
fn encode_script(npm: &Path, files: &[&Path]) -> Result<()> {
    let dir = npm.join("dist/encoded");
    std::fs::create_dir_all(&dir)?;
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .context("an SDK file without a name")?;
        write_if_changed(&dir.join(format!("{name}.gz")), &encode::gzip(&bytes)?)?;
        write_if_changed(&dir.join(format!("{name}.br")), &encode::brotli(&bytes)?)?;
        // Which bytes the copies are of: the collector's build.rs embeds them
        // only next to exactly those (a build that failed between the two
        // steps must not serve old compressed copies with a new script).
        write_if_changed(
            &dir.join(format!("{name}.source")),
            content_hash(&bytes).as_bytes(),
        )?;
    }
    Ok(())
}

/// Shortens wasm-bindgen's names in `dir`'s `tallymark_bg.wasm` and
/// `tallymark.js`, in place (see `wasm_names`).
fn shorten_names(dir: &Path) -> Result<()> {
    let (wasm_path, glue_path) = (dir.join("tallymark_bg.wasm"), dir.join("tallymark.js"));
    let wasm =
        std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let (wasm, glue) = wasm_names::shorten(&wasm, &read(&glue_path)?)?;
    std::fs::write(&wasm_path, wasm)?;
    std::fs::write(&glue_path, glue)?;
    Ok(())
}

/// FNV-1a of `bytes`, 16 hex digits: names one build of the wasm in its URL.
fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Minifies `source` into `out` with terser from npm (pinned in
/// npm/package.json). `module`: ES module (exports kept, top level mangled).
/// `drop_console` removes wasm-bindgen's `console.warn`s (deprecated init
/// arguments, which the host never passes; the wrong-MIME fallback): 170 B
/// gz, and the beacon never logs into the host page's console. The `unsafe`
/// compress options gained ~10 B and are not worth their risk.
fn terser(root: &Path, source: &str, out: &Path, module: bool) -> Result<()> {
    let input = out.with_extension("src.js");
    let output = out.with_extension("new.js");
    std::fs::write(&input, source)?;
    let mut cmd = Command::new("node");
    cmd.arg(root.join("npm/node_modules/terser/bin/terser"))
        .arg(&input)
        .args(["--compress", "passes=3,drop_console=true"])
        .args(["--mangle", "--ecma", "2020"])
        .arg("--output")
        .arg(&output);
    if module {
        cmd.arg("--module");
    }
    let result = tools::run(&mut cmd);
    let _ = std::fs::remove_file(&input);
    result?;
    replace_if_changed(&output, out)
}

/// `wasm-opt -Oz`, dropping the `producers` and `target_features` custom
/// sections (toolchain versions and feature names no browser reads: 255 B
/// gz of the 6.3 KB wasm, measured).
fn wasm_opt(root: &Path, input: &Path, output: &Path) -> Result<()> {
    let bin = root.join("npm/node_modules/.bin/wasm-opt");
    let fresh = output.with_extension("new.wasm");
    tools::run(
        Command::new(bin)
            .arg("-Oz")
            .args(["--strip-producers", "--strip-target-features"])
            .args(WASM_FEATURES)
            .arg(input)
            .arg("-o")
            .arg(&fresh),
    )?;
    replace_if_changed(&fresh, output)
}

/// Writes `bytes` to `path` unless it already holds exactly them. The
/// collector's `build.rs` re-embeds the SDK whenever these files' times
/// change, so rewriting equal bytes cost a release rebuild of the collector
/// (70–90 s) on every `cargo xtask run`.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Moves the just-made `fresh` over `dest` unless `dest` already holds the
/// same bytes (see [`write_if_changed`]).
fn replace_if_changed(fresh: &Path, dest: &Path) -> Result<()> {
    let bytes = std::fs::read(fresh).with_context(|| format!("reading {}", fresh.display()))?;
    let result = write_if_changed(dest, &bytes);
    let _ = std::fs::remove_file(fresh);
    result
}

/// `npm pack` into `target/sdk/`, with the repository's licence texts
/// (copied into `npm/`, git-ignored there); returns the tarball.
fn pack(root: &Path) -> Result<PathBuf> {
    for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
        std::fs::copy(root.join(licence), root.join("npm").join(licence))
            .with_context(|| format!("copying {licence} into npm/"))?;
    }
    let dest = root.join("target/sdk");
    let out = Command::new("npm")
        .args(["pack", "--json", "--loglevel=error", "--pack-destination"])
        .arg(&dest)
        .current_dir(root.join("npm"))
        .output()
        .context("starting npm pack")?;
    if !out.status.success() {
        bail!("npm pack failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The JSON names the file: `"filename": "tallymark-0.1.0.tgz"`.
    let name = stdout
        .split("\"filename\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .context("npm pack printed no filename")?;
    let tarball = dest.join(name);
    // A stable name for the tests.
    std::fs::copy(&tarball, dest.join("tallymark.tgz"))?;
    Ok(tarball)
}
