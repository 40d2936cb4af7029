//! Embeds the built browser SDK (script-tag bundle) into the binary, so one
//! file serves `/js/tallymark.js`. `cargo xtask` builds the SDK first; a
//! binary built without it answers 404 on `/js/*` saying so.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let dist = manifest.join("../npm/dist");
    let files = [
        "script/tallymark.js",
        "script/tallymark.wasm",
        // gzip and brotli copies (xtask compresses once, at the best levels).
        "encoded/tallymark.js.gz",
        "encoded/tallymark.js.br",
        "encoded/tallymark.wasm.gz",
        "encoded/tallymark.wasm.br",
    ];
    for file in files {
        let src = dist.join(file);
        let name = file.rsplit('/').next().unwrap_or(file);
        let bytes = std::fs::read(&src).unwrap_or_default();
        if let Err(e) = std::fs::write(out.join(name), bytes) {
            panic!("writing {name} into OUT_DIR: {e}");
        }
        println!("cargo::rerun-if-changed={}", src.display());
    }
}
