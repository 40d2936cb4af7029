//! The npm package `tallymark` in real bundlers: a minimal Vite app and a
//! minimal webpack 5 app (tests/apps/), each copied to a temporary
//! directory, given the tarball `cargo xtask build-sdk` packed with
//! `npm pack`, built with no plugins, served, and loaded in Chromium. Both
//! must send a pageview and a custom event that land in SQLite.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tallymark_e2e::{Collector, browser, workspace_root};

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("app dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd:?} failed: {stdout}");
    stdout
}

fn app_sends_a_pageview_and_an_event(bundler: &str) {
    let root = workspace_root();
    let tarball = root.join("target/sdk/tallymark.tgz");
    assert!(
        tarball.exists(),
        "no {}: run `cargo xtask build-sdk` (or `cargo xtask test`)",
        tarball.display()
    );
    let app = tempfile::tempdir().expect("temp dir");
    copy_dir(&root.join("tests/apps").join(bundler), app.path());
    // Offline-friendly: the tarball has no dependencies.
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--loglevel=error",
        ])
        .arg(&tarball)
        .current_dir(app.path()));
    // What npm shows and what the licence asks to travel with the code.
    let installed = app.path().join("node_modules/tallymark");
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(installed.join(file).is_file(), "the package lacks {file}");
    }
    let built = run(Command::new("node")
        .arg(root.join("tests/browser/build-app.mjs"))
        .arg(bundler)
        .arg(app.path()));
    assert!(
        built.contains(".wasm"),
        "the wasm is an emitted asset: {built}"
    );

    let collector = Collector::start();
    let base = collector.url("");
    let dist = app.path().join("dist");
    let report = browser(
        "sdk.mjs",
        &["app", base.trim_end_matches('/'), &dist.to_string_lossy()],
    );
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["pageErrors"], json!([]), "{report}");
    assert_eq!(report["appText"].as_str().map(str::trim), Some("ready"));
    assert_eq!(
        report["blockedText"].as_str().map(str::trim),
        Some("off: false"),
        "init() says the beacon is off when its wasm cannot load: {report}"
    );
    assert_eq!(report["storage"]["localStorage"], 0);
    assert_eq!(report["storage"]["sessionStorage"], 0);
    assert_eq!(report["storage"]["indexedDB"], 0);
    assert_eq!(report["storage"]["cookie"], "");
    assert_eq!(report["cookies"], json!([]));

    let n = collector.wait_for_count("SELECT COUNT(*) FROM events", 2, Duration::from_secs(10));
    assert_eq!(n, 2, "{report}");
    let rows: Vec<Vec<Option<String>>> =
        collector.query("SELECT kind, name, path, props FROM events ORDER BY kind DESC");
    assert_eq!(
        rows[0][..3],
        [Some("pageview".into()), None, Some("/".into())]
    );
    assert_eq!(
        rows[1][..3],
        [
            Some("event".into()),
            Some("App Ready".into()),
            Some("/".into())
        ]
    );
    let props: serde_json::Value =
        serde_json::from_str(rows[1][3].as_deref().unwrap_or("null")).expect("props");
    assert_eq!(props, json!({"bundler": bundler, "n": 1}));
}

#[test]
fn vite_app_from_the_packed_tarball() {
    app_sends_a_pageview_and_an_event("vite");
}

#[test]
fn webpack5_app_from_the_packed_tarball() {
    app_sends_a_pageview_and_an_event("webpack");
}
