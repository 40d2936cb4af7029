//! The stats API through the real binary: tokens made with `tallymark token
//! create`, events sent over HTTP, numbers read back over HTTP.

use tallymark_e2e::{Collector, FIREFOX, SAFARI, http_get, tallymark, workspace_root};

fn body_json(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("no JSON ({e}) in {response}"))
}

fn get(c: &Collector, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, response) = http_get(c.port, path, &headers).expect("GET");
    (status, body_json(&response))
}

#[test]
fn tokens_from_the_cli_read_the_numbers_the_collector_recorded() {
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    tallymark(&["site", "add", "other.example", "--data"], data.path());
    let admin = tallymark(&["token", "create", "--data"], data.path());
    let admin = admin.trim().to_string();
    let share = tallymark(
        &[
            "token",
            "create",
            "--site",
            "localhost",
            "--share",
            "--data",
        ],
        data.path(),
    );
    let share = share.trim().to_string();
    assert!(admin.len() >= 32 && share.len() >= 32 && admin != share);

    let c = Collector::serve(data, &[]);
    // Two visitors (two User-Agents), three pageviews, one custom event.
    for (ua, body) in [
        (
            FIREFOX,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/"}"#,
        ),
        (
            FIREFOX,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/pricing"}"#,
        ),
        (
            SAFARI,
            r#"{"kind":"pageview","site":"localhost","url":"http://localhost/","referrer":"https://www.google.com/"}"#,
        ),
        (
            SAFARI,
            r#"{"kind":"event","name":"Signup","site":"localhost","url":"http://localhost/"}"#,
        ),
    ] {
        c.accept(ua, body);
    }

    let q = "/api/v1/stats/aggregate?site=localhost&period=day&metrics=visitors,visits,pageviews,events,bounce_rate";
    let (status, json) = get(&c, q, Some(&admin));
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 4, "bounce_rate": 0.0})
    );
    // The share token reads its own site, and only that one.
    let (status, same) = get(&c, q, Some(&share));
    assert_eq!((status, &same["results"]), (200, &json["results"]));
    let (status, json) = get(&c, &q.replace("localhost", "other.example"), Some(&share));
    assert_eq!(status, 403, "{json}");
    assert!(json["error"].is_string());
    let (status, json) = get(&c, q, None);
    assert_eq!(status, 401, "{json}");
    let (status, _) = get(&c, q, Some("not-a-token"));
    assert_eq!(status, 401);

    let (status, json) = get(
        &c,
        "/api/v1/stats/breakdown?site=localhost&period=day&property=source&metrics=visitors",
        Some(&admin),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"],
        serde_json::json!([
            {"value": "(none)", "visitors": 1},
            {"value": "Google", "visitors": 1},
        ])
    );

    // Revenue sent the way the SDK sends it comes back per currency.
    for amount in ["19.99", "0.01"] {
        let body = format!(
            r#"{{"kind":"event","name":"Purchase","site":"localhost","url":"http://localhost/checkout","revenue":{{"amount":{amount},"currency":"eur"}}}}"#
        );
        c.accept(SAFARI, &body);
    }
    let (status, json) = get(
        &c,
        "/api/v1/stats/aggregate?site=localhost&period=day&metrics=revenue&filter=source==Google",
        Some(&admin),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json["results"]["revenue"],
        serde_json::json!([{"currency": "EUR", "total": 20.0, "average": 10.0, "events": 2}])
    );

    // The OpenAPI document the binary serves describes what it answers:
    // every documented path works with its required parameters, and every
    // documented parameter is accepted.
    let (status, spec) = get(&c, "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let paths = spec["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 6, "{spec}");
    for (path, item) in paths {
        let params = item["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut query = Vec::new();
        for p in &params {
            match p["name"].as_str().unwrap_or_default() {
                "site" => query.push("site=localhost"),
                "property" => query.push("property=source"),
                "step" => query.push("step=page==/&step=event:name==Purchase"),
                _ => {}
            }
        }
        let uri = format!("{path}?{}", query.join("&"));
        let (status, json) = get(&c, &uri, Some(&admin));
        assert_eq!(status, 200, "{uri}: {json}");
        if query.is_empty() {
            // `/api/v1/sites`: both sites for the admin token.
            assert_eq!(json["sites"][0]["domain"], "localhost", "{uri}: {json}");
            assert_eq!(json["sites"][1]["domain"], "other.example", "{uri}: {json}");
        } else {
            assert_eq!(json["site"], "localhost", "{uri}: {json}");
        }
        let (status, json) = get(&c, &format!("{uri}&undocumented=1"), Some(&admin));
        assert_eq!(status, 400, "{uri}: {json}");
    }

    // A share token lists its one site.
    let (status, json) = get(&c, "/api/v1/sites", Some(&share));
    assert_eq!(status, 200, "{json}");
    let domains: Vec<_> = json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["domain"].clone())
        .collect();
    assert_eq!(domains, ["localhost"], "{json}");
    assert_eq!(
        json["sites"][0]["volume"]["dropped_percent"],
        serde_json::Value::Null
    );

    // `token list` names both (never their secrets); `token revoke` ends
    // the share token for the running collector at once.
    let dir = c.db_path().parent().unwrap().to_path_buf();
    let listed = tallymark(&["token", "list", "--data"], &dir);
    // A header line, then one line per token.
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed
            .lines()
            .nth(2)
            .unwrap_or_default()
            .contains("share  localhost"),
        "{listed}"
    );
    assert!(
        !listed.contains(&admin[3..]) && !listed.contains(&share[3..]),
        "{listed}"
    );
    tallymark(&["token", "revoke", &share, "--data"], &dir);
    let (status, _) = get(&c, "/api/v1/sites", Some(&share));
    assert_eq!(status, 401);
    let (status, _) = get(&c, "/api/v1/sites", Some(&admin));
    assert_eq!(status, 200);

    // Tokens are stored hashed: neither appears in any file of the data dir.
    let data = c.kill();
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for token in [&admin, &share] {
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        }
    }
}

/// A collector serving the site `localhost`, and an admin token for it.
fn serving_with_an_admin_token() -> (Collector, String) {
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let admin = tallymark(&["token", "create", "--data"], data.path());
    let admin = admin.trim().to_string();
    (Collector::serve(data, &[]), admin)
}

/// `tallymark import` with a folder of Plausible's CSV export: its days are
/// the site's before its first event here, answered by the running collector
/// (imported beside it); a second import adds nothing; a file that is not
/// the export's is refused with one line and nothing written.
#[test]
fn a_plausible_export_imported_from_the_cli_is_answered() {
    let (c, admin) = serving_with_an_admin_token();
    let export = tempfile::tempdir().unwrap();
    std::fs::write(
        export
            .path()
            .join("imported_visitors_20250601_20250602.csv"),
        "date,visitors,pageviews,bounces,visits,visit_duration\n\
         2025-06-01,40,90,10,50,5000\n\
         2025-06-02,20,30,5,25,1000\n",
    )
    .unwrap();
    std::fs::write(
        export.path().join("imported_sources_20250601_20250602.csv"),
        "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces\n\
         2025-06-01,DuckDuckGo,duckduckgo.com,,,,,,60,30,35,4000,5\n\
         2025-06-01,,,,,,,,30,10,15,1000,5\n\
         2025-06-02,DuckDuckGo,duckduckgo.com,,,,,,30,20,25,1000,5\n",
    )
    .unwrap();
    let dir = export.path().display().to_string();
    let out = tallymark(
        &["import", "--site", "localhost", &dir, "--data"],
        c.data.path(),
    );
    assert_eq!(
        out.trim(),
        "imported 2 days into localhost, 2025-06-01 to 2025-06-02 (sources, visitors)"
    );
    let range = "site=localhost&period=custom&from=2025-06-01&to=2025-06-02";
    let (status, a) = get(
        &c,
        &format!(
            "/api/v1/stats/aggregate?{range}&metrics=visitors,visits,pageviews,bounce_rate,visit_duration"
        ),
        Some(&admin),
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        a["results"],
        serde_json::json!({"visitors": 60, "visits": 75, "pageviews": 120,
                           "bounce_rate": 20.0, "visit_duration": 80}),
        "{a}"
    );
    let (_, b) = get(
        &c,
        &format!("/api/v1/stats/breakdown?{range}&property=channel&metrics=visitors"),
        Some(&admin),
    );
    assert_eq!(
        b["results"],
        serde_json::json!([{"value": "organic_search", "visitors": 50},
                           {"value": "direct", "visitors": 10}]),
        "{b}"
    );

    let again = tallymark(
        &["import", "--site", "localhost", &dir, "--data"],
        c.data.path(),
    );
    assert!(
        again.contains("imported no days")
            && again.contains("left out 2 days that hold events or imported data already"),
        "{again}"
    );
    let stray = export.path().join("notes.csv");
    std::fs::write(&stray, "date,visitors\n").unwrap();
    let refused = std::process::Command::new(tallymark_e2e::bin())
        .args(["import", "--site", "localhost"])
        .arg(&stray)
        .arg("--data")
        .arg(c.data.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not a file of Plausible's CSV export"),
        "{stderr}"
    );
}

/// Plausible's export names regions by ISO 3166-2 code and cities by
/// GeoNames id; with `serve`'s city database (`--geoip`), the import names
/// them as `serve` does, so one city is one row across the move.
#[test]
fn plausibles_regions_and_cities_are_named_from_the_city_database() {
    let city_db = workspace_root().join("target/test-data/GeoLite2-City.mmdb");
    assert!(city_db.exists(), "run `cargo xtask test-data`");
    let (c, admin) = serving_with_an_admin_token();
    let export = tempfile::tempdir().unwrap();
    std::fs::write(
        export
            .path()
            .join("imported_visitors_20250601_20250601.csv"),
        "date,visitors,pageviews,bounces,visits,visit_duration\n\
         2025-06-01,12,30,4,14,5000\n",
    )
    .unwrap();
    // 2925034: Freising (Bavaria), 2935022: Dresden (Saxony); a code the
    // database does not know, and a visit with no region or city.
    std::fs::write(
        export
            .path()
            .join("imported_locations_20250601_20250601.csv"),
        "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews\n\
         2025-06-01,DE,DE-BY,2925034,6,7,2000,2,15\n\
         2025-06-01,DE,DE-SN,2935022,3,3,1000,1,6\n\
         2025-06-01,FR,FR-XX,0,1,1,0,1,1\n",
    )
    .unwrap();
    let dir = export.path().display().to_string();
    let started = std::time::Instant::now();
    let out = tallymark(
        &[
            "import",
            "--site",
            "localhost",
            "--geoip",
            city_db.to_str().unwrap(),
            &dir,
            "--data",
        ],
        c.data.path(),
    );
    eprintln!("import with the city database: {:?}", started.elapsed());
    let named: Vec<usize> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        named.len() == 2 && named[0] > 1000 && named[1] > 10000,
        "{out}"
    );
    let range = "site=localhost&period=day&date=2025-06-01";
    let wants = [
        (
            "region",
            serde_json::json!([
                {"value": "DE Bavaria", "visitors": 6, "visits": 7},
                {"value": "(none)", "visitors": 3, "visits": 4},
                {"value": "DE Saxony", "visitors": 3, "visits": 3},
            ]),
        ),
        (
            "city",
            serde_json::json!([
                {"value": "DE Freising, Bavaria", "visitors": 6, "visits": 7},
                {"value": "(none)", "visitors": 3, "visits": 4},
                {"value": "DE Dresden, Saxony", "visitors": 3, "visits": 3},
            ]),
        ),
    ];
    assert_breakdowns(&c, &admin, range, "visitors,visits", &wants);
}

/// `tallymark import` with GoatCounter's CSV export, gzipped as GoatCounter
/// hands it out (today's format: browser and OS names, no User-Agent):
/// its pageviews and events become the site's visits, answered by the
/// running collector beside which it was imported; bots are left out, its
/// `US-TX` regions named from the city database; a second import adds
/// nothing; Plausible's and GoatCounter's files are not mixed.
#[test]
fn a_goatcounter_export_imported_from_the_cli_is_answered() {
    use std::io::Write;
    let city_db = workspace_root().join("target/test-data/GeoLite2-City.mmdb");
    assert!(city_db.exists(), "run `cargo xtask test-data`");
    let (c, admin) = serving_with_an_admin_token();
    let export = tempfile::tempdir().unwrap();
    let csv = "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date\n\
        /,Home,0,,Firefox 120,Windows 10,1a2b-3c,0,duckduckgo.com,h,\"1920,0,1\",US-TX,1,2025-06-01T10:00:00Z\n\
        /docs,Docs,0,,Firefox 120,Windows 10,1a2b-3c,0,,o,\"1920,0,1\",US-TX,0,2025-06-01T10:03:00Z\n\
        download-pdf,PDF,1,,Firefox 120,Windows 10,1a2b-3c,0,,o,\"1920,0,1\",US-TX,0,2025-06-01T10:04:00Z\n\
        /,Home,0,,Safari 17.1,iOS 17.1,4d5e-6f,0,Hacker News,g,\"390,0,1\",DE-BY,1,2025-06-01T12:00:00Z\n\
        /,Home,0,,Chrome 120,Linux,7a8b-9c,1,,o,,NL,1,2025-06-01T12:30:00Z\n\
        /docs,Docs,0,,Safari 17.1,iOS 17.1,4d5e-6f,0,,o,\"390,0,1\",DE-BY,0,2025-06-01T13:00:00Z\n";
    let file = export.path().join("goatcounter-export-localhost.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    let path = file.display().to_string();
    let args = [
        "import",
        "--site",
        "localhost",
        "--geoip",
        city_db.to_str().unwrap(),
        &path,
        "--data",
    ];
    let out = tallymark(&args, c.data.path());
    assert!(
        out.contains("6 rows, 1 marked as bots (left out), 0 unreadable")
            && out.contains(
                "imported 3 visits (4 pageviews, 1 custom events) on 1 days into localhost, \
                 2025-06-01 to 2025-06-01"
            ),
        "{out}"
    );
    let range = "site=localhost&period=day&date=2025-06-01";
    let (status, a) = get(
        &c,
        &format!(
            "/api/v1/stats/aggregate?{range}&metrics=visitors,visits,pageviews,events,bounce_rate,visit_duration"
        ),
        Some(&admin),
    );
    assert_eq!(status, 200, "{a}");
    // One visitor of three pages and an event in 4 minutes; one of two
    // visits an hour apart, a page each (bounces).
    assert_eq!(
        a["results"],
        serde_json::json!({"visitors": 2, "visits": 3, "pageviews": 4, "events": 5,
                           "bounce_rate": 66.7, "visit_duration": 80}),
        "{a}"
    );
    let wants = [
        (
            "source",
            // The second visit came with no referrer.
            serde_json::json!([{"value": "(none)", "visitors": 1},
                               {"value": "DuckDuckGo", "visitors": 1},
                               {"value": "Hacker News", "visitors": 1}]),
        ),
        (
            "region",
            serde_json::json!([{"value": "DE Bavaria", "visitors": 1},
                               {"value": "US Texas", "visitors": 1}]),
        ),
        (
            "device",
            serde_json::json!([{"value": "desktop", "visitors": 1},
                               {"value": "mobile", "visitors": 1}]),
        ),
        (
            "event:name",
            serde_json::json!([{"value": "download-pdf", "visitors": 1}]),
        ),
    ];
    assert_breakdowns(&c, &admin, range, "visitors", &wants);
    // Raw rows: two filters and hours.
    let (_, t) = get(
        &c,
        &format!(
            "/api/v1/stats/aggregate?{range}&metrics=pageviews&filter=os%3D%3Dios&filter=page%3D%3D/docs"
        ),
        Some(&admin),
    );
    assert_eq!(t["results"]["pageviews"], 1, "{t}");

    let again = tallymark(&args, c.data.path());
    assert!(
        again.contains("imported nothing into localhost")
            && again.contains("left out 5 rows of days that hold events or imported data already"),
        "{again}"
    );
    // The same export twice, gzipped and not: refused, nothing written.
    let plain = export.path().join("goatcounter-export-localhost.csv");
    std::fs::write(&plain, csv).unwrap();
    let twice = std::process::Command::new(tallymark_e2e::bin())
        .args(["import", "--site", "localhost"])
        .arg(&file)
        .arg(&plain)
        .arg("--data")
        .arg(c.data.path())
        .output()
        .unwrap();
    assert!(!twice.status.success());
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(stderr.contains("holds the same rows as"), "{stderr}");
    let plausible = export
        .path()
        .join("imported_visitors_20250501_20250501.csv");
    std::fs::write(
        &plausible,
        "date,visitors,pageviews,bounces,visits,visit_duration\n2025-05-01,1,1,1,1,0\n",
    )
    .unwrap();
    let mixed = std::process::Command::new(tallymark_e2e::bin())
        .args(["import", "--site", "localhost"])
        .arg(&file)
        .arg(&plausible)
        .arg("--data")
        .arg(c.data.path())
        .output()
        .unwrap();
    assert!(!mixed.status.success());
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert!(
        stderr.contains("one tool's export in one import"),
        "{stderr}"
    );
}

/// A GoatCounter import of 340,000 rows, 300,000 of them on one day, writes
/// beside a running `serve` that takes events all the while: every event
/// sent meanwhile is answered `202` and stored (the writer waits its turn
/// for the import's transactions instead of failing, and the big day is
/// written in parts short enough for that wait), and the import's rows are
/// all there.
#[test]
fn serve_takes_events_while_an_import_writes() {
    let (c, admin) = serving_with_an_admin_token();
    let export = tempfile::tempdir().unwrap();
    let mut csv = String::from(
        "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,Screen size,Location,FirstVisit,Date\n",
    );
    let start: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let mut rows = 0;
    let mut add = |day: i64, session: usize, minute: usize, first: bool| {
        let at = start
            + jiff::SignedDuration::from_hours(24 * day)
            + jiff::SignedDuration::from_secs(minute as i64 * 60);
        csv.push_str(&format!(
            "/page-{},T,0,,Firefox 133,Linux,{day:x}-{session:x},0,,o,\"1920,0,1\",DE,{},{}\n",
            rows % 40,
            u8::from(first),
            at.strftime("%Y-%m-%dT%H:%M:%SZ")
        ));
        rows += 1;
    };
    // 250 visitors a day for 80 days, two pages a minute apart. (Sessions
    // from 1: `0-0` is GoatCounter's "no session", a visitor per row.)
    for day in 0..80 {
        for visitor in 0..250 {
            for hit in 0..2 {
                add(day, visitor + 1, visitor * 3 + hit, hit == 0);
            }
        }
    }
    // Then a big day: 100,000 visitors of three pages, over the day (one
    // transaction for it held the database longer than `serve` waits).
    for visitor in 0..100_000 {
        for hit in 0..3 {
            add(80, visitor + 1, visitor * 1_400 / 100_000 + hit, hit == 0);
        }
    }
    let file = export.path().join("goatcounter-export-big.csv");
    std::fs::write(&file, csv).unwrap();
    let mut import = std::process::Command::new(tallymark_e2e::bin())
        .args(["import", "--site", "localhost"])
        .arg(&file)
        .arg("--data")
        .arg(c.data.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut sent, mut during) = (0, 0);
    let mut statuses = std::collections::BTreeMap::new();
    loop {
        let running = import.try_wait().unwrap().is_none();
        let body = format!(
            r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/live-{sent}"}}"#
        );
        let status = c
            .post("/api/event", &body, &[("User-Agent", FIREFOX)])
            .map_or(0, |(s, _)| s);
        *statuses.entry(status).or_insert(0) += 1;
        sent += 1;
        if running {
            during += 1;
        } else {
            break;
        }
    }
    let out = import.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(statuses.keys().collect::<Vec<_>>(), [&202], "{statuses:?}");
    assert!(
        during >= 10,
        "only {during} events were sent during the import"
    );
    eprintln!("{during} events sent while the import wrote");
    let live = c.wait_for_count(
        "SELECT COUNT(*) FROM events WHERE path LIKE '/live-%'",
        sent,
        std::time::Duration::from_secs(10),
    );
    assert_eq!(live, sent);
    let (_, a) = get(
        &c,
        "/api/v1/stats/aggregate?site=localhost&period=custom&from=2025-01-01&to=2025-03-31&metrics=pageviews,visits,visitors",
        Some(&admin),
    );
    assert_eq!(
        a["results"],
        serde_json::json!({"pageviews": rows, "visits": 120_000, "visitors": 120_000}),
        "{a}"
    );
}

/// `tallymark import` with Umami's rows (`website_event` joined with
/// `session`, gzipped): page views and events of the site's host become its
/// visits, Umami's link events and another host's rows are left out, and
/// the report says so.
#[test]
fn an_umami_export_imported_from_the_cli_is_answered() {
    use std::io::Write;
    let (c, admin) = serving_with_an_admin_token();
    let export = tempfile::tempdir().unwrap();
    let csv = "event_id,website_id,session_id,visit_id,created_at,url_path,url_query,referrer_path,referrer_query,referrer_domain,page_title,event_type,event_name,hostname,browser,os,device,screen,language,country,region,city,distinct_id,event_data\n\
        e1,w,s-1,v,2025-06-01 10:00:00+00,/,utm_source=newsletter&utm_medium=email,,,,Home,1,,localhost,firefox,Linux,desktop,1920x1080,en,DE,DE-BY,Munich,\n\
        e2,w,s-1,v,2025-06-01 10:02:00+00,/docs,,/,,localhost,Docs,1,,localhost,firefox,Linux,desktop,1920x1080,en,DE,DE-BY,Munich,\n\
        e3,w,s-1,v,2025-06-01 10:03:00+00,/docs,,,,,Docs,2,signup,localhost,firefox,Linux,desktop,1920x1080,en,DE,DE-BY,Munich,user-7,\"{\"\"plan\"\": \"\"pro\"\", \"\"revenue\"\": 19.9900, \"\"currency\"\": \"\"EUR\"\"}\"\n\
        e4,w,s-2,v,2025-06-01 12:00:00+00,/,,,,duckduckgo.com,Home,1,,localhost,ios,iOS,mobile,390x844,fr,FR,,Paris,\n\
        e5,w,s-2,v,2025-06-01 12:01:00+00,/go,,,,,,3,,localhost,ios,iOS,mobile,390x844,fr,FR,,Paris,\n\
        e6,w,s-3,v,2025-06-01 12:01:00+00,/,,,,,,1,,staging.other.example,chrome,Windows 10,desktop,,en,US,,,\n";
    let file = export.path().join("umami.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(&file, gz.finish().unwrap()).unwrap();
    let path = file.display().to_string();
    let out = tallymark(
        &["import", "--site", "localhost", &path, "--data"],
        c.data.path(),
    );
    assert!(
        out.contains("6 rows, 1 link, pixel or performance events (left out), 1 unreadable")
            && out.contains("is not localhost's")
            && out.contains(
                "imported 2 visits (3 pageviews, 1 custom events) on 1 days into localhost"
            ),
        "{out}"
    );
    let range = "site=localhost&period=day&date=2025-06-01";
    let (_, a) = get(
        &c,
        &format!("/api/v1/stats/aggregate?{range}&metrics=visitors,visits,pageviews,bounce_rate"),
        Some(&admin),
    );
    assert_eq!(
        a["results"],
        serde_json::json!({"visitors": 2, "visits": 2, "pageviews": 3, "bounce_rate": 50.0}),
        "{a}"
    );
    let wants = [
        (
            "channel",
            serde_json::json!([{"value": "email", "visitors": 1},
                               {"value": "organic_search", "visitors": 1}]),
        ),
        (
            "city",
            serde_json::json!([{"value": "DE Munich", "visitors": 1},
                               {"value": "FR Paris", "visitors": 1}]),
        ),
        (
            "event:name",
            serde_json::json!([{"value": "signup", "visitors": 1}]),
        ),
    ];
    assert_breakdowns(&c, &admin, range, "visitors", &wants);
    // The event's data: a prop and its revenue.
    let (_, p) = get(
        &c,
        &format!(
            "/api/v1/stats/breakdown?{range}&property=event:props:plan&metrics=events,revenue"
        ),
        Some(&admin),
    );
    assert_eq!(
        p["results"],
        serde_json::json!([{"value": "pro", "events": 1,
            "revenue": [{"currency": "EUR", "total": 19.99, "average": 19.99, "events": 1}]}]),
        "{p}"
    );
    // The data set's user id is nowhere.
    let data = c.kill();
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"user-7"));
    }
}

/// Each `(property, want)`: the breakdown of `range` by it, with
/// `metrics`, is `want`.
fn assert_breakdowns(
    c: &Collector,
    admin: &str,
    range: &str,
    metrics: &str,
    wants: &[(&str, serde_json::Value)],
) {
    for (property, want) in wants {
        let (status, b) = get(
            c,
            &format!("/api/v1/stats/breakdown?{range}&property={property}&metrics={metrics}"),
            Some(admin),
        );
        assert_eq!(status, 200, "{b}");
        assert_eq!(&b["results"], want, "{property}: {b}");
    }
}
