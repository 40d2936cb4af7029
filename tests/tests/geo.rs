//! Country lookup with a real MaxMind-format database (ip-location-db's CC0
//! country file, installed from npm by `cargo xtask test`), and a trusted
//! proxy's `CF-IPCountry`.

use tallymark_e2e::{Collector, FIREFOX, workspace_root};

fn pageview(path: &str) -> String {
    format!(r#"{{"kind":"pageview","site":"localhost","url":"http://localhost{path}"}}"#)
}

#[test]
fn countries_come_from_the_database_or_a_trusted_proxy_header() {
    let mmdb = workspace_root()
        .join("tests/data/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb");
    assert!(
        mmdb.exists(),
        "{} missing: run `cargo xtask test`",
        mmdb.display()
    );
    let collector = Collector::start_with(&[
        "--geoip",
        mmdb.to_str().unwrap(),
        "--trusted-proxies",
        "127.0.0.1",
    ]);
    let cases = [
        ("/us", "8.8.8.8", None),
        ("/nl", "193.0.0.1", None),
        ("/nl-v6", "2001:67c:2e8::2", None),
        ("/cf", "8.8.8.8", Some("JP")),
        ("/private", "10.1.2.3", None),
    ];
    for (path, ip, cf) in cases {
        let mut headers = vec![("User-Agent", FIREFOX), ("X-Forwarded-For", ip)];
        if let Some(c) = cf {
            headers.push(("CF-IPCountry", c));
        }
        // A distinct UA per case: each case is its own visitor and session.
        let ua = format!("{FIREFOX} case{path}");
        headers[0] = ("User-Agent", &ua);
        let (status, head) = collector
            .post("/api/event", &pageview(path), &headers)
            .unwrap();
        assert_eq!(status, 202, "{head}");
    }
    let rows: Vec<Vec<Option<String>>> =
        collector.query("SELECT path, country FROM events ORDER BY id");
    let got: Vec<(String, Option<String>)> = rows
        .into_iter()
        .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone()))
        .collect();
    let want = [
        ("/us", Some("US")),
        ("/nl", Some("NL")),
        ("/nl-v6", Some("NL")),
        ("/cf", Some("JP")),
        ("/private", None),
    ];
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(p, c)| (p.to_string(), c.map(str::to_string)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_country_header_from_an_untrusted_peer_is_ignored() {
    let collector = Collector::start();
    let (status, _) = collector
        .post(
            "/api/event",
            &pageview("/"),
            &[("User-Agent", FIREFOX), ("CF-IPCountry", "JP")],
        )
        .unwrap();
    assert_eq!(status, 202);
    let rows: Vec<Vec<Option<String>>> = collector.query("SELECT country FROM events");
    assert_eq!(rows, vec![vec![None]]);
}
