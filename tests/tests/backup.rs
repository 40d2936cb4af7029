//! `tallymark backup` beside a running collector: a consistent copy without
//! the daily salts, which a collector restored from it answers the same
//! numbers from.

use std::process::Command;
use std::time::Duration;

use tallymark_e2e::{Collector, FIREFOX, SAFARI, bin, http_get, tallymark};

fn aggregate(c: &Collector, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, response) = http_get(
        c.port,
        "/api/v1/stats/aggregate?site=localhost&period=day&metrics=visitors,visits,pageviews,events",
        &[("Authorization", &auth)],
    )
    .expect("GET");
    assert_eq!(status, 200, "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).expect("JSON")
}

#[test]
fn a_backup_of_a_running_collector_restores_its_numbers_without_its_salts() {
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let c = Collector::serve(data, &[]);
    for i in 0..40 {
        let ua = if i % 2 == 0 { FIREFOX } else { SAFARI };
        let body =
            format!(r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/p{i}"}}"#);
        c.accept(ua, &body);
    }
    let dir = c.db_path().parent().unwrap().to_path_buf();
    let salts: Vec<Vec<Vec<u8>>> = c.query("SELECT salt FROM salts");
    assert!(!salts.is_empty(), "the live database has today's salt");

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("copy.sqlite3");
    let printed = tallymark(&["backup", out.to_str().unwrap(), "--data"], &dir);
    assert!(printed.contains("40 events"), "{printed}");
    // Nothing but the copy is left beside it.
    let names: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["copy.sqlite3"]);

    // Complete, intact, and without a salt (not even in free pages).
    let copy = rusqlite::Connection::open(&out).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let count = |sql: &str| -> i64 { copy.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events"), 40);
    assert_eq!(count("SELECT COUNT(*) FROM salts"), 0);
    // The same schema (tables, indexes) and version as the original.
    let schema = |conn: &rusqlite::Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let original = rusqlite::Connection::open_with_flags(
        c.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    assert_eq!(schema(&copy), schema(&original));
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&copy), version(&original));
    drop((copy, original));
    let bytes = std::fs::read(&out).unwrap();
    for salt in salts.iter().flatten() {
        assert!(
            !bytes.windows(salt.len()).any(|w| w == salt.as_slice()),
            "a salt is in the backup file"
        );
    }

    // Never over an existing file.
    let again = Command::new(bin())
        .args(["backup", out.to_str().unwrap(), "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // A directory, or a file in a directory that does not exist: one clear line.
    for (target, says) in [
        (out_dir.path().to_path_buf(), "is a directory"),
        (
            out_dir.path().join("nope/copy.sqlite3"),
            "No such file or directory",
        ),
    ] {
        let run = Command::new(bin())
            .arg("backup")
            .arg(&target)
            .arg("--data")
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "{err}");
    }

    // Restored into a new data directory, it answers what the original does.
    let token_a = tallymark(&["token", "create", "--data"], &dir);
    let before = aggregate(&c, token_a.trim());
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&out, restored.path().join("tallymark.sqlite3")).unwrap();
    let token_b = tallymark(&["token", "create", "--data"], restored.path());
    let r = Collector::serve(restored, &[]);
    let after = aggregate(&r, token_b.trim());
    assert_eq!(after["results"], before["results"]);
    assert_eq!(
        before["results"],
        serde_json::json!({"visitors": 2, "visits": 2, "pageviews": 40, "events": 40})
    );
    // And it goes on counting, with a new salt of its own.
    r.accept(
        FIREFOX,
        r#"{"kind":"pageview","site":"localhost","url":"http://localhost/after"}"#,
    );
    r.wait_for_count("SELECT COUNT(*) FROM events", 41, Duration::from_secs(5));
}
