//! Golden wire fixtures: every `fixtures/wire/NAME.json` body has its expected
//! outcome in `NAME.expected` — `ok` and the payload as the collector reads
//! it (v1, or a Plausible or Umami body translated into v1: `valid-plausible-*`,
//! `valid-umami-*`),
//! or `error` and the message a client gets. `valid-*` files must pass and
//! `invalid-*` files must fail. Regenerate after a deliberate change with
//! `UPDATE_GOLDEN=1 cargo test -p tallymark-core --test wire_golden`, and
//! review the diff.

use std::path::Path;

use tallymark_core::intake::{self, Incoming};

fn outcome(body: &[u8]) -> String {
    match intake::parse(body) {
        Ok(Incoming::Event {
            payload,
            other_sites,
        }) => {
            let json = serde_json::to_string_pretty(&payload).expect("payloads serialize");
            let others = if other_sites.is_empty() {
                String::new()
            } else {
                format!("other sites: {}\n", other_sites.join(", "))
            };
            format!("ok\n{json}\n{others}")
        }
        Ok(Incoming::Drop(reason)) => {
            format!(
                "ok\ndropped ({}): answered, nothing kept\n",
                reason.as_str()
            )
        }
        Err(e) => format!("error\n{e}\n"),
    }
}

#[test]
fn wire_fixtures_match_their_expected_outcomes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let got = outcome(&std::fs::read(&path).expect("fixture"));
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got).expect("write expected");
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{name}: no .expected file (run with UPDATE_GOLDEN=1)"));
        assert_eq!(got, want, "fixture {name}");
        let ok = got.starts_with("ok\n");
        if name.starts_with("valid-") {
            assert!(ok, "{name} must be accepted: {got}");
        } else {
            assert!(
                name.starts_with("invalid-"),
                "{name}: name must start with valid- or invalid-"
            );
            assert!(!ok, "{name} must be refused");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures found");
}
