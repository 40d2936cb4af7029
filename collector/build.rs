//! Embeds the built browser SDK (script-tag bundle) into the binary, so one
//! file serves `/js/tallymark.js`. `cargo xtask` builds the SDK first; a
//! binary built without it answers 404 on `/js/*` saying so.
//!
//! Next to each file, its gzip and brotli copies (xtask compresses once, at
//! the best levels), but only if `encoded/<file>.source` names exactly the
//! file's bytes: otherwise (a build stopped half-way) empty copies, and the
//! collector serves the file uncompressed rather than an older version.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let dist = manifest.join("../npm/dist");
    for name in ["tallymark.js", "tallymark.wasm"] {
        let file = read(&dist.join("script").join(name));
        let encoded = dist.join("encoded");
        let source = read(&encoded.join(format!("{name}.source")));
        let fresh = !file.is_empty() && source == content_hash(&file).as_bytes();
        if !file.is_empty() && !fresh {
            println!(
                "cargo::warning=no compressed copies of {name} for this build: served uncompressed"
            );
        }
        write(&out.join(name), &file);
        for ext in ["gz", "br"] {
            let copy = format!("{name}.{ext}");
            let bytes = if fresh {
                read(&encoded.join(&copy))
            } else {
                Vec::new()
            };
            write(&out.join(copy), &bytes);
        }
    }
}

/// The file's bytes, empty if missing; cargo reruns this when it changes.
fn read(path: &Path) -> Vec<u8> {
    println!("cargo::rerun-if-changed={}", path.display());
    std::fs::read(path).unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        panic!("writing {} into OUT_DIR: {e}", path.display());
    }
}

/// FNV-1a, 16 hex digits: as xtask's `content_hash` (xtask/src/sdk.rs).
fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
