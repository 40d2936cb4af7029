//! The stats API over a fixed, hand-checkable data set (see
//! `fixtures/stats/dataset.rs`), ingested through the real `POST /api/event`
//! path with a manual clock. Every expected number below was derived by hand
//! from the tables in that file, not from the code's output.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tallymark_collector::clock::ManualClock;
use tallymark_collector::config::Config;
use tallymark_collector::stats::auth::{self, TokenKind};
use tallymark_collector::{AppState, app, sites, store};
use tower::ServiceExt;

#[path = "fixtures/stats/dataset.rs"]
#[allow(dead_code)]
mod dataset;

use dataset::{BEACONS, BERLIN, Beacon, SHOP, SHOP_BEACONS, UTC_SITE, VISITORS};

/// The reverse proxy every beacon comes through (trusted, so its
/// X-Forwarded-For and CF-IPCountry are believed).
const PROXY: &str = "10.0.0.1:443";

struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
    clock: Arc<ManualClock>,
    admin: String,
    share_utc: String,
}

impl Harness {
    fn router(&self) -> Router {
        app(self.state.clone()).layer(MockConnectInfo(PROXY.parse::<SocketAddr>().unwrap()))
    }

    async fn request(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::get(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = self
            .router()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        assert!(!status.is_server_error(), "{uri}: {status}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json)
    }

    /// A `200` answer's JSON.
    async fn get(&self, uri: &str) -> Value {
        let (status, json) = self.request(uri, Some(&self.admin)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        json
    }

    /// POSTs `body` as JSON with the admin token.
    async fn post_json(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin));
        let resp = self
            .router()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        assert!(!status.is_server_error(), "{uri}: {status}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A `400` answer's error message.
    async fn bad(&self, uri: &str) -> String {
        let (status, json) = self.request(uri, Some(&self.admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        json["error"].as_str().unwrap_or_default().to_string()
    }
}

/// Sites, tokens and the whole data set, ingested beacon by beacon.
async fn harness() -> Harness {
    harness_with(&[(BERLIN, "Europe/Berlin"), (UTC_SITE, "UTC")], &BEACONS).await
}

/// A collector with `sites` (domain, timezone; the last gets the share
/// token) that has ingested `beacons`.
async fn harness_with(sites: &[(&str, &str)], beacons: &[Beacon]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data: dir.path().to_path_buf(),
        trusted_proxies: "10.0.0.0/8".parse().unwrap(),
        ..Config::default()
    };
    let conn = store::schema::open(&cfg.db_path()).unwrap();
    let mut last = None;
    for (domain, tz) in sites {
        last = Some(sites::add(&conn, domain, tz, 0).unwrap());
    }
    let admin = auth::create(&conn, TokenKind::Admin, None, 0).unwrap();
    let share_utc = auth::create(&conn, TokenKind::Share, last.map(|s| s.id), 0).unwrap();
    drop(conn);
    let clock = Arc::new(ManualClock::new("2026-03-28T00:00:00Z".parse().unwrap()));
    let state = AppState::open(cfg, clock.clone()).unwrap();
    let h = Harness {
        _dir: dir,
        state,
        clock,
        admin,
        share_utc,
    };
    for (i, beacon) in beacons.iter().enumerate() {
        h.clock.set(beacon.at.parse().unwrap());
        let v = &VISITORS[beacon.visitor];
        let req = Request::post("/api/event")
            .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .header(header::USER_AGENT, v.user_agent)
            .header("x-forwarded-for", v.ip)
            .header("cf-ipcountry", v.country)
            .body(Body::from(beacon.body))
            .unwrap();
        let resp = h.router().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "beacon {}", i + 1);
        assert!(
            resp.headers().get("x-tallymark-dropped").is_none(),
            "beacon {}",
            i + 1
        );
    }
    h
}

const ALL5: &str = "visitors,visits,pageviews,events,bounce_rate";

/// The row of `value` in a native breakdown's answer (`Null` if none).
fn row_of(breakdown: &Value, value: &str) -> Value {
    breakdown["results"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["value"] == value))
        .cloned()
        .unwrap_or_default()
}
const MAR: &str = "period=custom&from=2026-03-28&to=2026-03-30";

fn agg(site: &str, query: &str) -> String {
    format!("/api/v1/stats/aggregate?site={site}&{query}")
}

#[tokio::test]
async fn aggregate_per_local_day_including_the_23_hour_dst_day() {
    let h = harness().await;
    let all = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";
    let cases = [
        // 03-28: ids a, b; beacons 1-4; S1 (300 s), S2 (1200 s).
        (
            "2026-03-28",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "views_per_visit": 2.0, "bounce_rate": 0.0, "visit_duration": 750, "events": 4}),
        ),
        // 03-29 (23 h): ids b (beacon 5, after midnight), c, d, e; S3, S4, S5.
        (
            "2026-03-29",
            json!({"visitors": 4, "visits": 3, "pageviews": 4, "views_per_visit": 1.33, "bounce_rate": 33.3, "visit_duration": 140, "events": 5}),
        ),
        // 03-30: e (beacon 11, after midnight), f; S6.
        (
            "2026-03-30",
            json!({"visitors": 2, "visits": 1, "pageviews": 2, "views_per_visit": 1.0, "bounce_rate": 100.0, "visit_duration": 0, "events": 2}),
        ),
        (
            "2026-03-31",
            json!({"visitors": 0, "visits": 0, "pageviews": 0, "views_per_visit": 0.0, "bounce_rate": 0.0, "visit_duration": 0, "events": 0}),
        ),
    ];
    for (day, want) in cases {
        let r = h
            .get(&agg(
                BERLIN,
                &format!("period=day&date={day}&metrics={all}"),
            ))
            .await;
        assert_eq!(r["results"], want, "{day}");
        assert_eq!(r["period"]["from"], day);
        assert_eq!(r["period"]["timezone"], "Europe/Berlin");
    }
    let r = h.get(&agg(BERLIN, "period=day&date=2026-03-29")).await;
    assert_eq!(
        r["period"]["start"], "2026-03-28T23:00:00Z",
        "Berlin midnight in CET"
    );
    assert_eq!(
        r["period"]["end"], "2026-03-29T22:00:00Z",
        "next midnight in CEST: 23 h"
    );
    assert_eq!(r["results"]["visitors"], 4, "default metrics: all");
}

#[tokio::test]
async fn multi_day_visitors_are_distinct_daily_ids() {
    let h = harness().await;
    // 2 + 4 + 2 daily visitors, but the ids b and e span two days: 6.
    let r = h.get(&agg(BERLIN, &format!("{MAR}&metrics=visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events"))).await;
    assert_eq!(
        r["results"],
        json!({"visitors": 6, "visits": 6, "pageviews": 9, "views_per_visit": 1.5, "bounce_rate": 33.3, "visit_duration": 320, "events": 11})
    );
    // month = March; 30d ending 03-29 = 02-28..03-29 (ids a..e).
    let r = h
        .get(&agg(
            BERLIN,
            "period=month&date=2026-03-15&metrics=visitors,pageviews",
        ))
        .await;
    assert_eq!(r["results"], json!({"visitors": 6, "pageviews": 9}));
    let r = h
        .get(&agg(
            BERLIN,
            "period=30d&date=2026-03-29&metrics=visitors,pageviews",
        ))
        .await;
    assert_eq!(r["results"], json!({"visitors": 5, "pageviews": 7}));
    assert_eq!(r["period"]["from"], "2026-02-28");
    // 7d ending 03-29: 03-23..03-29.
    let r = h
        .get(&agg(BERLIN, "period=7d&date=2026-03-29&metrics=visitors"))
        .await;
    assert_eq!(r["results"], json!({"visitors": 5}));
    let r = h
        .get(&agg(
            BERLIN,
            "period=year&date=2026-06-01&metrics=visitors,visits",
        ))
        .await;
    assert_eq!(r["results"], json!({"visitors": 8, "visits": 8}));
    // The other site is separate: only beacon 9.
    let r = h
        .get(&agg(
            UTC_SITE,
            "period=day&date=2026-03-29&metrics=visitors,pageviews",
        ))
        .await;
    assert_eq!(r["results"], json!({"visitors": 1, "pageviews": 1}));
}

#[tokio::test]
async fn compare_with_the_previous_period() {
    let h = harness().await;
    let r = h
        .get(&agg(BERLIN, "period=day&date=2026-03-29&compare=previous_period&metrics=visitors,visits,pageviews,events,views_per_visit,bounce_rate,visit_duration")
        )
        .await;
    let c = &r["comparison"];
    assert_eq!(c["period"]["from"], "2026-03-28");
    assert_eq!(c["results"]["visitors"], 2);
    // Changes come from exact values: views per visit 4/3 against 2 is
    // −33.3 %, not the −33.5 % of the rounded 1.33.
    assert_eq!(
        c["change"],
        json!({"visitors": 100.0, "visits": 50.0, "pageviews": 33.3, "events": 25.0,
               "views_per_visit": -33.3, "bounce_rate": null, "visit_duration": -81.3})
    );
    // 7d before 03-24..03-30 is 03-17..03-23: empty, so changes are null.
    let r = h
        .get(&agg(
            BERLIN,
            "period=7d&date=2026-03-30&compare=previous_period&metrics=visitors",
        ))
        .await;
    assert_eq!(r["comparison"]["period"]["from"], "2026-03-17");
    assert_eq!(r["comparison"]["period"]["to"], "2026-03-23");
    assert_eq!(r["comparison"]["change"], json!({"visitors": null}));
    // month: the previous calendar month.
    let r = h
        .get(&agg(
            BERLIN,
            "period=month&date=2026-03-10&compare=previous_period&metrics=visitors",
        ))
        .await;
    assert_eq!(r["comparison"]["period"]["from"], "2026-02-01");
    assert_eq!(r["comparison"]["period"]["to"], "2026-02-28");
    assert!(
        h.get(&agg(BERLIN, "period=day"))
            .await
            .get("comparison")
            .is_none()
    );
}

#[tokio::test]
async fn filters_on_every_kind_of_dimension() {
    let h = harness().await;
    let cases: &[(&str, Value)] = &[
        (
            "source==Google",
            json!({"visitors": 2, "visits": 2, "pageviews": 4, "events": 5, "bounce_rate": 0.0}),
        ),
        (
            "source!=Google",
            json!({"visitors": 4, "visits": 4, "pageviews": 5, "events": 6, "bounce_rate": 50.0}),
        ),
        (
            "source==(none)",
            json!({"visitors": 1, "visits": 1, "pageviews": 1, "events": 1, "bounce_rate": 100.0}),
        ),
        (
            "source!=(none)",
            json!({"visitors": 5, "visits": 5, "pageviews": 8, "events": 10, "bounce_rate": 20.0}),
        ),
        // Any of several values: Google's 2 visits and the direct one (every
        // visitor here has one visit, so the sums add up), and the others.
        (
            "source==Google|(none)",
            json!({"visitors": 3, "visits": 3, "pageviews": 5, "events": 6, "bounce_rate": 33.3}),
        ),
        (
            "source!=Google|(none)",
            json!({"visitors": 3, "visits": 3, "pageviews": 4, "events": 5, "bounce_rate": 33.3}),
        ),
        (
            "page==/pricing",
            json!({"visitors": 2, "visits": 2, "pageviews": 2, "events": 3, "bounce_rate": 0.0}),
        ),
        (
            "page~BLOG",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0}),
        ),
        // Wildcards: `*` any run of characters, case-sensitive as `==`.
        (
            "page==/blog/*",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0}),
        ),
        (
            "page==/BLOG/*",
            json!({"visitors": 0, "visits": 0, "pageviews": 0, "events": 0, "bounce_rate": 0.0}),
        ),
        (
            // Visits with an event off the blog: S1, S3, S4, S5.
            "page!=/blog/*",
            json!({"visitors": 4, "visits": 4, "pageviews": 6, "events": 8, "bounce_rate": 25.0}),
        ),
        (
            // Visits with a page view other than / (S1, S2, S5, S6).
            "page!=/",
            json!({"visitors": 4, "visits": 4, "pageviews": 5, "events": 6, "bounce_rate": 25.0}),
        ),
        (
            "entry_page==/blog/a",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0}),
        ),
        (
            "exit_page==/",
            json!({"visitors": 3, "visits": 3, "pageviews": 4, "events": 5, "bounce_rate": 33.3}),
        ),
        (
            "event:name==Signup",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "event:props:plan==pro",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "event:props:seats==3",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "event:props:annual==true",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "event:props:Plan Name==Gold",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "event:props:file~PDF",
            json!({"visitors": 1, "visits": 1, "pageviews": 0, "events": 1, "bounce_rate": 0.0}),
        ),
        (
            "browser~SAF",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0}),
        ),
        (
            "referrer==news.ycombinator.com",
            json!({"visitors": 1, "visits": 1, "pageviews": 2, "events": 2, "bounce_rate": 0.0}),
        ),
        (
            "utm_campaign==spring",
            json!({"visitors": 1, "visits": 1, "pageviews": 1, "events": 2, "bounce_rate": 0.0}),
        ),
        (
            "os==ios",
            json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0}),
        ),
        (
            "channel==organic_search",
            json!({"visitors": 3, "visits": 3, "pageviews": 5, "events": 6, "bounce_rate": 33.3}),
        ),
        (
            "country==US",
            json!({"visitors": 1, "visits": 1, "pageviews": 2, "events": 2, "bounce_rate": 0.0}),
        ),
        (
            "country==ZZ",
            json!({"visitors": 0, "visits": 0, "pageviews": 0, "events": 0, "bounce_rate": 0.0}),
        ),
    ];
    for (filter, want) in cases {
        let q = format!("{MAR}&metrics={ALL5}&filter={}", urlencode(filter));
        let r = h.get(&agg(BERLIN, &q)).await;
        assert_eq!(&r["results"], want, "filter {filter}");
    }
    let combos: &[(&[&str], Value)] = &[
        (
            &["country==DE", "device==desktop"],
            json!({"visitors": 3, "visits": 3, "pageviews": 4, "events": 6, "bounce_rate": 33.3}),
        ),
        (
            &["utm_medium==email", "channel==email"],
            json!({"visitors": 1, "visits": 1, "pageviews": 1, "events": 2, "bounce_rate": 0.0}),
        ),
        (
            &["source==Google", "page==/"],
            json!({"visitors": 2, "visits": 2, "pageviews": 2, "events": 2, "bounce_rate": 0.0}),
        ),
        (
            &["device==mobile", "page!=/blog/b"],
            json!({"visitors": 2, "visits": 2, "pageviews": 2, "events": 2, "bounce_rate": 50.0}),
        ),
    ];
    for (filters, want) in combos {
        let mut q = format!("{MAR}&metrics={ALL5}");
        for f in *filters {
            q.push_str(&format!("&filter={}", urlencode(f)));
        }
        let r = h.get(&agg(BERLIN, &q)).await;
        assert_eq!(&r["results"], want, "filters {filters:?}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn column(r: &Value, key: &str) -> Vec<Value> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[key].clone())
        .collect()
}

#[tokio::test]
async fn hourly_buckets_on_both_dst_days() {
    let h = harness().await;
    let r = h
        .get(&format!("/api/v1/stats/timeseries?site={BERLIN}&period=day&date=2026-03-29&metrics=visitors,pageviews"))
        .await;
    assert_eq!(r["interval"], "hour");
    let rows = r["results"].as_array().unwrap();
    assert_eq!(rows.len(), 23, "spring forward: 23 hours");
    assert_eq!(rows[0]["date"], "2026-03-29T00:00:00+01:00");
    assert_eq!(rows[1]["date"], "2026-03-29T01:00:00+01:00");
    assert_eq!(rows[2]["date"], "2026-03-29T03:00:00+02:00");
    assert_eq!(rows[22]["date"], "2026-03-29T23:00:00+02:00");
    let mut want = vec![json!({"visitors": 0, "pageviews": 0}); 23];
    want[0] = json!({"visitors": 1, "pageviews": 1}); // beacon 5
    want[1] = json!({"visitors": 1, "pageviews": 1}); // beacon 6
    want[2] = json!({"visitors": 1, "pageviews": 1}); // beacons 7, 8
    want[22] = json!({"visitors": 1, "pageviews": 1}); // beacon 10
    let got: Vec<Value> = rows
        .iter()
        .map(|r| json!({"visitors": r["visitors"], "pageviews": r["pageviews"]}))
        .collect();
    assert_eq!(got, want);

    let r = h
        .get(&format!(
            "/api/v1/stats/timeseries?site={BERLIN}&period=day&date=2026-10-25&interval=hour"
        ))
        .await;
    let rows = r["results"].as_array().unwrap();
    assert_eq!(rows.len(), 25, "fall back: 25 hours");
    assert_eq!(rows[2]["date"], "2026-10-25T02:00:00+02:00");
    assert_eq!(rows[3]["date"], "2026-10-25T02:00:00+01:00");
    let mut want = vec![json!(0); 25];
    want[2] = json!(1); // beacon 13
    want[3] = json!(1); // beacon 14
    assert_eq!(column(&r, "visitors"), want);
}

#[tokio::test]
async fn daily_weekly_and_monthly_buckets_with_empty_ones() {
    let h = harness().await;
    let base = format!("/api/v1/stats/timeseries?site={BERLIN}");
    let r = h
        .get(&format!(
            "{base}&period=7d&date=2026-03-30&metrics=visitors,visits"
        ))
        .await;
    assert_eq!(r["interval"], "day");
    assert_eq!(
        column(&r, "date"),
        [
            "2026-03-24",
            "2026-03-25",
            "2026-03-26",
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
            "2026-03-30"
        ]
    );
    assert_eq!(column(&r, "visitors"), [0, 0, 0, 0, 2, 4, 2]);
    assert_eq!(column(&r, "visits"), [0, 0, 0, 0, 2, 3, 1]);

    let r = h
        .get(&format!(
            "{base}&period=7d&date=2026-03-30&filter=device==mobile&metrics=visitors,visits"
        ))
        .await;
    assert_eq!(column(&r, "visitors"), [0, 0, 0, 0, 1, 1, 1]);
    assert_eq!(column(&r, "visits"), [0, 0, 0, 0, 1, 0, 1]);

    let r = h.get(&format!("{base}&period=custom&from=2026-03-23&to=2026-04-05&interval=week&metrics=visitors,visits")).await;
    assert_eq!(column(&r, "date"), ["2026-03-23", "2026-03-30"]);
    assert_eq!(column(&r, "visitors"), [5, 2]);
    assert_eq!(column(&r, "visits"), [5, 1]);

    let r = h.get(&format!("{base}&period=year&date=2026-03-29")).await;
    assert_eq!(r["interval"], "month");
    assert_eq!(column(&r, "date").len(), 12);
    assert_eq!(r["results"][0]["date"], "2026-01-01");
    assert_eq!(column(&r, "visitors"), [0, 0, 6, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
}

#[tokio::test]
async fn breakdowns_by_every_dimension() {
    let h = harness().await;
    let bd = |q: &str| format!("/api/v1/stats/breakdown?site={BERLIN}&{MAR}&{q}");
    let rows = |r: &Value, keys: &[&str]| -> Vec<Value> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| Value::Array(keys.iter().map(|k| row[*k].clone()).collect()))
            .collect()
    };
    let r = h
        .get(&bd("property=source&metrics=visitors,visits,bounce_rate"))
        .await;
    assert_eq!(r["total"], 5);
    assert_eq!(
        rows(&r, &["value", "visitors", "visits", "bounce_rate"]),
        [
            json!(["Google", 2, 2, 0.0]),
            json!(["(none)", 1, 1, 100.0]),
            json!(["DuckDuckGo", 1, 1, 100.0]),
            json!(["Hacker News", 1, 1, 0.0]),
            json!(["acme-mail", 1, 1, 0.0]),
        ]
    );
    let r = h.get(&bd("property=source&limit=2&page=2")).await;
    // Rows 3 and 4 of: Google, (none), DuckDuckGo, Hacker News, acme-mail.
    assert_eq!(
        rows(&r, &["value", "visitors"]),
        [json!(["DuckDuckGo", 1]), json!(["Hacker News", 1])]
    );
    assert_eq!(
        (r["page"].clone(), r["limit"].clone(), r["total"].clone()),
        (json!(2), json!(2), json!(5))
    );
    let r = h.get(&bd("property=source&sort=value:asc&limit=2")).await;
    assert_eq!(column(&r, "value"), ["(none)", "DuckDuckGo"]);

    let cases: &[(&str, &str, Value)] = &[
        (
            "channel",
            "visitors",
            json!([
                ["organic_search", 3],
                ["direct", 1],
                ["email", 1],
                ["organic_social", 1]
            ]),
        ),
        (
            "page",
            "visitors,pageviews",
            json!([
                ["/", 4, 4],
                ["/blog/a", 2, 2],
                ["/pricing", 2, 2],
                ["/blog/b", 1, 1]
            ]),
        ),
        (
            "entry_page",
            "visits,bounce_rate",
            json!([["/", 3, 33.3], ["/blog/a", 2, 50.0], ["/pricing", 1, 0.0]]),
        ),
        (
            "exit_page",
            "visits,visit_duration",
            json!([
                ["/", 3, 140],
                ["/blog/a", 1, 0],
                ["/blog/b", 1, 1200],
                ["/pricing", 1, 300]
            ]),
        ),
        (
            "country",
            "visitors",
            json!([["DE", 3], ["FR", 2], ["US", 1]]),
        ),
        (
            "browser",
            "visitors",
            json!([["firefox", 3], ["safari", 2], ["chrome", 1]]),
        ),
        (
            "browser_version",
            "visitors,pageviews",
            json!([
                ["firefox 133", 3, 4],
                ["safari 17", 2, 3],
                ["chrome 131", 1, 2]
            ]),
        ),
        (
            "os",
            "visitors",
            json!([["linux", 3], ["ios", 2], ["windows", 1]]),
        ),
        (
            // Linux names no version.
            "os_version",
            "visitors,pageviews",
            json!([["(none)", 3, 4], ["ios 17.5", 2, 3], ["windows 10", 1, 2]]),
        ),
        (
            "device",
            "visitors,pageviews",
            json!([["desktop", 4, 6], ["mobile", 2, 3]]),
        ),
        (
            "referrer",
            "visitors",
            json!([
                ["(none)", 2],
                ["duckduckgo.com", 1],
                ["google.com", 1],
                ["google.com/search", 1],
                ["news.ycombinator.com", 1]
            ]),
        ),
        (
            "utm_source",
            "visitors",
            json!([["(none)", 5], ["acme-mail", 1]]),
        ),
        (
            "utm_medium",
            "visitors",
            json!([["(none)", 5], ["email", 1]]),
        ),
        (
            "utm_campaign",
            "visitors",
            json!([["(none)", 5], ["spring", 1]]),
        ),
        ("utm_term", "visitors", json!([["(none)", 6]])),
        ("utm_content", "visitors", json!([["(none)", 6]])),
        (
            "event:name",
            "events,visitors",
            json!([["Download", 1, 1], ["Signup", 1, 1]]),
        ),
        (
            "event:props:plan",
            "visitors,events",
            json!([["pro", 1, 1]]),
        ),
        ("event:props:file", "events", json!([["a.pdf", 1]])),
        // Numbers and booleans read as sent, keys with spaces work.
        ("event:props:seats", "events", json!([["3", 1]])),
        ("event:props:annual", "events", json!([["true", 1]])),
        ("event:props:Plan%20Name", "events", json!([["Gold", 1]])),
        ("event:props:missing", "events", json!([])),
    ];
    for (property, metrics, want) in cases {
        let r = h
            .get(&bd(&format!("property={property}&metrics={metrics}")))
            .await;
        let mut keys = vec!["value"];
        keys.extend(metrics.split(','));
        assert_eq!(
            Value::Array(rows(&r, &keys)),
            *want,
            "breakdown by {property}"
        );
        assert_eq!(r["property"], property.replace("%20", " "));
    }
    // A filtered breakdown.
    let r = h
        .get(&bd("property=page&filter=country==FR&metrics=visitors"))
        .await;
    assert_eq!(
        rows(&r, &["value", "visitors"]),
        [json!(["/blog/a", 2]), json!(["/blog/b", 1])]
    );
    let r = h
        .get(&bd(
            "property=source&filter=page==/&metrics=visitors,visits",
        ))
        .await;
    assert_eq!(
        rows(&r, &["value", "visitors", "visits"]),
        [
            json!(["Google", 2, 2]),
            json!(["(none)", 1, 1]),
            json!(["acme-mail", 1, 1])
        ]
    );
}

#[tokio::test]
async fn realtime_counts_the_last_five_minutes() {
    let h = harness().await;
    let rt = |q: &str| format!("/api/v1/stats/realtime?site={BERLIN}{q}");
    // Beacon 14 (V7, US) at 01:30:00; beacon 13 at 00:30 is long gone.
    for (now, filter, want) in [
        ("2026-10-25T01:30:00Z", "", 1),
        ("2026-10-25T01:33:00Z", "", 1),
        ("2026-10-25T01:33:00Z", "&filter=country==US", 1),
        ("2026-10-25T01:33:00Z", "&filter=country==DE", 0),
        ("2026-10-25T01:34:59Z", "", 1),
        ("2026-10-25T01:35:00Z", "", 0),
    ] {
        h.clock.set(now.parse().unwrap());
        let r = h.get(&rt(filter)).await;
        assert_eq!(r["visitors"], want, "at {now}{filter}");
    }
    // The aggregate's realtime period is the same window.
    h.clock.set("2026-10-25T01:33:00Z".parse().unwrap());
    let r = h
        .get(&agg(BERLIN, "period=realtime&metrics=visitors,pageviews"))
        .await;
    assert_eq!(r["results"], json!({"visitors": 1, "pageviews": 1}));
    let r = h
        .get(&format!(
            "/api/v1/stats/timeseries?site={BERLIN}&period=realtime"
        ))
        .await;
    assert_eq!(column(&r, "visitors"), [0, 1, 0, 0, 0], "minute buckets");
}

#[tokio::test]
async fn tokens_admin_share_missing_and_wrong() {
    let h = harness().await;
    let berlin = agg(BERLIN, "period=day&date=2026-03-29&metrics=visitors");
    let utc = agg(UTC_SITE, "period=day&date=2026-03-29&metrics=visitors");
    let unknown = agg("nowhere.example", "period=day");
    let (s, j) = h.request(&berlin, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        j["error"].as_str().unwrap().starts_with("authorization:"),
        "{j}"
    );
    for bad in ["tm_0000", "", &h.admin[..h.admin.len() - 1]] {
        let (s, j) = h.request(&berlin, Some(bad)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad:?}: {j}");
    }
    // Basic instead of Bearer.
    let resp = h
        .router()
        .oneshot(
            Request::get(&berlin)
                .header(header::AUTHORIZATION, format!("Basic {}", h.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");

    let (s, j) = h.request(&utc, Some(&h.share_utc)).await;
    assert_eq!(
        (s, j["results"]["visitors"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (s, j) = h.request(&berlin, Some(&h.share_utc)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{j}");
    assert!(j["error"].as_str().unwrap().starts_with("site:"));
    let (s, _) = h.request(&unknown, Some(&h.share_utc)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a share token learns nothing about other sites"
    );
    let (s, j) = h.request(&unknown, Some(&h.admin)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .starts_with("site: unknown site"),
        "{j}"
    );
    // The stored hash is not the token.
    let db = rusqlite::Connection::open(h.state.store.path()).unwrap();
    let stored: Vec<u8> = db
        .query_row("SELECT hash FROM tokens WHERE kind = 'admin'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&h.admin[3..]));
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_parameter() {
    let h = harness().await;
    let a = "/api/v1/stats/aggregate";
    let cases = [
        (format!("{a}?period=day"), "site:"),
        (format!("{a}?site=nowhere.example"), "site: unknown site"),
        (format!("{a}?site={BERLIN}&period=week"), "period:"),
        (
            format!("{a}?site={BERLIN}&period=day&date=2026-13-01"),
            "date:",
        ),
        (
            format!("{a}?site={BERLIN}&period=day&date=yesterday"),
            "date:",
        ),
        (
            format!("{a}?site={BERLIN}&period=day&date=1999-12-31"),
            "date:",
        ),
        (
            format!("{a}?site={BERLIN}&period=custom&from=2026-03-30&to=2026-03-28"),
            "from:",
        ),
        (
            format!("{a}?site={BERLIN}&period=custom&from=2026-03-30"),
            "to:",
        ),
        (
            format!("{a}?site={BERLIN}&period=custom&from=2020-01-01&to=2026-01-01"),
            "to:",
        ),
        (
            format!("{a}?site={BERLIN}&period=day&from=2026-03-01"),
            "from:",
        ),
        (
            format!("{a}?site={BERLIN}&filter=nope==x"),
            "filter: unknown dimension",
        ),
        (format!("{a}?site={BERLIN}&filter=page"), "filter:"),
        (format!("{a}?site={BERLIN}&filter=page~(none)"), "filter:"),
        (
            format!("{a}?site={BERLIN}&filter=event:props:a%22b==x"),
            "filter:",
        ),
        (
            format!("{a}?site={BERLIN}&metrics=visitors,foo"),
            "metrics:",
        ),
        (format!("{a}?site={BERLIN}&metrics="), "metrics:"),
        (format!("{a}?site={BERLIN}&compare=yesterday"), "compare:"),
        (
            format!("{a}?site={BERLIN}&foo=bar"),
            "query: unknown parameter",
        ),
        (
            format!("{a}?site={BERLIN}&site={BERLIN}"),
            "site: given more than once",
        ),
        (
            format!("{a}?site={BERLIN}&interval=day"),
            "query: unknown parameter",
        ),
        (
            format!("/api/v1/stats/timeseries?site={BERLIN}&period=year&interval=minute"),
            "interval:",
        ),
        (
            format!("/api/v1/stats/timeseries?site={BERLIN}&period=realtime&interval=day"),
            "interval:",
        ),
        (
            format!("/api/v1/stats/timeseries?site={BERLIN}&interval=fortnight"),
            "interval:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}"),
            "property: missing",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=planet"),
            "property: unknown dimension",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=entry_page&metrics=pageviews"),
            "metrics:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&metrics=bounce_rate"),
            "metrics:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&limit=0"),
            "limit:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&limit=5000"),
            "limit:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&page=-1"),
            "page:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&sort=events:desc"),
            "sort:",
        ),
        (
            format!("/api/v1/stats/breakdown?site={BERLIN}&property=page&sort=visitors:up"),
            "sort:",
        ),
        (
            format!("/api/v1/stats/realtime?site={BERLIN}&period=day"),
            "query: unknown parameter",
        ),
    ];
    for (uri, prefix) in cases {
        let error = h.bad(&uri).await;
        assert!(
            error.starts_with(prefix),
            "{uri}: {error:?} should start with {prefix:?}"
        );
    }
}

#[tokio::test]
async fn garbage_query_strings_never_500() {
    let h = harness().await;
    let garbage = [
        "%ff%fe=%00",
        "site",
        "site=&&&===",
        "site=berlin.example&filter=%00==%00",
        "site=berlin.example&filter=page==%ff%fe",
        "site=berlin.example&period=custom&from=9999-99-99&to=0000-00-00",
        "site=berlin.example&period=custom&from=-2026-01-01&to=2026-01-01",
        "site=berlin.example&date=2026-02-30",
        "site=berlin.example&metrics=,,,",
        "site=berlin.example&filter=event:props:==x",
        "site=berlin.example&filter=event:props:a'b==x",
        "site=berlin.example&filter=page=='%3B%20DROP%20TABLE%20events%3B--",
        "site=%E2%98%83",
        "site=berlin.example&filter=page==a|||b",
        "site=berlin.example&filter=page==\\|\\",
        "site=berlin.example&step=page==%ff&step=event:name==%00",
        "site=berlin.example&step=page==/&step=event:props:%27==x|%27",
        "site=berlin.example&step=&step=",
    ];
    for endpoint in ["aggregate", "timeseries", "breakdown", "realtime", "funnel"] {
        for q in garbage {
            let uri = format!("/api/v1/stats/{endpoint}?{q}");
            let (status, json) = h.request(&uri, Some(&h.admin)).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{uri}: {status} {json}"
            );
            if status == StatusCode::BAD_REQUEST {
                assert!(json["error"].is_string(), "{uri}: {json}");
            }
        }
    }
    // The injection attempt was only a value: the events are all still there.
    let r = h
        .get(&agg(BERLIN, &format!("{MAR}&metrics=pageviews")))
        .await;
    assert_eq!(r["results"]["pageviews"], 9);
}

/// Checks `value` against an OpenAPI 3.1 schema: `$ref`, `allOf`, `oneOf`,
/// `type` (one or several), `required`, `properties`,
/// `additionalProperties` and `items`.
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &spec["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: dangling $ref {r}"));
        }
        return conforms(spec, target, value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            conforms(spec, s, value, at)?;
        }
    }
    if let Some(one) = schema["oneOf"].as_array()
        && !one.iter().any(|s| conforms(spec, s, value, at).is_ok())
    {
        return Err(format!("{at}: {value} matches none of oneOf"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for req in schema["required"].as_array().into_iter().flatten() {
            let key = req.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                return Err(format!("{at}: required field {key} missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(spec, s, v, &format!("{at}.{k}"))?,
                None if schema["additionalProperties"].is_object() => conforms(
                    spec,
                    &schema["additionalProperties"],
                    v,
                    &format!("{at}.{k}"),
                )?,
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            conforms(spec, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// A valid value for each documented parameter (`from`/`to` need
/// `period=custom`, given with them).
fn sample(param: &str) -> &'static str {
    match param {
        "site" => BERLIN,
        "period" => "day",
        "date" => "2026-03-29",
        "from" => "2026-03-28&period=custom&to=2026-03-30",
        "to" => "2026-03-30&period=custom&from=2026-03-28",
        "filter" => "country%3D%3DDE",
        "metrics" => "visitors,pageviews",
        "compare" => "previous_period",
        "interval" => "hour",
        "property" => "source",
        "limit" => "5",
        "page" => "1",
        "sort" => "visitors:desc",
        "step" => "event:name%3D%3DSignup",
        other => panic!("no sample for documented parameter {other}"),
    }
}

#[tokio::test]
async fn the_openapi_document_matches_the_running_server() {
    use tallymark_collector::stats::funnel::FUNNEL_PARAMS;
    use tallymark_collector::stats::{
        AGGREGATE_PARAMS, BREAKDOWN_PARAMS, REALTIME_PARAMS, SITES_PARAMS, TIMESERIES_PARAMS,
    };
    let h = harness().await;
    // Revenue on a day of its own, so full answers carry revenue entries.
    beacon_at(
        &h,
        "2026-11-02T12:00:00Z",
        0,
        "198.51.100.99",
        r#"{"kind":"event","site":"berlin.example","url":"https://berlin.example/checkout","name":"Purchase","revenue":{"amount":12.5,"currency":"EUR"}}"#,
    )
    .await;
    let (status, spec) = h.request("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "the spec needs no token");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/stats/aggregate", AGGREGATE_PARAMS),
        ("/api/v1/stats/timeseries", TIMESERIES_PARAMS),
        ("/api/v1/stats/breakdown", BREAKDOWN_PARAMS),
        ("/api/v1/stats/realtime", REALTIME_PARAMS),
        ("/api/v1/stats/funnel", FUNNEL_PARAMS),
        ("/api/v1/sites", SITES_PARAMS),
    ];
    let mut revenue_seen = 0;
    let mut documented_paths: Vec<&String> = paths.keys().collect();
    documented_paths.sort();
    let mut want_paths: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    want_paths.sort();
    assert_eq!(documented_paths, want_paths);

    for (path, accepted) in expected {
        let op = &paths[path]["get"];
        let none = Vec::new();
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let mut sorted = params.clone();
        sorted.sort();
        let mut accepted_sorted = accepted.to_vec();
        accepted_sorted.sort();
        assert_eq!(
            sorted, accepted_sorted,
            "{path}: documented vs accepted parameters"
        );
        let required = if path.ends_with("breakdown") {
            "&property=source"
        } else if path.ends_with("funnel") {
            "&step=page%3D%3D/&step=page~blog"
        } else {
            ""
        };
        let ok_schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        let err_schema = &op["responses"]["400"]["content"]["application/json"]["schema"];
        // Each documented parameter, live, and the answer has the documented shape.
        for param in params
            .iter()
            .filter(|p| !matches!(**p, "site" | "property"))
        {
            let uri = format!("{path}?site={BERLIN}{required}&{param}={}", sample(param));
            let (status, json) = h.request(&uri, Some(&h.admin)).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {json}");
            conforms(&spec, ok_schema, &json, path).unwrap_or_else(|e| panic!("{uri}: {e}"));
        }
        // Every metric at once, with a comparison where there is one, over
        // March and over the revenue's day.
        for days in [MAR, "period=day&date=2026-11-02"] {
            let full = match path {
                "/api/v1/stats/aggregate" => {
                    format!("{path}?site={BERLIN}&{days}&compare=previous_period")
                }
                "/api/v1/stats/realtime" => format!("{path}?site={BERLIN}"),
                "/api/v1/stats/funnel" => format!("{path}?site={BERLIN}{required}&{days}"),
                "/api/v1/sites" => path.to_string(),
                _ => format!(
                    "{path}?site={BERLIN}{required}&{days}&metrics=visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events,revenue"
                ),
            };
            let json = h.get(&full).await;
            conforms(&spec, ok_schema, &json, path).unwrap_or_else(|e| panic!("{full}: {e}"));
            if days != MAR && json.to_string().contains("\"currency\":\"EUR\"") {
                revenue_seen += 1;
            }
        }
        // Errors have the documented shape too.
        let (status, json) = h
            .request(&format!("{path}?site={BERLIN}&nope=1"), Some(&h.admin))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        conforms(&spec, err_schema, &json, path).unwrap();
        assert!(op["responses"]["401"].is_object(), "{path} documents 401");
        // A share token is refused another site's figures; the site list
        // shows it its own site instead.
        assert_eq!(
            op["responses"]["403"].is_object(),
            path != "/api/v1/sites",
            "{path}: 403"
        );
    }
    // Aggregate, timeseries and breakdown answered with revenue entries.
    assert_eq!(revenue_seen, 3);
    // A deliberately wrong shape is caught (the checker checks).
    let bad = json!({"site": "x", "visitors": "many"});
    let schema = &paths["/api/v1/stats/realtime"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(conforms(&spec, schema, &bad, "realtime").is_err());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

/// Every unfiltered whole-day answer, three ways: computed from the raw rows
/// (rollups off), from per-day sums computed on the fly (nothing rolled yet),
/// and from the stored rollups: all identical. The data set's visits that
/// cross midnight (S2, S5) are what the carried-over counts are for.
/// Aggregates, timeseries and breakdowns over every period of the data set,
/// unfiltered and filtered by one visit dimension: what two ways of
/// answering must agree on.
fn comparison_queries() -> Vec<String> {
    let mut queries = Vec::new();
    for site in [BERLIN, UTC_SITE] {
        for period in [
            "period=day&date=2026-03-28",
            "period=day&date=2026-03-29",
            "period=day&date=2026-03-30",
            "period=7d&date=2026-03-30",
            "period=month&date=2026-03-15",
            "period=year&date=2026-06-01",
            "period=12mo&date=2026-10-25",
            "period=custom&from=2026-03-28&to=2026-03-29",
            "period=custom&from=2026-03-29&to=2026-03-30",
            MAR,
            "period=custom&from=2026-10-24&to=2026-10-26",
        ] {
            let all = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";
            queries.push(format!(
                "/api/v1/stats/aggregate?site={site}&{period}&metrics={all}&compare=previous_period"
            ));
            for interval in ["day", "week", "month"] {
                queries.push(format!(
                    "/api/v1/stats/timeseries?site={site}&{period}&interval={interval}&metrics={all}"
                ));
            }
            // A goal: its name's row, when only events are counted (with
            // visits asked, the raw rows answer).
            for metrics in [
                "visitors,events,pageviews",
                "visitors,conversion_rate",
                "visitors,visits,events",
            ] {
                for goal in ["Signup", "Nope", "(none)"] {
                    queries.push(format!(
                        "/api/v1/stats/aggregate?site={site}&{period}&metrics={metrics}&compare=previous_period&filter=event:name%3D%3D{goal}"
                    ));
                    queries.push(format!(
                        "/api/v1/stats/timeseries?site={site}&{period}&interval=day&metrics={metrics}&filter=event:name%3D%3D{goal}"
                    ));
                }
            }
            // One filter on a visit dimension: the rollups' row of that value.
            for filter in [
                "source==Google",
                "source==(none)",
                "country==DE",
                "region==(none)",
                "city==DE Berlin, Berlin",
                "device==mobile",
                "referrer==news.ycombinator.com",
            ] {
                let f = format!("filter={}", urlencode(filter));
                queries.push(format!(
                    "/api/v1/stats/aggregate?site={site}&{period}&metrics={all}&compare=previous_period&{f}"
                ));
                queries.push(format!(
                    "/api/v1/stats/timeseries?site={site}&{period}&interval=day&metrics={all}&{f}"
                ));
                let dim = filter.split("==").next().unwrap_or_default();
                for property in [dim, "page"] {
                    queries.push(format!(
                        "/api/v1/stats/breakdown?site={site}&{period}&property={property}&metrics=visitors,visits,pageviews&{f}"
                    ));
                }
            }
            for (property, metrics) in [
                ("page", "visitors,visits,pageviews,events"),
                ("hostname", "visitors,visits,pageviews,events"),
                ("event:name", "visitors,visits,pageviews,events"),
                ("event:name", "visitors,events,conversion_rate"),
                (
                    "entry_page",
                    "visitors,visits,views_per_visit,bounce_rate,visit_duration",
                ),
                (
                    "exit_page",
                    "visitors,visits,views_per_visit,bounce_rate,visit_duration",
                ),
                ("source", all),
                ("referrer", all),
                ("channel", all),
                ("utm_source", all),
                ("utm_medium", all),
                ("utm_campaign", all),
                ("utm_term", all),
                ("utm_content", all),
                ("country", all),
                ("region", all),
                ("city", all),
                ("region_name", all),
                ("city_name", all),
                ("browser", all),
                ("browser_version", all),
                ("os", all),
                ("os_version", all),
                ("device", all),
            ] {
                queries.push(format!(
                    "/api/v1/stats/breakdown?site={site}&{period}&property={property}&metrics={metrics}"
                ));
            }
        }
    }
    queries
}

#[tokio::test]
async fn rollups_answer_exactly_what_the_raw_rows_answer() {
    let h = harness().await;
    place_visits(&h);
    let queries = comparison_queries();
    let raw_state = AppState::open(
        Config {
            rollups: false,
            ..h.state.config.clone()
        },
        h.clock.clone(),
    )
    .unwrap();
    let raw = answers_of(&h, &raw_state, &queries).await;
    let on_the_fly = answers_of(&h, &h.state, &queries).await;
    for ((uri, a), b) in queries.iter().zip(&raw).zip(&on_the_fly) {
        assert_eq!(a, b, "on the fly differs from raw for {uri}");
    }

    // Every day is over: roll them all up, then answer from the rollups.
    h.clock.set("2026-11-01T00:00:00Z".parse().unwrap());
    let mut written = 0;
    loop {
        let n = h.state.roll_up(1000, true).await.unwrap();
        if n == 0 {
            break;
        }
        written += n;
    }
    let conn = rusqlite::Connection::open(h.state.store.path()).unwrap();
    let rolled_days: i64 = conn
        .query_row("SELECT COUNT(*) FROM rollup_days", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rolled_days as usize, written);
    assert!(written >= 8, "only {written} day rollups");
    let rolled = answers_of(&h, &h.state, &queries).await;
    for ((uri, a), b) in queries.iter().zip(&raw).zip(&rolled) {
        assert_eq!(a, b, "rollups differ from raw for {uri}");
    }
    // And they are what answers now: with the raw rows of 03-28 gone, a
    // rolled answer about that day is unchanged.
    conn.execute(
        "DELETE FROM events WHERE ts_ms < ?1",
        [jiff::Timestamp::from_second(1_774_738_800)
            .unwrap()
            .as_millisecond()],
    )
    .unwrap();
    let again = answers_of(&h, &h.state, &queries[..1]).await;
    assert_eq!(again[0]["results"], raw[0]["results"]);
    // So are regions and cities by name alone (Plausible's `visit:region`
    // and `visit:city`), renamed from the rows in their country.
    let named: Vec<(usize, String)> = queries
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, q)| q.contains("property=region_name") || q.contains("property=city_name"))
        .collect();
    assert!(named.len() >= 4);
    let uris: Vec<String> = named.iter().map(|(_, q)| q.clone()).collect();
    let again = answers_of(&h, &h.state, &uris).await;
    for ((i, uri), b) in named.iter().zip(&again) {
        assert_eq!(&raw[*i]["results"], &b["results"], "{uri}");
    }
}

/// Every answer of `state` to `queries`, as the admin.
async fn answers_of(h: &Harness, state: &AppState, queries: &[String]) -> Vec<Value> {
    let router = app(state.clone()).layer(MockConnectInfo(PROXY.parse::<SocketAddr>().unwrap()));
    let mut out = Vec::new();
    for uri in queries {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", h.admin))
            .body(Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        out.push(serde_json::from_slice::<Value>(&bytes).unwrap());
    }
    out
}

const ALL_METRICS: &str =
    "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";

/// The same data and clock, answered from the raw rows only.
fn without_rollups(h: &Harness) -> AppState {
    AppState::open(
        Config {
            rollups: false,
            ..h.state.config.clone()
        },
        h.clock.clone(),
    )
    .unwrap()
}

/// The same data and clock, with `--retention-days days`.
fn keeping(h: &Harness, days: u32) -> AppState {
    AppState::open(
        Config {
            retention_days: Some(days),
            ..h.state.config.clone()
        },
        h.clock.clone(),
    )
    .unwrap()
}

/// Sends `body` at time `at` as `VISITORS[visitor]` from `ip`; expects a 202.
async fn beacon_at(h: &Harness, at: &str, visitor: usize, ip: &str, body: &str) {
    h.clock.set(at.parse().unwrap());
    let req = Request::post("/api/event")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header(header::USER_AGENT, VISITORS[visitor].user_agent)
        .header("x-forwarded-for", ip)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = h.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

/// The answers with live sums, checked equal to the raw rows' answers.
async fn live_equals_raw(h: &Harness, raw_state: &AppState, queries: &[String]) -> Vec<Value> {
    let live = answers_of(h, &h.state, queries).await;
    let raw = answers_of(h, raw_state, queries).await;
    for ((uri, a), b) in queries.iter().zip(&live).zip(&raw) {
        assert_eq!(a, b, "live sums differ from raw for {uri}");
    }
    live
}

/// A day not rolled up yet is summed once, then kept up to date with only the
/// rows added since: after more beacons (one continuing a visit that crossed
/// midnight, one from a new visitor), the answers equal the raw rows' again.
#[tokio::test]
async fn live_day_sums_follow_new_events_exactly() {
    let h = harness().await;
    let raw_state = without_rollups(&h);
    let all = ALL_METRICS;
    let mut queries = vec![
        agg(BERLIN, &format!("{MAR}&metrics={all}")),
        format!("/api/v1/stats/timeseries?site={BERLIN}&{MAR}&interval=day&metrics={all}"),
    ];
    for property in ["page", "source", "country", "event:name", "entry_page"] {
        let metrics = if property == "page" || property == "event:name" {
            "visitors,visits,pageviews,events"
        } else {
            "visitors,visits,bounce_rate"
        };
        queries.push(format!(
            "/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property={property}&metrics={metrics}"
        ));
    }
    let before = answers_of(&h, &h.state, &queries).await;
    assert_eq!(before, answers_of(&h, &raw_state, &queries).await);
    let asked_at = tallymark_collector::clock::Clock::now(&*h.clock);

    // Berlin, 2026-03-29 (UTC+1 until 02:00 local): visitor 1 again, and a
    // new visitor from a new address.
    let more = [
        (
            "2026-03-29T09:00:00Z",
            1,
            "198.51.100.1",
            r#"{"kind":"pageview","site":"berlin.example","url":"https://berlin.example/late","referrer":"https://news.ycombinator.com/"}"#,
        ),
        (
            "2026-03-29T09:01:00Z",
            1,
            "198.51.100.1",
            r#"{"kind":"event","site":"berlin.example","url":"https://berlin.example/late","name":"Signup"}"#,
        ),
        (
            "2026-03-30T08:00:00Z",
            0,
            "203.0.113.200",
            r#"{"kind":"pageview","site":"berlin.example","url":"https://berlin.example/"}"#,
        ),
    ];
    for (at, visitor, ip, body) in more {
        beacon_at(&h, at, visitor, ip, body).await;
    }
    // Past the reuse window of the first answers.
    h.clock.set(
        asked_at
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap(),
    );
    let after = live_equals_raw(&h, &raw_state, &queries).await;
    assert_ne!(after[0], before[0], "the new beacons count");
}

/// A request that covers days that have not begun (this month, this year)
/// must not build sums for them: the next day's would miss a visit that
/// begins before midnight and runs into it, and be reused once it is today.
#[tokio::test]
async fn asking_about_days_to_come_leaves_them_exact() {
    let h = harness().await;
    let raw_state = without_rollups(&h);
    let all = ALL_METRICS;
    let queries = vec![
        agg(
            BERLIN,
            &format!("period=month&date=2026-04-10&metrics={all}"),
        ),
        agg(
            BERLIN,
            &format!("period=custom&from=2026-04-10&to=2026-04-11&metrics={all}"),
        ),
        agg(BERLIN, &format!("period=day&date=2026-04-11&metrics={all}")),
        format!(
            "/api/v1/stats/breakdown?site={BERLIN}&period=month&date=2026-04-10&property=page&metrics=visitors,visits,pageviews"
        ),
    ];
    // 23:51 in Berlin (UTC+2): a dashboard on "this month".
    h.clock.set("2026-04-10T21:51:00Z".parse().unwrap());
    answers_of(&h, &h.state, &queries).await;
    // One visit, from 23:55 to 00:05.
    for at in ["2026-04-10T21:55:00Z", "2026-04-10T22:05:00Z"] {
        let body =
            r#"{"kind":"pageview","site":"berlin.example","url":"https://berlin.example/pricing"}"#;
        beacon_at(&h, at, 0, "198.51.100.77", body).await;
    }
    h.clock.set("2026-04-10T22:10:00Z".parse().unwrap());
    let live = live_equals_raw(&h, &raw_state, &queries).await;
    assert_eq!(live[1]["results"]["visitors"], 1, "{}", live[1]);
}

/// The revenue data set (`SHOP_BEACONS`), ingested into its own collector.
async fn shop() -> Harness {
    harness_with(&[(SHOP, "UTC")], &SHOP_BEACONS).await
}

/// Currency, total, average, events.
type Rev = (String, f64, f64, i64);

/// `[currency, total, average, events]` of each entry of a `revenue` list.
fn revenue(v: &Value) -> Vec<Rev> {
    v.as_array()
        .unwrap_or_else(|| panic!("no revenue list: {v}"))
        .iter()
        .map(|r| {
            (
                r["currency"].as_str().unwrap().to_string(),
                r["total"].as_f64().unwrap(),
                r["average"].as_f64().unwrap(),
                r["events"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn rev(currency: &str, total: f64, average: f64, events: i64) -> Rev {
    (currency.to_string(), total, average, events)
}

/// `(value, revenue)` of each breakdown row, in order.
fn revenue_rows(v: &Value) -> Vec<(String, Vec<Rev>)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_string(),
                revenue(&r["revenue"]),
            )
        })
        .collect()
}

const APR_1_2: &str = "period=custom&from=2026-04-01&to=2026-04-02";

#[tokio::test]
async fn revenue_is_summed_per_currency_and_filtered_like_events() {
    let h = shop().await;
    // 19.99 + 0.01 − 5.5 + 10.10 EUR; 1500 JPY; the USD purchase is on 04-03.
    let all = h.get(&agg(SHOP, APR_1_2)).await;
    assert_eq!(
        revenue(&all["results"]["revenue"]),
        [rev("EUR", 24.6, 6.15, 4), rev("JPY", 1500.0, 1500.0, 1)],
        "{all}"
    );
    // Pageviews 1, 2, 5, 8, 11 and the six custom events.
    assert_eq!(all["results"]["events"], 11, "{all}");
    // Purchases only: 30.10 EUR over 3, 10.0333… shown to the cent.
    let purchases = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=revenue&filter=event:name==Purchase"),
        ))
        .await;
    assert_eq!(
        revenue(&purchases["results"]["revenue"]),
        [rev("EUR", 30.1, 10.03, 3), rev("JPY", 1500.0, 1500.0, 1)]
    );
    assert!(
        purchases["results"].get("visitors").is_none(),
        "{purchases}"
    );
    // A visit dimension: the revenue of visits from Google.
    let google = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=revenue&filter=source==Google"),
        ))
        .await;
    assert_eq!(
        revenue(&google["results"]["revenue"]),
        [rev("EUR", 20.0, 10.0, 2)]
    );
    // None in the period: an empty list, not an absent field.
    let none = h
        .get(&agg(SHOP, "period=day&date=2026-04-05&metrics=revenue"))
        .await;
    assert_eq!(none["results"]["revenue"], json!([]), "{none}");
    // Not requested: absent.
    let counts = h
        .get(&agg(SHOP, &format!("{APR_1_2}&metrics=events")))
        .await;
    assert!(counts["results"].get("revenue").is_none(), "{counts}");
}

#[tokio::test]
async fn revenue_compares_per_currency_without_a_change_figure() {
    let h = shop().await;
    let v = h
        .get(&agg(
            SHOP,
            "period=day&date=2026-04-02&metrics=revenue,events&compare=previous_period",
        ))
        .await;
    assert_eq!(
        revenue(&v["results"]["revenue"]),
        [rev("EUR", 10.1, 10.1, 1)]
    );
    let then = &v["comparison"]["results"]["revenue"];
    assert_eq!(
        revenue(then),
        [rev("EUR", 14.5, 4.83, 3), rev("JPY", 1500.0, 1500.0, 1)]
    );
    // Events: 4 on 04-02 against 7 on 04-01.
    assert_eq!(v["comparison"]["change"], json!({"events": -42.9}), "{v}");
}

#[tokio::test]
async fn revenue_timeseries_has_every_bucket() {
    let h = shop().await;
    let v = h
        .get(&format!(
            "/api/v1/stats/timeseries?site={SHOP}&period=custom&from=2026-04-01&to=2026-04-04&interval=day&metrics=revenue"
        ))
        .await;
    let rows: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["date"].as_str().unwrap().to_string(),
                revenue(&r["revenue"]),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "2026-04-01".to_string(),
                vec![rev("EUR", 14.5, 4.83, 3), rev("JPY", 1500.0, 1500.0, 1)]
            ),
            ("2026-04-02".to_string(), vec![rev("EUR", 10.1, 10.1, 1)]),
            ("2026-04-03".to_string(), vec![rev("USD", 7.0, 7.0, 1)]),
            ("2026-04-04".to_string(), vec![]),
        ],
        "{v}"
    );
}

#[tokio::test]
async fn revenue_breaks_down_by_event_page_and_visit_dimensions() {
    let h = shop().await;
    let bd = |q: String| format!("/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&{q}");

    // By event name, sorted by revenue in the main currency (EUR: 4 events
    // against JPY's 1): Purchase 30.10, Signup none, Refund −5.50.
    let v = h
        .get(&bd("property=event:name&metrics=revenue,events".into()))
        .await;
    assert_eq!(
        revenue_rows(&v),
        [
            (
                "Purchase".to_string(),
                vec![rev("EUR", 30.1, 10.03, 3), rev("JPY", 1500.0, 1500.0, 1)]
            ),
            ("Signup".to_string(), vec![]),
            ("Refund".to_string(), vec![rev("EUR", -5.5, -5.5, 1)]),
        ],
        "{v}"
    );
    let events: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["events"].clone())
        .collect();
    assert_eq!(events, [json!(4), json!(1), json!(1)]);

    // Only revenue asked: only the values that have some.
    let v = h
        .get(&bd(
            "property=event:name&metrics=revenue&sort=revenue:asc".into()
        ))
        .await;
    let values: Vec<_> = revenue_rows(&v).into_iter().map(|(v, _)| v).collect();
    assert_eq!(values, ["Refund", "Purchase"], "{v}");

    // By source (a visit dimension carried by each event).
    let v = h
        .get(&bd(
            "property=source&metrics=visitors,revenue&sort=revenue:desc".into(),
        ))
        .await;
    assert_eq!(
        revenue_rows(&v),
        [
            ("Google".to_string(), vec![rev("EUR", 20.0, 10.0, 2)]),
            ("(none)".to_string(), vec![rev("EUR", 10.1, 10.1, 1)]),
            // No EUR (0) sorts above −5.50 EUR; JPY does not count.
            ("DuckDuckGo".to_string(), vec![]),
            (
                "Hacker News".to_string(),
                vec![rev("EUR", -5.5, -5.5, 1), rev("JPY", 1500.0, 1500.0, 1)]
            ),
        ],
        "{v}"
    );

    // By entry page (on the visit only): the event's visit's entry page.
    let v = h
        .get(&bd(
            "property=entry_page&metrics=visits,revenue&sort=value:asc".into(),
        ))
        .await;
    assert_eq!(
        revenue_rows(&v),
        [
            ("/".to_string(), vec![rev("EUR", 20.0, 10.0, 2)]),
            ("/product/a".to_string(), vec![rev("EUR", 10.1, 10.1, 1)]),
            (
                "/product/b".to_string(),
                vec![rev("EUR", -5.5, -5.5, 1), rev("JPY", 1500.0, 1500.0, 1)]
            ),
        ],
        "{v}"
    );
    let visits: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["visits"].clone())
        .collect();
    // /product/a: S3 and S4 (DuckDuckGo, started 04-02 23:50).
    assert_eq!(visits, [json!(1), json!(2), json!(1)], "{v}");

    // By page: the page each event was sent on, beside the page views.
    let v = h
        .get(&bd(
            "property=page&metrics=pageviews,revenue&sort=value:asc".into(),
        ))
        .await;
    let rows: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_string(),
                r["pageviews"].as_i64().unwrap(),
                revenue(&r["revenue"]),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("/".to_string(), 1, vec![]),
            ("/account".to_string(), 0, vec![rev("EUR", -5.5, -5.5, 1)]),
            (
                "/checkout".to_string(),
                0,
                vec![rev("EUR", 30.1, 10.03, 3), rev("JPY", 1500.0, 1500.0, 1)]
            ),
            ("/product/a".to_string(), 3, vec![]),
            ("/product/b".to_string(), 1, vec![]),
        ],
        "{v}"
    );
}

/// A visit that started the day before still gives its source the revenue
/// of a purchase made today, though it has no visit today.
#[tokio::test]
async fn revenue_of_a_visit_started_before_the_range_keeps_its_source() {
    let h = shop().await;
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&period=day&date=2026-04-03&property=source&metrics=visits,revenue"
        ))
        .await;
    assert_eq!(
        revenue_rows(&v),
        [("DuckDuckGo".to_string(), vec![rev("USD", 7.0, 7.0, 1)])],
        "{v}"
    );
    assert_eq!(v["results"][0]["visits"], 0, "{v}");
}

/// With a filter on an event name, a breakdown by page shows where those
/// events happened (Plausible's goal pages), not an empty list.
#[tokio::test]
async fn pages_of_a_goal_are_where_its_events_were_sent() {
    let h = shop().await;
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=page&metrics=visitors,events,pageviews&filter=event:name==Purchase"
        ))
        .await;
    assert_eq!(v["total"], 1, "{v}");
    let row = &v["results"][0];
    assert_eq!(
        (
            row["value"].clone(),
            row["visitors"].clone(),
            row["events"].clone(),
            row["pageviews"].clone()
        ),
        (json!("/checkout"), json!(3), json!(4), json!(0)),
        "{v}"
    );
    // `~` as well; `!=` still counts page views (of the pages).
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=page&metrics=events&filter=event:name~sign"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([{"value": "/checkout", "events": 1}]),
        "{v}"
    );
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=page&metrics=pageviews&filter=event:name!=Purchase&sort=value:asc"
        ))
        .await;
    let pages: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].clone())
        .collect();
    assert_eq!(
        pages,
        [json!("/"), json!("/product/a"), json!("/product/b")],
        "{v}"
    );
}

/// `conversion_rate`: the goal's visitors over the visitors without the
/// goal's filters. In the shop's 1–2 April (UTC) there are 4 visitors: v0
/// (Google) and v1 (Hacker News) on the 1st, v2 (direct) and v4
/// (DuckDuckGo, whose Purchase falls on the 3rd) on the 2nd. Purchase: v0, v1,
/// v2; Refund: v1; Signup: v2.
#[tokio::test]
async fn conversion_rate_of_a_goal() {
    let h = shop().await;
    let v = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=visitors,conversion_rate&filter=event:name==Purchase"),
        ))
        .await;
    assert_eq!(
        v["results"],
        json!({"visitors": 3, "conversion_rate": 75.0}),
        "{v}"
    );
    // Other filters stay in the base: of the 1 visitor from Google, 1.
    let v = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=conversion_rate&filter=event:name==Purchase&filter=source==Google"),
        ))
        .await;
    assert_eq!(v["results"], json!({"conversion_rate": 100.0}), "{v}");
    // Per goal: out of all 4 visitors.
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=event:name&metrics=visitors,conversion_rate&sort=value:asc"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([
            {"value": "Purchase", "visitors": 3, "conversion_rate": 75.0},
            {"value": "Refund", "visitors": 1, "conversion_rate": 25.0},
            {"value": "Signup", "visitors": 1, "conversion_rate": 25.0},
        ]),
        "{v}"
    );
    // Per day: out of each day's visitors (1st: 2 of 2; 2nd: 1 of 2).
    let v = h
        .get(&format!(
            "/api/v1/stats/timeseries?site={SHOP}&{APR_1_2}&metrics=conversion_rate&filter=event:name==Purchase"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([
            {"date": "2026-04-01", "conversion_rate": 100.0},
            {"date": "2026-04-02", "conversion_rate": 50.0},
        ]),
        "{v}"
    );
    // Per source: out of that source's visitors; DuckDuckGo's one visitor
    // did not buy in the range, so it has no row (nothing of the goal).
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=source&metrics=visitors,conversion_rate&filter=event:name~sign&sort=value:asc"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([{"value": "(none)", "visitors": 1, "conversion_rate": 100.0}]),
        "{v}"
    );
    // Per page: /checkout was never viewed, only bought on: capped at 100.
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=page&metrics=visitors,conversion_rate&filter=event:name==Purchase"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([{"value": "/checkout", "visitors": 3, "conversion_rate": 100.0}]),
        "{v}"
    );
    // Compared: 1–2 April against 30–31 March (no visitors): 75 from 0.
    let v = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=conversion_rate&filter=event:name==Purchase&compare=previous_period"),
        ))
        .await;
    assert_eq!(v["comparison"]["results"]["conversion_rate"], 0.0, "{v}");
    // Plausible's form: goals, and the change in points.
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site_id={SHOP}&period=custom&date=2026-04-01,2026-04-02&property=event:goal&metrics=visitors,conversion_rate&filters=event:goal%3D%3DPurchase"
        ))
        .await;
    assert_eq!(
        v,
        json!({"results": [{"goal": "Purchase", "visitors": 3, "conversion_rate": 75.0}]}),
        "{v}"
    );
    let v = h
        .get(&format!(
            "/api/v1/stats/aggregate?site_id={SHOP}&period=custom&date=2026-04-01,2026-04-02&metrics=conversion_rate&filters=event:goal%3D%3DPurchase&compare=previous_period"
        ))
        .await;
    assert_eq!(
        v,
        json!({"results": {"conversion_rate": {"value": 75.0, "change": 75.0}}}),
        "{v}"
    );
    // A page as the goal (Plausible's pageview goals): of the 4 visitors,
    // v0, v2 and v4 viewed /product/a; per page, out of all 4.
    let v = h
        .get(&agg(
            SHOP,
            &format!("{APR_1_2}&metrics=visitors,conversion_rate&filter=page==/product/a"),
        ))
        .await;
    assert_eq!(
        v["results"],
        json!({"visitors": 3, "conversion_rate": 75.0}),
        "{v}"
    );
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=page&metrics=visitors,conversion_rate&sort=value:asc"
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([
            {"value": "/", "visitors": 1, "conversion_rate": 25.0},
            {"value": "/product/a", "visitors": 3, "conversion_rate": 75.0},
            {"value": "/product/b", "visitors": 1, "conversion_rate": 25.0},
        ]),
        "{v}"
    );
    let v = h
        .get(&format!(
            "/api/v1/stats/aggregate?site_id={SHOP}&period=custom&date=2026-04-01,2026-04-02&metrics=conversion_rate&filters=event:goal%3D%3DVisit%20/product/a"
        ))
        .await;
    assert_eq!(
        v,
        json!({"results": {"conversion_rate": {"value": 75.0}}}),
        "{v}"
    );
    // Without a goal there is nothing to convert to: a 400 naming it.
    for query in [
        agg(SHOP, &format!("{APR_1_2}&metrics=conversion_rate")),
        agg(
            SHOP,
            &format!("{APR_1_2}&metrics=conversion_rate&filter=source==Google"),
        ),
        format!(
            "/api/v1/stats/breakdown?site={SHOP}&{APR_1_2}&property=source&metrics=conversion_rate"
        ),
        format!("/api/v1/stats/timeseries?site={SHOP}&{APR_1_2}&metrics=conversion_rate"),
    ] {
        let e = h.bad(&query).await;
        assert!(
            e.contains("metrics") && e.contains("conversion_rate needs a goal"),
            "{query}: {e}"
        );
    }
}

/// `(step, visitors, visits, conversion_rate, conversion_rate_step,
/// dropoff)` of each step of a funnel answer.
fn funnel_steps(v: &Value) -> Vec<Value> {
    v["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {v}"))
        .iter()
        .map(|s| {
            json!([
                s["step"],
                s["visitors"],
                s["visits"],
                s["conversion_rate"],
                s["conversion_rate_step"],
                s["dropoff"]
            ])
        })
        .collect()
}

/// Funnels over the main data set's 28–30 March (Berlin): S1 viewed / and
/// /pricing, then signed up {plan: pro}; S3 viewed /; S4 viewed / and
/// downloaded; S5 viewed /pricing then /; S2 and S6 viewed blog posts.
#[tokio::test]
async fn funnel_steps_on_properties_hosts_and_not_equal() {
    let h = harness().await;
    let funnel = |q: &str| format!("/api/v1/stats/funnel?site={BERLIN}&{MAR}&{q}");
    let v = h
        .get(&funnel("step=page%3D%3D/&step=event:props:plan%3D%3Dpro"))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["page==/", 4, 4, 100.0, 100.0, 0]),
            json!(["event:props:plan==pro", 1, 1, 25.0, 25.0, 3]),
        ],
        "{v}"
    );
    // Visits that entered on / only (S5 entered on /pricing).
    let v = h
        .get(&funnel(
            "filter=entry_page%3D%3D/&step=page%3D%3D/&step=event:props:plan%3D%3Dpro",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["page==/", 3, 3, 100.0, 100.0, 0]),
            json!(["event:props:plan==pro", 1, 1, 33.3, 33.3, 2]),
        ],
        "{v}"
    );
    // Any page view on the host, then a custom event other than Signup:
    // S4's download only.
    let v = h
        .get(&funnel(
            "step=hostname%3D%3Dberlin.example&step=event:name!%3DSignup",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["hostname==berlin.example", 6, 6, 100.0, 100.0, 0]),
            json!(["event:name!=Signup", 1, 1, 16.7, 16.7, 5]),
        ],
        "{v}"
    );
}

/// Funnels over the shop's 1–2 April: v0 viewed / and /product/a, then
/// bought twice; v1 viewed /product/b, bought, was refunded; v2 viewed
/// /product/a, bought, signed up; v4 viewed /product/a and bought only on
/// the 3rd.
#[tokio::test]
async fn funnels_count_visits_through_steps_in_order() {
    let h = shop().await;
    let funnel = |q: &str| format!("/api/v1/stats/funnel?site={SHOP}&{APR_1_2}&{q}");
    let v = h
        .get(&funnel(
            "step=page~/product&step=event:name%3D%3DPurchase&step=event:name%3D%3DSignup",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["page~/product", 4, 4, 100.0, 100.0, 0]),
            json!(["event:name==Purchase", 3, 3, 75.0, 75.0, 1]),
            json!(["event:name==Signup", 1, 1, 25.0, 33.3, 2]),
        ],
        "{v}"
    );
    // In order: nobody viewed /product/a after buying.
    let v = h
        .get(&funnel(
            "step=event:name%3D%3DPurchase&step=page%3D%3D/product/a",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["event:name==Purchase", 3, 3, 100.0, 100.0, 0]),
            json!(["page==/product/a", 0, 0, 0.0, 0.0, 3]),
        ],
        "{v}"
    );
    // One event, one step: buying twice is v0's alone.
    let v = h
        .get(&funnel(
            "step=event:name%3D%3DPurchase&step=event:name%3D%3DPurchase",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["event:name==Purchase", 3, 3, 100.0, 100.0, 0]),
            json!(["event:name==Purchase", 1, 1, 33.3, 33.3, 2]),
        ],
        "{v}"
    );
    // Filters keep visits by their own dimensions: from Google, v0 only;
    // several values in a step.
    let v = h
        .get(&funnel(
            "filter=source%3D%3DGoogle&step=page%3D%3D/|/product/b&step=event:name%3D%3DPurchase|Refund",
        ))
        .await;
    assert_eq!(
        funnel_steps(&v),
        [
            json!(["page==/|/product/b", 1, 1, 100.0, 100.0, 0]),
            json!(["event:name==Purchase|Refund", 1, 1, 100.0, 100.0, 0]),
        ],
        "{v}"
    );
    // What is not a funnel: a 400 naming the parameter.
    for (q, param) in [
        ("step=page%3D%3D/", "step"),
        ("step=source%3D%3DGoogle&step=page%3D%3D/", "step"),
        ("step=event:props&step=page%3D%3D/", "step"),
        (
            "step=page%3D%3D/&step=page%3D%3D/x&filter=page%3D%3D/",
            "filter",
        ),
    ] {
        let e = h.bad(&funnel(q)).await;
        assert!(e.starts_with(&format!("{param}:")), "{q}: {e}");
    }
    let nine = ["step=page%3D%3D/"; 9].join("&");
    let e = h.bad(&funnel(&nine)).await;
    assert!(e.starts_with("step: a funnel has 2 to 8 steps"), "{e}");
}

/// `GET /api/v1/export`: the shop's raw events as CSV, in stored order,
/// with an admin token only.
#[tokio::test]
async fn export_streams_the_raw_events_as_csv() {
    let h = shop().await;
    let get = |uri: String, token: String| {
        let router = h.router();
        async move {
            let resp = router
                .oneshot(
                    Request::get(uri)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, headers, text) = get(
        format!("/api/v1/export?site={SHOP}&{APR_1_2}"),
        h.admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"shop.example_2026-04-01_2026-04-02.csv\""
    );
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..5], ["time", "kind", "name", "hostname", "path"]);
    assert!(
        !header.iter().any(|h| h.contains("visitor")),
        "no visitor id"
    );
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    // Beacons 1–11 fall on 1–2 April (the 12th is on the 3rd).
    assert_eq!(records.len(), 11, "{text}");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let first = &records[0];
    assert_eq!(
        (
            &first[col("time")],
            &first[col("kind")],
            &first[col("path")],
            &first[col("source")],
            &first[col("browser_version")],
            &first[col("os_version")],
        ),
        (
            "2026-04-01T10:00:00Z",
            "pageview",
            "/",
            "Google",
            "firefox 133",
            ""
        )
    );
    let refund = &records[6];
    assert_eq!(
        (
            &refund[col("name")],
            &refund[col("revenue_amount")],
            &refund[col("revenue_currency")]
        ),
        ("Refund", "-5.5", "EUR")
    );
    // A name a spreadsheet would run is quoted; numbers are not.
    beacon_at(
        &h,
        "2026-04-02T12:00:00Z",
        3,
        "198.51.100.77",
        r#"{"kind":"event","site":"shop.example","url":"https://shop.example/","name":"=HYPERLINK(\"http://x\")"}"#,
    )
    .await;
    let (_, _, text) = get(
        format!("/api/v1/export?site={SHOP}&{APR_1_2}&filter=event:name~HYPER"),
        h.admin.clone(),
    )
    .await;
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"http://x\"\")\","),
        "{text}"
    );
    // Visits: v0's four events share one.
    assert!(
        records[..4]
            .iter()
            .all(|r| r[col("visit")] == records[0][col("visit")])
    );
    // Filters apply; a share token may not export.
    let (_, _, text) = get(
        format!("/api/v1/export?site={SHOP}&{APR_1_2}&filter=event:name%3D%3DPurchase"),
        h.admin.clone(),
    )
    .await;
    assert_eq!(text.lines().count(), 1 + 4, "{text}");
    let share = {
        let conn = store::schema::open(&h.state.config.db_path()).unwrap();
        let site = sites::get(&conn, SHOP).unwrap().unwrap();
        auth::create(&conn, TokenKind::Share, Some(site.id), 0).unwrap()
    };
    let (status, _, text) = get(format!("/api/v1/export?site={SHOP}"), share).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("admin token"), "{text}");
    let (status, _, text) = get(
        format!("/api/v1/export?site={SHOP}&metrics=visitors"),
        h.admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
}

/// `GET /api/v1/sites`: the sites a token reads, each with the volume
/// check the dashboard warns with (seed 003: silent ingestion failures).
#[tokio::test]
async fn sites_list_the_token_s_sites_with_their_volume_drop() {
    let h = harness_with(&[("drop.example", "UTC"), ("ok.example", "UTC")], &[]).await;
    let body = |site: &str, i: usize| {
        format!(r#"{{"kind":"pageview","site":"{site}","url":"https://{site}/p{i}"}}"#)
    };
    // 120 events on the first day, 10 on the second: a fall of 91.7%.
    for i in 0..120 {
        let at = format!("2026-05-01T10:{:02}:{:02}Z", i / 60, i % 60);
        beacon_at(&h, &at, 0, "203.0.113.1", &body("drop.example", i)).await;
    }
    for i in 0..10 {
        let at = format!("2026-05-02T10:00:{i:02}Z");
        beacon_at(&h, &at, 0, "203.0.113.1", &body("drop.example", i)).await;
        beacon_at(&h, &at, 0, "203.0.113.1", &body("ok.example", i)).await;
    }
    h.clock.set("2026-05-02T12:00:00Z".parse().unwrap());
    let v = h.get("/api/v1/sites").await;
    assert_eq!(
        v,
        json!({"sites": [
            {"domain": "drop.example", "timezone": "UTC", "kept_from": null, "imported": null,
             "volume": {"last_24h": 10, "previous_24h": 120, "dropped_percent": 91.7}},
            {"domain": "ok.example", "timezone": "UTC", "kept_from": null, "imported": null,
             "volume": {"last_24h": 10, "previous_24h": 0, "dropped_percent": null}},
        ]})
    );
    // The share token (made for the last site) sees only its site.
    let (status, v) = h.request("/api/v1/sites", Some(&h.share_utc)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["sites"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["sites"][0]["domain"], "ok.example");
    let (status, _) = h.request("/api/v1/sites", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let e = h.bad("/api/v1/sites?site=drop.example").await;
    assert!(e.starts_with("query") && e.ends_with("takes: none)"), "{e}");

    // Kept one day, the earlier 24 hours reach before the oldest day kept:
    // nothing to compare with, so no drop.
    let conn = store::schema::open(&h._dir.path().join("tallymark.sqlite3")).unwrap();
    sites::set_retention(&conn, "drop.example", Some(1)).unwrap();
    h.state.sites.refresh(&conn).unwrap();
    let v = h.get("/api/v1/sites").await;
    assert_eq!(v["sites"][0]["kept_from"], "2026-05-01", "{v}");
    assert_eq!(
        v["sites"][0]["volume"]["dropped_percent"],
        Value::Null,
        "{v}"
    );
    // Kept two days, the comparison stands.
    sites::set_retention(&conn, "drop.example", Some(2)).unwrap();
    h.state.sites.refresh(&conn).unwrap();
    let v = h.get("/api/v1/sites").await;
    assert_eq!(v["sites"][0]["volume"]["dropped_percent"], 91.7, "{v}");
}

/// `property=event:props`: which property keys the events carry (the
/// dashboard's way to find a goal's properties), filtered like any event
/// breakdown; a filter needs a key.
#[tokio::test]
async fn property_keys_break_down_like_an_event_dimension() {
    let h = harness().await;
    let bd = |q: &str| {
        format!(
            "/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property=event:props&metrics=visitors,events&sort=value:asc{q}"
        )
    };
    let v = h.get(&bd("")).await;
    // Signup (beacon 3) carries plan, seats, annual and "Plan Name";
    // Download (beacon 8) carries file. V1 sent both, under ids a and d.
    assert_eq!(
        v["results"],
        json!([
            {"value": "Plan Name", "visitors": 1, "events": 1},
            {"value": "annual", "visitors": 1, "events": 1},
            {"value": "file", "visitors": 1, "events": 1},
            {"value": "plan", "visitors": 1, "events": 1},
            {"value": "seats", "visitors": 1, "events": 1},
        ]),
        "{v}"
    );
    let v = h.get(&bd("&filter=event:name==Download")).await;
    assert_eq!(
        v["results"],
        json!([{"value": "file", "visitors": 1, "events": 1}]),
        "{v}"
    );
    let e = h
        .bad(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&filter=event:props==plan"
        ))
        .await;
    assert!(
        e.starts_with("filter") && e.contains("event:props:<key>"),
        "{e}"
    );
    let e = h
        .bad(&format!(
            "/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property=event:props&metrics=revenue"
        ))
        .await;
    assert!(e.starts_with("metrics: revenue"), "{e}");
    // A key the ingest took but no filter can name is left out.
    beacon_at(
        &h,
        "2026-11-03T12:00:00Z",
        0,
        "198.51.100.98",
        r#"{"kind":"event","site":"berlin.example","url":"https://berlin.example/","name":"Odd","props":{"ok":"1","a==b":"x","q\"uote":"y"}}"#,
    )
    .await;
    let v = h
        .get(&format!(
            "/api/v1/stats/breakdown?site={BERLIN}&period=day&date=2026-11-03&property=event:props&metrics=events"
        ))
        .await;
    assert_eq!(v["results"], json!([{"value": "ok", "events": 1}]), "{v}");
}

/// Filtered requests read the raw rows either through the (site, time)
/// index or as one run of rowids, whichever is cheaper for the data's
/// layout. The same beacons, once alone (the shop's rows are the run) and
/// once with ten times as many events and visits of another site between
/// them (the index), give the same answers.
#[tokio::test]
async fn raw_rows_read_by_index_or_by_rowid_run_give_the_same_answers() {
    let alone = shop().await;
    // Ten visitors of another site between every two beacons of the shop.
    let mixed = harness_with(&[("noise.example", "UTC"), (SHOP, "UTC")], &[]).await;
    for (i, b) in SHOP_BEACONS.iter().enumerate() {
        for k in 0..10 {
            let ip = format!("203.0.113.{}", i * 10 + k);
            let body =
                r#"{"kind":"pageview","site":"noise.example","url":"https://noise.example/"}"#;
            beacon_at(&mixed, b.at, 6, &ip, body).await;
        }
        beacon_at(&mixed, b.at, b.visitor, VISITORS[b.visitor].ip, b.body).await;
    }
    let all = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";
    let mut queries = Vec::new();
    for filter in [
        "event:name%3D%3DPurchase",
        "page%3D%3D/checkout",
        "source~o",
        "entry_page%3D%3D/product/a",
    ] {
        let f = format!("{APR_1_2}&filter={filter}");
        queries.push(agg(SHOP, &format!("{f}&metrics={all}")));
        for (property, metrics) in [
            ("page", "visitors,visits,pageviews,events"),
            ("source", all),
            ("entry_page", "visitors,visits,bounce_rate"),
            ("event:props", "visitors,events"),
        ] {
            queries.push(format!(
                "/api/v1/stats/breakdown?site={SHOP}&{f}&property={property}&metrics={metrics}"
            ));
        }
    }
    // Funnels read the same rows (in the shop alone, by rowid run; mixed
    // with the other site's, by index).
    for steps in [
        "step=page~/product&step=event:name%3D%3DPurchase&step=event:name%3D%3DSignup",
        "step=event:name%3D%3DPurchase&step=event:name%3D%3DPurchase",
    ] {
        queries.push(format!(
            "/api/v1/stats/funnel?site={SHOP}&{APR_1_2}&{steps}"
        ));
        queries.push(format!(
            "/api/v1/stats/funnel?site={SHOP}&{APR_1_2}&{steps}&filter=entry_page%3D%3D/product/a"
        ));
    }
    // The export's pages: a few rows at a time (by rowid run alone, by the
    // (site, time) index mixed), the same rows as one page, in time order.
    let pages = |h: &Harness, limit: usize| {
        let conn = h.state.store.reader().unwrap();
        let site = sites::get(&conn, SHOP).unwrap().unwrap();
        let (from, to) = ("2026-04-01T00:00:00Z", "2026-04-03T00:00:00Z");
        let q = tallymark_collector::stats::query::Scoped {
            site_id: site.id,
            start_ms: from.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
            end_ms: to.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
            filters: &[],
        };
        let mut cursor = tallymark_collector::stats::query::ExportPages::new(&conn, &q).unwrap();
        let mut rows = Vec::new();
        loop {
            let page =
                tallymark_collector::stats::query::export_page(&conn, &q, &mut cursor, limit)
                    .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= limit);
            rows.extend(page.into_iter().map(|r| (r.ts_ms, r.kind, r.name, r.path)));
        }
        rows
    };
    let whole = pages(&alone, 1000);
    assert_eq!(whole.len(), 11);
    assert!(whole.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
    assert_eq!(pages(&alone, 3), whole);
    assert_eq!(pages(&mixed, 3), whole);
    assert_eq!(pages(&mixed, 1000), whole);
    let mut nonzero = 0;
    for uri in &queries {
        let (a, b) = (alone.get(uri).await, mixed.get(uri).await);
        assert_eq!(a, b, "{uri}");
        if a.to_string().contains("\"visitors\":1") || a.to_string().contains("\"visitors\":2") {
            nonzero += 1;
        }
    }
    // Not a comparison of empty answers.
    assert!(
        nonzero >= queries.len() / 2,
        "{nonzero} of {}",
        queries.len()
    );
}

#[path = "support/clickhouse.rs"]
mod clickhouse_server;

/// The same collector's data, its stats answered from ClickHouse.
async fn with_clickhouse(
    h: &Harness,
    server: &clickhouse_server::ClickHouseServer,
    database: &str,
) -> AppState {
    let state = AppState::open(
        Config {
            rollups: false,
            clickhouse: Some(tallymark_collector::clickhouse::ClickHouseConfig {
                url: server.url.clone(),
                database: database.into(),
            }),
            ..h.state.config.clone()
        },
        h.clock.clone(),
    )
    .unwrap();
    let events: i64 = rusqlite::Connection::open(h.state.store.path())
        .unwrap()
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    // The background shipper may have sent some already; together, all.
    state.ship_all().await.unwrap();
    let ch = &state.analytics.as_ref().unwrap().ch;
    let shipped = ch
        .rows(&format!("SELECT count() FROM {}", ch.table("events")))
        .unwrap();
    assert_eq!(
        tallymark_collector::clickhouse::int(&shipped[0][0]),
        events,
        "every event once"
    );
    state
}

/// Regions and cities, as a city database would have given them (the data
/// set's addresses are in none; `tests/tests/geo.rs` reads real ones): by
/// country, a region without a city (FR), a city in a region of its own
/// name (DE) and one in another (US), on events and visits alike.
fn place_visits(h: &Harness) {
    let conn = rusqlite::Connection::open(h.state.store.path()).unwrap();
    for table in ["events", "sessions"] {
        conn.execute_batch(&format!(
            "UPDATE {table} SET
                region = CASE country WHEN 'DE' THEN 'Berlin' WHEN 'FR' THEN 'Île-de-France'
                    WHEN 'US' THEN 'Oregon' END,
                city = CASE country WHEN 'DE' THEN 'Berlin' WHEN 'US' THEN 'Portland' END"
        ))
        .unwrap();
    }
}

/// Regions and cities: in their country (and region), by name in
/// Plausible's APIs, filtered by name alone there.
#[tokio::test]
async fn regions_and_cities_are_named_in_their_country() {
    let h = harness().await;
    place_visits(&h);
    let by = |property: &str| {
        format!("/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property={property}&metrics=visitors")
    };
    let country = h.get(&by("country")).await;
    let visitors = |code: &str| row_of(&country, code)["visitors"].as_i64().unwrap();
    let (de, fr, us) = (visitors("DE"), visitors("FR"), visitors("US"));
    let region = h.get(&by("region")).await;
    assert_eq!(row_of(&region, "DE Berlin")["visitors"], de, "{region}");
    assert_eq!(
        row_of(&region, "FR Île-de-France")["visitors"],
        fr,
        "{region}"
    );
    let city = h.get(&by("city")).await;
    assert_eq!(row_of(&city, "DE Berlin, Berlin")["visitors"], de, "{city}");
    assert_eq!(
        row_of(&city, "US Portland, Oregon")["visitors"],
        us,
        "{city}"
    );
    assert_eq!(
        city["results"].as_array().unwrap().len(),
        3,
        "Berlin, Portland and (none): {city}"
    );
    let filtered = h
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&metrics=visitors&filter=city%3D%3DUS%20Portland,%20Oregon|DE%20Berlin,%20Berlin"
        ))
        .await;
    assert_eq!(filtered["results"]["visitors"], de + us);

    // Plausible v1: names, and filters by the name alone.
    let plausible = |query: &str| {
        format!(
            "/api/v1/stats/breakdown?site_id={BERLIN}&period=custom&date=2026-03-28,2026-03-30&{query}"
        )
    };
    let rows = h.get(&plausible("property=visit:city_name")).await;
    let cities: Vec<(String, i64)> = rows["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["city_name"].as_str().unwrap().to_string(),
                r["visitors"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(cities.contains(&("Berlin".into(), de)), "{rows}");
    assert!(cities.contains(&("Portland".into(), us)), "{rows}");
    let rows = h
        .get(&plausible(
            "property=visit:region&filters=visit:city%3D%3DBerlin",
        ))
        .await;
    assert_eq!(
        rows["results"],
        json!([{"region": "Berlin", "visitors": de}])
    );
    let rows = h
        .get(&plausible(
            "property=visit:country&filters=visit:region_name~France",
        ))
        .await;
    assert_eq!(rows["results"], json!([{"country": "FR", "visitors": fr}]));
    // A city's name is its own, not its region's.
    let rows = h
        .get(&plausible(
            "property=visit:country&filters=visit:city_name%3D%3DOregon",
        ))
        .await;
    assert_eq!(rows["results"], json!([]));
    let e = h
        .bad(&plausible(
            "property=visit:city&filters=visit:region%3D%3DDE-BE",
        ))
        .await;
    assert!(e.contains("looks like a code"), "{e}");

    // v2: ordered by the name, as Plausible orders it.
    let (status, v2) = h
        .post_json(
            "/api/v2/query",
            &json!({
                "site_id": BERLIN, "metrics": ["visitors"], "date_range": ["2026-03-28", "2026-03-30"],
                "dimensions": ["visit:city_name"], "order_by": [["visit:city_name", "desc"]],
                "filters": [["is_not", "visit:city_name", ["(none)"]]],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(
        v2["results"],
        json!([
            {"dimensions": ["Portland"], "metrics": [us]},
            {"dimensions": ["Berlin"], "metrics": [de]},
        ])
    );
}

/// ClickHouse (Debian's 18.16, started for the test) answers every query of
/// the rollup comparison, and filters of every operator and kind, hourly
/// buckets over both DST days, properties and goals, exactly as SQLite's
/// raw rows do.
#[tokio::test]
async fn clickhouse_answers_exactly_what_sqlite_answers() {
    let server = clickhouse_server::ClickHouseServer::start();
    let h = harness().await;
    place_visits(&h);
    let raw_state = without_rollups(&h);
    let ch_state = with_clickhouse(&h, &server, "tallymark_test").await;
    let mut queries = comparison_queries();
    let all = ALL_METRICS;
    for site in [BERLIN, UTC_SITE] {
        for period in [
            MAR,
            "period=custom&from=2026-10-24&to=2026-10-26",
            "period=year&date=2026-06-01",
        ] {
            for filter in [
                "page==/pricing",
                "page!=/pricing",
                "page~PRIC",
                "entry_page==/",
                "exit_page!=/",
                "source!=Google",
                "source==(none)",
                "utm_campaign!=(none)",
                "event:name==Signup",
                "event:name~sign",
                "event:props:plan==pro",
                "browser==firefox;country==DE",
                "page~PRIC|blog",
                "country==DE|(none)",
                "source!=Google|(none)",
                "event:name==Signup|Nope",
                "browser_version==firefox 133|chrome 131",
                "os_version==ios 17.5|(none)",
                "region==DE Berlin",
                "region!=FR Île-de-France",
                "city==US Portland, Oregon|(none)",
                "city_name==Portland",
                "region_name!=Berlin",
                "city~berlin",
                "page==/blog/*|/",
                "page!=/pri*",
                "referrer==*google*",
            ] {
                let f = filter
                    .split(';')
                    .map(|f| format!("filter={}", urlencode(f)))
                    .collect::<Vec<_>>()
                    .join("&");
                queries.push(format!(
                    "/api/v1/stats/aggregate?site={site}&{period}&metrics={all}&compare=previous_period&{f}"
                ));
                if filter.starts_with("event:name") {
                    queries.push(format!(
                        "/api/v1/stats/aggregate?site={site}&{period}&metrics=visitors,conversion_rate&compare=previous_period&{f}"
                    ));
                    for property in ["source", "page", "event:props:plan"] {
                        queries.push(format!(
                            "/api/v1/stats/breakdown?site={site}&{period}&property={property}&metrics=visitors,conversion_rate&{f}"
                        ));
                    }
                }
                for property in [
                    "page",
                    "source",
                    "entry_page",
                    "event:name",
                    "region",
                    "city",
                ] {
                    let metrics = match property {
                        "page" | "event:name" => "visitors,visits,pageviews,events",
                        "entry_page" => "visitors,visits,bounce_rate,visit_duration",
                        _ => all,
                    };
                    queries.push(format!(
                        "/api/v1/stats/breakdown?site={site}&{period}&property={property}&metrics={metrics}&{f}"
                    ));
                }
            }
            queries.push(format!(
                "/api/v1/stats/breakdown?site={site}&{period}&property=event:props&metrics=visitors,visits,events"
            ));
            // Funnels: in order, one event per step (a step twice needs two
            // views), under visit filters.
            for steps in [
                ["page==/", "page==/pricing", "event:name==Signup"].as_slice(),
                &["page==/", "page==/"],
                &["event:name==Signup", "page==/"],
                &["page~blog", "page!=/blog/*", "event:name==Signup|Nope"],
                &[
                    "event:props:plan!=free",
                    "hostname==(none)|berlin.example|utc.example",
                ],
                &["hostname~example", "event:props:plan==pro"],
                // Eight steps: the last bit and the deepest chain.
                &["page==/"; 8],
            ] {
                let steps: String = steps
                    .iter()
                    .map(|s| format!("&step={}", urlencode(s)))
                    .collect();
                for filter in ["", "&filter=country%3D%3DDE", "&filter=entry_page!%3D/"] {
                    queries.push(format!(
                        "/api/v1/stats/funnel?site={site}&{period}{steps}{filter}"
                    ));
                }
            }
            queries.push(format!(
                "/api/v1/stats/breakdown?site={site}&{period}&property=event:props:plan&metrics=visitors,visits,events"
            ));
        }
        for day in ["2026-03-29", "2026-10-25", "2026-03-28"] {
            queries.push(format!(
                "/api/v1/stats/timeseries?site={site}&period=day&date={day}&interval=hour&metrics={all}"
            ));
        }
    }
    let raw = answers_of(&h, &raw_state, &queries).await;
    let from_ch = answers_of(&h, &ch_state, &queries).await;
    for ((uri, a), b) in queries.iter().zip(&raw).zip(&from_ch) {
        assert_eq!(a, b, "clickhouse differs from sqlite for {uri}");
    }
    // The funnels are not all empty: some visits went two steps.
    let funnels: Vec<&Value> = queries
        .iter()
        .zip(&raw)
        .filter(|(uri, _)| uri.contains("/funnel?"))
        .map(|(_, a)| a)
        .collect();
    assert!(
        funnels
            .iter()
            .any(|f| f["steps"][1]["visits"].as_i64() > Some(0))
    );
    assert!(
        funnels
            .iter()
            .any(|f| f["steps"][2]["visitors"].as_i64() > Some(0))
    );
    // ClickHouse answered them all (a failed query falls back to SQLite).
    assert_eq!(ch_state.metrics.clickhouse_query_failures.get(), 0);
    assert!(ch_state.metrics.clickhouse_queries.get() as usize >= queries.len());
    // Realtime: the last five minutes, at a moment with visitors in them.
    let first: jiff::Timestamp = BEACONS[0].at.parse().unwrap();
    h.clock.set(first + jiff::SignedDuration::from_mins(1));
    let rt = [format!("/api/v1/stats/realtime?site={BERLIN}")];
    let from_ch = answers_of(&h, &ch_state, &rt).await;
    assert_eq!(answers_of(&h, &raw_state, &rt).await, from_ch);
    assert!(from_ch[0]["visitors"].as_i64() > Some(0), "{}", from_ch[0]);

    // The shop: counts from ClickHouse beside revenue (always from SQLite's
    // revenue index), in every shape.
    let shop = shop().await;
    let shop_raw = without_rollups(&shop);
    let shop_ch = with_clickhouse(&shop, &server, "tallymark_shop").await;
    let mut queries = Vec::new();
    for period in [
        "period=year&date=2026-06-01",
        "period=custom&from=2026-04-01&to=2026-04-03",
    ] {
        queries.push(format!(
            "/api/v1/stats/aggregate?site={SHOP}&{period}&metrics=revenue,events&compare=previous_period"
        ));
        queries.push(format!(
            "/api/v1/stats/timeseries?site={SHOP}&{period}&interval=day&metrics=revenue,events"
        ));
        for property in [
            "event:name",
            "page",
            "source",
            "entry_page",
            "event:props:plan",
        ] {
            queries.push(format!(
                "/api/v1/stats/breakdown?site={SHOP}&{period}&property={property}&metrics=revenue,visitors&sort=revenue:desc"
            ));
        }
        queries.push(format!(
            "/api/v1/stats/breakdown?site={SHOP}&{period}&property=page&metrics=revenue,events&filter=event:name%3D%3DPurchase"
        ));
    }
    let raw = answers_of(&shop, &shop_raw, &queries).await;
    let from_ch = answers_of(&shop, &shop_ch, &queries).await;
    for ((uri, a), b) in queries.iter().zip(&raw).zip(&from_ch) {
        assert_eq!(a, b, "clickhouse differs from sqlite for {uri}");
    }
    assert_eq!(shop_ch.metrics.clickhouse_query_failures.get(), 0);
    assert!(shop_ch.metrics.clickhouse_queries.get() > 0);
}

/// Plausible's Stats API (v1) form of a request gets the same numbers as
/// Tallymark's own, in Plausible's shape.
#[tokio::test]
async fn plausibles_stats_api_answers_with_the_same_numbers() {
    let h = harness().await;
    let plausible = |path: &str, q: &str| format!("/api/v1/stats/{path}?site_id={BERLIN}&{q}");
    let native = |path: &str, q: &str| format!("/api/v1/stats/{path}?site={BERLIN}&{q}");

    // Aggregate, with the previous period.
    let p = h
        .get(&plausible("aggregate", "period=day&date=2026-03-29&metrics=visitors,pageviews,bounce_rate,visit_duration&compare=previous_period"))
        .await;
    let n = h
        .get(&native("aggregate", "period=day&date=2026-03-29&metrics=visitors,pageviews,bounce_rate,visit_duration&compare=previous_period"))
        .await;
    assert_eq!(
        p,
        // Changes as Plausible states them (03-29 against 03-28, see
        // `compare_with_the_previous_period`): whole percents, and the bounce
        // rate's difference in points (33.3 − 0).
        json!({"results": {
            "visitors": {"value": n["results"]["visitors"], "change": 100},
            "pageviews": {"value": n["results"]["pageviews"], "change": 33},
            "bounce_rate": {"value": n["results"]["bounce_rate"], "change": 33.3},
            "visit_duration": {"value": n["results"]["visit_duration"], "change": -81},
        }})
    );
    assert_eq!(
        p["results"]["visitors"]["value"], 4,
        "hand-checked: 03-29 has 4"
    );
    // Without metrics, Plausible's default: visitors.
    let p = h
        .get(&plausible(
            "aggregate",
            "period=custom&date=2026-03-28,2026-03-30",
        ))
        .await;
    let n = h.get(&native("aggregate", MAR)).await;
    assert_eq!(
        p,
        json!({"results": {"visitors": {"value": n["results"]["visitors"]}}})
    );

    // Timeseries: the same rows under "results".
    let p = h
        .get(&plausible(
            "timeseries",
            "period=custom&date=2026-03-28,2026-03-30&interval=date&metrics=visitors,pageviews",
        ))
        .await;
    let n = h
        .get(&native(
            "timeseries",
            &format!("{MAR}&interval=day&metrics=visitors,pageviews"),
        ))
        .await;
    assert_eq!(p["results"], n["results"]);
    assert_eq!(p["results"].as_array().map(Vec::len), Some(3));
    let p = h
        .get(&plausible("timeseries", "period=day&date=2026-03-29"))
        .await;
    assert_eq!(
        p["results"][3]["date"], "2026-03-29 04:00:00",
        "local hours, Plausible's format"
    );

    // Breakdowns: rows keyed by the property; filters joined with ';'.
    for (property, dimension, key) in [
        ("visit:source", "source", "source"),
        ("event:page", "page", "page"),
        ("visit:country", "country", "country"),
        ("event:goal", "event:name", "goal"),
        ("visit:entry_page", "entry_page", "entry_page"),
    ] {
        let p = h
            .get(&plausible("breakdown", &format!("period=custom&date=2026-03-28,2026-03-30&property={property}&metrics=visitors,visits")))
            .await;
        let n = h
            .get(&native(
                "breakdown",
                &format!("{MAR}&property={dimension}&metrics=visitors,visits"),
            ))
            .await;
        let rows = n["results"].as_array().cloned().unwrap_or_default();
        assert!(!rows.is_empty(), "{property}");
        let want: Vec<Value> = rows
            .iter()
            .map(|r| {
                let value = match r["value"].as_str() {
                    Some("(none)") if dimension == "source" => "Direct / None",
                    other => other.unwrap_or_default(),
                };
                json!({key: value, "visitors": r["visitors"], "visits": r["visits"]})
            })
            .collect();
        assert_eq!(p["results"], json!(want), "{property}");
    }
    let p = h
        .get(&plausible("breakdown", "period=custom&date=2026-03-28,2026-03-30&property=visit:device&filters=visit:country%3D%3DDE;event:page!%3D/blog/b"))
        .await;
    let n = h
        .get(&native(
            "breakdown",
            &format!("{MAR}&property=device&filter=country==DE&filter=page!%3D/blog/b"),
        ))
        .await;
    let titled: Vec<Value> = n["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let label = r["value"].as_str().unwrap_or_default();
            let title = label[..1].to_uppercase() + &label[1..];
            json!({"device": title, "visitors": r["visitors"]})
        })
        .collect();
    assert!(!titled.is_empty());
    assert_eq!(
        p["results"],
        json!(titled),
        "display names, as Plausible shows them"
    );
    // Filters take display names too.
    let p = h
        .get(&plausible(
            "aggregate",
            "period=custom&date=2026-03-28,2026-03-30&filters=visit:device%3D%3DMobile",
        ))
        .await;
    let n = h
        .get(&native(
            "aggregate",
            &format!("{MAR}&filter=device==mobile&metrics=visitors"),
        ))
        .await;
    assert_eq!(p["results"]["visitors"]["value"], n["results"]["visitors"]);

    // Realtime: a bare number.
    h.clock.set("2026-10-25T01:33:00Z".parse().unwrap());
    let p = h
        .get(&format!("/api/v1/stats/realtime/visitors?site_id={BERLIN}"))
        .await;
    assert_eq!(p, json!(1));

    // Browser versions: Plausible's browser and version keys.
    let p = h
        .get(&plausible(
            "breakdown",
            "period=custom&date=2026-03-28,2026-03-30&property=visit:browser_version&filters=visit:browser%3D%3DFirefox|Safari",
        ))
        .await;
    assert_eq!(
        p,
        json!({"results": [
            {"browser": "Firefox", "browser_version": "133", "visitors": 3},
            {"browser": "Safari", "browser_version": "17", "visitors": 2},
        ]}),
        "{p}"
    );
    // OS versions likewise: iOS 17.5 and Windows 10 (NT 10.0) state theirs,
    // Linux none.
    let p = h
        .get(&plausible(
            "breakdown",
            "period=custom&date=2026-03-28,2026-03-30&property=visit:os_version&filters=visit:os%3D%3DiOS|Windows",
        ))
        .await;
    let n = h
        .get(&native(
            "breakdown",
            &format!("{MAR}&property=os&metrics=visitors&filter=os%3D%3Dios|windows"),
        ))
        .await;
    let by_os = |os: &str| row_of(&n, os)["visitors"].clone();
    // By visitors, most first.
    assert_eq!(
        p["results"].as_array().cloned().unwrap_or_default(),
        [
            json!({"os": "iOS", "os_version": "17.5", "visitors": by_os("ios")}),
            json!({"os": "Windows", "os_version": "10", "visitors": by_os("windows")}),
        ],
        "{p} {n}"
    );
    // Countries by name: the code's English name, and filters by name.
    let p = h
        .get(&plausible(
            "breakdown",
            "period=custom&date=2026-03-28,2026-03-30&property=visit:country_name",
        ))
        .await;
    let n = h
        .get(&native(
            "breakdown",
            &format!("{MAR}&property=country&metrics=visitors"),
        ))
        .await;
    let named: Vec<Value> = n["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = match r["value"].as_str() {
                Some("DE") => "Germany",
                Some("FR") => "France",
                Some("US") => "United States",
                other => other.unwrap_or_default(),
            };
            json!({"country_name": name, "visitors": r["visitors"]})
        })
        .collect();
    assert!(named.len() >= 3, "{n}");
    assert_eq!(p["results"], json!(named), "{p}");
    let e = h
        .bad(&plausible(
            "aggregate",
            "filters=visit:country_name%3D%3DAtlantis",
        ))
        .await;
    assert!(
        e.starts_with("filters:") && e.contains("not a country name"),
        "{e}"
    );

    // A version filter is Plausible's number alone, of any browser or OS:
    // the same visits as Tallymark's own filter naming it; a country's name
    // is its code.
    for (theirs, ours) in [
        (
            "visit:browser_version%3D%3D133",
            "browser_version%3D%3Dfirefox%20133",
        ),
        ("visit:os_version%3D%3D17.5", "os_version%3D%3Dios%2017.5"),
        ("visit:os_version%3D%3D10|17.5", "os%3D%3Dwindows|ios"),
        ("visit:os_version!%3D10", "os!%3Dwindows"),
        ("visit:os_version%3D%3D17", "os%3D%3Dnone-such"),
        ("visit:os_version~7.", "os%3D%3Dios"),
        ("visit:os_version~os", "os%3D%3Dnone-such"),
        // Countries by name.
        ("visit:country_name%3D%3DGermany", "country%3D%3DDE"),
        ("visit:country_name~germ", "country%3D%3DDE"),
        (
            "visit:country_name%3D%3DUnited%20*",
            "country%3D%3DUS|GB|AE|UM",
        ),
        ("visit:country_name%3D%3DXK", "country%3D%3DXK"),
        (
            "visit:country_name%3D%3Dunited%20states|France",
            "country%3D%3DUS|FR",
        ),
        ("visit:country_name!%3DGermany", "country!%3DDE"),
    ] {
        let p = h
            .get(&plausible(
                "aggregate",
                &format!("period=custom&date=2026-03-28,2026-03-30&metrics=visitors,pageviews&filters={theirs}"),
            ))
            .await;
        let n = h
            .get(&native(
                "aggregate",
                &format!("{MAR}&metrics=visitors,pageviews&filter={ours}"),
            ))
            .await;
        assert_eq!(
            (
                &p["results"]["visitors"]["value"],
                &p["results"]["pageviews"]["value"]
            ),
            (&n["results"]["visitors"], &n["results"]["pageviews"]),
            "{theirs}: {p} {n}"
        );
    }
    let e = h
        .bad(&plausible(
            "aggregate",
            "filters=visit:browser_version%3D%3DChrome%20133",
        ))
        .await;
    assert!(
        e.starts_with("filters:") && e.contains("the number alone"),
        "{e}"
    );

    // Several values (`|`): any of them, as the native filter.
    let p = h
        .get(&plausible(
            "aggregate",
            "period=custom&date=2026-03-28,2026-03-30&metrics=visitors,pageviews&filters=visit:country%3D%3DDE|US",
        ))
        .await;
    let n = h
        .get(&native(
            "aggregate",
            &format!("{MAR}&metrics=visitors,pageviews&filter=country%3D%3DDE|US"),
        ))
        .await;
    assert_eq!(
        p["results"]["visitors"]["value"], n["results"]["visitors"],
        "{p} {n}"
    );
    assert_eq!(
        p["results"]["pageviews"]["value"], n["results"]["pageviews"],
        "{p} {n}"
    );
    assert!(n["results"]["visitors"].as_i64() > Some(0), "{n}");

    // What has no counterpart is a 400 naming it; a share token still
    // reads only its site.
    // Wildcards, as the native filter.
    let p = h
        .get(&plausible(
            "aggregate",
            "period=custom&date=2026-03-28,2026-03-30&metrics=visitors,pageviews&filters=event:page%3D%3D/blog/**",
        ))
        .await;
    assert_eq!(
        p,
        json!({"results": {"visitors": {"value": 2}, "pageviews": {"value": 3}}}),
        "{p}"
    );
    let e = h
        .bad(&plausible("aggregate", "filters=visit:browser%3D%3DChrom*"))
        .await;
    assert!(e.starts_with("filters:"), "{e}");
    let e = h
        .bad(&plausible("breakdown", "property=visit:continent"))
        .await;
    assert!(e.starts_with("property:"), "{e}");
    let (status, _) = h
        .request(&plausible("aggregate", "period=day"), Some(&h.share_utc))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn six_and_twelve_month_periods_are_calendar_months() {
    let h = harness().await;
    let r = h
        .get(&agg(
            BERLIN,
            "period=6mo&date=2026-03-10&compare=previous_period&metrics=visitors",
        ))
        .await;
    assert_eq!(r["period"]["from"], "2025-10-01");
    assert_eq!(r["period"]["to"], "2026-03-31");
    assert_eq!(r["comparison"]["period"]["from"], "2025-04-01");
    assert_eq!(r["comparison"]["period"]["to"], "2025-09-30");
    let whole = h
        .get(&agg(
            BERLIN,
            "period=custom&from=2025-10-01&to=2026-03-31&metrics=visitors",
        ))
        .await;
    assert_eq!(r["results"], whole["results"]);
    let r = h
        .get(&format!(
            "/api/v1/stats/timeseries?site={BERLIN}&period=12mo&date=2026-10-25"
        ))
        .await;
    let dates: Vec<&str> = r["results"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["date"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(dates.len(), 12, "monthly buckets by default: {dates:?}");
    assert_eq!((dates[0], dates[11]), ("2025-11-01", "2026-10-01"));
}

/// A site's subdomains, apart: `hostname` (the page's host without `www.`).
const MULTI: [Beacon; 4] = [
    Beacon {
        at: "2026-03-28T09:00:00Z",
        visitor: 0,
        body: r#"{"kind":"pageview","site":"multi.example","url":"https://multi.example/"}"#,
    },
    Beacon {
        at: "2026-03-28T09:01:00Z",
        visitor: 0,
        body: r#"{"kind":"pageview","site":"multi.example","url":"https://docs.multi.example/start"}"#,
    },
    Beacon {
        at: "2026-03-28T10:00:00Z",
        visitor: 1,
        body: r#"{"kind":"pageview","site":"multi.example","url":"https://www.multi.example/pricing"}"#,
    },
    Beacon {
        at: "2026-03-28T10:01:00Z",
        visitor: 1,
        body: r#"{"kind":"event","site":"multi.example","url":"https://app.multi.example/join","name":"Signup"}"#,
    },
];

#[tokio::test]
async fn hostnames_break_down_and_filter() {
    let h = harness_with(&[("multi.example", "UTC")], &MULTI).await;
    let day = "site=multi.example&period=day&date=2026-03-28";
    let r = h
        .get(&format!(
            "/api/v1/stats/breakdown?{day}&property=hostname&metrics=visitors,pageviews,events"
        ))
        .await;
    assert_eq!(
        r["results"],
        json!([
            {"value": "multi.example", "visitors": 2, "pageviews": 2, "events": 2},
            {"value": "app.multi.example", "visitors": 1, "pageviews": 0, "events": 1},
            {"value": "docs.multi.example", "visitors": 1, "pageviews": 1, "events": 1},
        ])
    );
    let r = h
        .get(&format!(
            "/api/v1/stats/aggregate?{day}&filter=hostname==docs.multi.example&metrics=visitors,visits,pageviews"
        ))
        .await;
    assert_eq!(
        r["results"],
        json!({"visitors": 1, "visits": 1, "pageviews": 1})
    );
    let r = h
        .get(&format!(
            "/api/v1/stats/breakdown?{day}&property=page&filter=hostname!%3Dmulti.example&metrics=visitors"
        ))
        .await;
    assert_eq!(r["results"], json!([{"value": "/start", "visitors": 1}]));
    // Plausible's name for it.
    let r = h
        .get("/api/v1/stats/breakdown?site_id=multi.example&period=day&date=2026-03-28&property=event:hostname")
        .await;
    assert_eq!(
        r["results"][0],
        json!({"hostname": "multi.example", "visitors": 2})
    );
}

/// Engagement: time on a page and how far down it was read, per visit of
/// the page, then averaged (a ping with no visit going on is dropped:
/// `collector/tests/ingest.rs`).
const READ: [Beacon; 7] = [
    Beacon {
        at: "2026-03-28T09:00:00Z",
        visitor: 0,
        body: r#"{"kind":"pageview","site":"read.example","url":"https://read.example/a"}"#,
    },
    Beacon {
        at: "2026-03-28T09:01:00Z",
        visitor: 0,
        body: r#"{"kind":"engagement","site":"read.example","url":"https://read.example/a","engaged_ms":60000,"scroll_depth":50}"#,
    },
    Beacon {
        at: "2026-03-28T09:02:00Z",
        visitor: 0,
        body: r#"{"kind":"engagement","site":"read.example","url":"https://read.example/a","engaged_ms":30000,"scroll_depth":80}"#,
    },
    Beacon {
        at: "2026-03-28T09:02:30Z",
        visitor: 0,
        body: r#"{"kind":"pageview","site":"read.example","url":"https://read.example/b"}"#,
    },
    Beacon {
        at: "2026-03-28T09:03:00Z",
        visitor: 0,
        body: r#"{"kind":"engagement","site":"read.example","url":"https://read.example/b","engaged_ms":20000}"#,
    },
    Beacon {
        at: "2026-03-28T10:00:00Z",
        visitor: 1,
        body: r#"{"kind":"pageview","site":"read.example","url":"https://read.example/a"}"#,
    },
    Beacon {
        at: "2026-03-28T10:01:00Z",
        visitor: 1,
        body: r#"{"kind":"engagement","site":"read.example","url":"https://read.example/a","engaged_ms":30000,"scroll_depth":40}"#,
    },
];

#[tokio::test]
async fn time_on_page_and_scroll_depth_per_page() {
    let h = harness_with(&[("read.example", "UTC")], &READ).await;
    let day = "site=read.example&period=day&date=2026-03-28";
    let pages = |extra: &str| {
        format!(
            "/api/v1/stats/breakdown?{day}&property=page&metrics=visitors,pageviews,time_on_page,scroll_depth{extra}"
        )
    };
    // /a: visits (90 s, deepest 80 %) and (30 s, 40 %): 60 s, 60 %.
    // /b: one visit, 20 s, no scroll reported.
    let r = h.get(&pages("")).await;
    assert_eq!(
        r["results"],
        json!([
            {"value": "/a", "visitors": 2, "pageviews": 2, "time_on_page": 60, "scroll_depth": 60},
            {"value": "/b", "visitors": 1, "pageviews": 1, "time_on_page": 20, "scroll_depth": null},
        ])
    );
    // Sorted by time on page; filtered by page and by the visit.
    let r = h.get(&pages("&sort=time_on_page:asc")).await;
    assert_eq!(column(&r, "time_on_page"), [json!(20), json!(60)]);
    let r = h.get(&pages("&filter=page==/a")).await;
    assert_eq!(r["results"].as_array().map(Vec::len), Some(1));
    let r = h.get(&pages("&filter=entry_page!%3D/a")).await;
    assert_eq!(r["results"], json!([]));
    // Views and events are as they were: engagement is neither.
    let r = h
        .get(&format!("/api/v1/stats/aggregate?{day}&metrics=visitors,visits,pageviews,events,bounce_rate,visit_duration"))
        .await;
    assert_eq!(
        r["results"],
        json!({"visitors": 2, "visits": 2, "pageviews": 3, "events": 3, "bounce_rate": 50.0, "visit_duration": 75})
    );
    // Per page only, and not under a goal.
    let e = h
        .bad(&format!(
            "/api/v1/stats/aggregate?{day}&metrics=time_on_page"
        ))
        .await;
    assert!(e.starts_with("metrics: time_on_page is per page"), "{e}");
    let e = h
        .bad(&format!(
            "/api/v1/stats/breakdown?{day}&property=source&metrics=scroll_depth"
        ))
        .await;
    assert!(
        e.starts_with("metrics: scroll_depth is not available"),
        "{e}"
    );
    let e = h.bad(&pages("&filter=event:name==Signup")).await;
    assert!(
        e.starts_with("filter: event:name: time_on_page and scroll_depth are not split"),
        "{e}"
    );
    // Plausible's API names it the same.
    let r = h
        .get("/api/v1/stats/breakdown?site_id=read.example&period=day&date=2026-03-28&property=event:page&metrics=time_on_page")
        .await;
    assert_eq!(r["results"][0], json!({"page": "/a", "time_on_page": 60}));
}

/// Time on page and scroll depth from ClickHouse: its copy of the
/// engagement rows answers as SQLite's rows do, under every kind of filter.
#[tokio::test]
async fn clickhouse_answers_time_on_page_as_sqlite_does() {
    let server = clickhouse_server::ClickHouseServer::start();
    let h = harness_with(&[("read.example", "UTC")], &READ).await;
    let raw_state = without_rollups(&h);
    let ch_state = with_clickhouse(&h, &server, "tallymark_engagement").await;
    let ch = &ch_state.analytics.as_ref().unwrap().ch;
    let rows = ch
        .rows(&format!("SELECT count() FROM {}", ch.table("engagements")))
        .unwrap();
    assert_eq!(
        tallymark_collector::clickhouse::int(&rows[0][0]),
        4,
        "every engagement row once"
    );
    let day = "site=read.example&period=day&date=2026-03-28";
    let mut queries = Vec::new();
    for filter in [
        "",
        "&filter=page==/a",
        "&filter=page!%3D/a",
        "&filter=hostname==read.example",
        "&filter=entry_page!%3D/a",
        "&filter=entry_page==/a",
        "&filter=source==(none)",
        "&filter=browser==firefox",
    ] {
        queries.push(format!(
            "/api/v1/stats/breakdown?{day}&property=page&metrics=visitors,pageviews,time_on_page,scroll_depth{filter}"
        ));
    }
    let before = ch_state.metrics.clickhouse_queries.get();
    let raw = answers_of(&h, &raw_state, &queries).await;
    let from_ch = answers_of(&h, &ch_state, &queries).await;
    for ((uri, a), b) in queries.iter().zip(&raw).zip(&from_ch) {
        assert_eq!(a, b, "clickhouse differs from sqlite for {uri}");
    }
    assert_eq!(
        raw[0]["results"][0],
        json!({"value": "/a", "visitors": 2, "pageviews": 2, "time_on_page": 60, "scroll_depth": 60})
    );
    assert_eq!(ch_state.metrics.clickhouse_query_failures.get(), 0);
    // Each answer asked ClickHouse for its engagement (and its counts).
    let asked = ch_state.metrics.clickhouse_queries.get() - before;
    assert_eq!(asked, 2 * queries.len() as u64);
}

/// `--retention-days`: a site's rows from before its local midnight N days
/// ago go (events, visits, engagement, rollups), every answer about a day
/// kept is unchanged, and deleted event ids are never given again.
#[tokio::test]
async fn past_the_retention_period_rows_go_and_kept_days_answer_the_same() {
    let h = harness().await;
    let kept_periods = [
        "period=day&date=2026-03-29",
        "period=day&date=2026-03-30",
        "period=custom&from=2026-03-29&to=2026-03-30",
    ];
    // About kept days only (a comparison would reach back into 03-28).
    let kept: Vec<String> = comparison_queries()
        .into_iter()
        .filter(|q| kept_periods.iter().any(|p| q.contains(&format!("{p}&"))))
        .map(|q| q.replace("&compare=previous_period", ""))
        .collect();
    assert!(kept.len() > 100, "{}", kept.len());
    let raw_state = without_rollups(&h);
    let before_raw = answers_of(&h, &raw_state, &kept).await;
    // After the data set's last day (in October), every day rolled up.
    h.clock.set("2026-11-01T10:00:00Z".parse().unwrap());
    while h.state.roll_up(1000, true).await.unwrap() > 0 {}
    let before = answers_of(&h, &h.state, &kept).await;
    assert_eq!(before, before_raw);

    let conn = rusqlite::Connection::open(h.state.store.path()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let newest_id = count("SELECT MAX(id) FROM events");
    // Berlin keeps from 03-29 00:00 CET, the UTC site from 03-29 00:00 UTC.
    let old_events = "SELECT COUNT(*) FROM events WHERE ts_ms < 1774738800000 \
                      OR (site_id = 2 AND ts_ms < 1774742400000)";
    let old_sessions = "SELECT COUNT(*) FROM sessions WHERE started_ms < 1774738800000 \
                        OR (site_id = 2 AND started_ms < 1774742400000)";
    let (events, old, old_visits) = (
        count("SELECT COUNT(*) FROM events"),
        count(old_events),
        count(old_sessions),
    );
    assert!(
        old > 0 && old_visits > 0 && events > old,
        "{events} {old} {old_visits}"
    );
    assert!(count("SELECT COUNT(*) FROM rollup_days WHERE day < '2026-03-29'") > 0);

    // 2026-11-01 and the 217 days before: from 03-29 on.
    let state = keeping(&h, 217);
    let v = answers_of(&h, &state, &["/api/v1/sites".to_string()]).await;
    let kept_from: Vec<_> = v[0]["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["domain"].clone(), s["kept_from"].clone()))
        .collect();
    assert_eq!(
        kept_from,
        [
            (json!(BERLIN), json!("2026-03-29")),
            (json!(UTC_SITE), json!("2026-03-29"))
        ]
    );
    let deleted = state.retain().await.unwrap();
    assert!(deleted as i64 >= old + old_visits, "{deleted}");
    assert_eq!(count(old_events), 0);
    assert_eq!(count(old_sessions), 0);
    assert_eq!(count("SELECT COUNT(*) FROM events"), events - old);
    for table in ["rollup_days", "rollup_events", "rollup_sessions"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE day < '2026-03-29'");
        assert_eq!(count(&sql), 0, "{table}");
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE day >= '2026-03-29'");
        assert!(count(&sql) > 0, "{table}");
    }
    assert_eq!(
        state.retain().await.unwrap(),
        0,
        "a second pass finds nothing"
    );

    // The kept days answer exactly as before, from rollups and raw rows.
    assert_eq!(answers_of(&h, &state, &kept).await, before);
    assert_eq!(answers_of(&h, &raw_state, &kept).await, before_raw);
    // A period reaching back past the first day kept: the rollups count
    // the visitors that day shared with the deleted day before once, as
    // the raw rows do (every comparison query: periods, comparisons,
    // filters, breakdowns).
    let all = comparison_queries();
    let rolled = answers_of(&h, &state, &all).await;
    let raw = answers_of(&h, &raw_state, &all).await;
    for ((uri, a), b) in all.iter().zip(&rolled).zip(&raw) {
        assert_eq!(a, b, "rollups differ from raw after retention for {uri}");
    }
    // The deleted day answers nothing, rolled or not.
    for s in [&state, &raw_state] {
        let q = [
            agg(BERLIN, "period=day&date=2026-03-28"),
            format!(
                "/api/v1/stats/breakdown?site={BERLIN}&period=day&date=2026-03-28&property=page"
            ),
        ];
        let v = answers_of(&h, s, &q).await;
        assert_eq!(v[0]["results"]["visitors"], 0, "{}", v[0]);
        assert_eq!(v[0]["results"]["pageviews"], 0, "{}", v[0]);
        assert_eq!(v[0]["results"]["visits"], 0, "{}", v[0]);
        assert_eq!(v[1]["results"], json!([]), "{}", v[1]);
    }

    // With one day kept: nothing is left, and a new event takes an id
    // never used before.
    let one_day = keeping(&h, 1);
    assert!(one_day.retain().await.unwrap() > 0);
    for table in ["events", "sessions"] {
        assert_eq!(
            count(&format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // Yesterday's (empty) rollups are kept, nothing before.
    for table in ["rollup_days", "rollup_events", "rollup_sessions"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE day < '2026-10-31'");
        assert_eq!(count(&sql), 0, "{table}");
    }
    beacon_at(
        &h,
        "2026-11-01T10:00:00Z",
        0,
        "203.0.113.9",
        r#"{"kind":"pageview","site":"utc.example","url":"https://utc.example/new"}"#,
    )
    .await;
    assert!(count("SELECT MIN(id) FROM events") > newest_id);
    let v = h
        .get(&agg(
            UTC_SITE,
            "period=day&date=2026-11-01&metrics=pageviews",
        ))
        .await;
    assert_eq!(v["results"]["pageviews"], 1, "{v}");
}

/// Engagement rows go with their day too.
#[tokio::test]
async fn past_the_retention_period_engagement_goes_too() {
    let h = harness_with(&[("read.example", "UTC")], &[]).await;
    for day in ["2026-03-01", "2026-03-20"] {
        let view = r#"{"kind":"pageview","site":"read.example","url":"https://read.example/a"}"#;
        let read = r#"{"kind":"engagement","site":"read.example","url":"https://read.example/a","engaged_ms":60000,"scroll_depth":50}"#;
        beacon_at(&h, &format!("{day}T10:00:00Z"), 0, "203.0.113.5", view).await;
        beacon_at(&h, &format!("{day}T10:01:00Z"), 0, "203.0.113.5", read).await;
    }
    let conn = rusqlite::Connection::open(h.state.store.path()).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("events"), count("engagements")), (2, 2));
    h.clock.set("2026-03-25T08:00:00Z".parse().unwrap());
    let state = keeping(&h, 10);
    // Not the round `serve` waits for before it answers; the next one.
    state.maintain().await.unwrap();
    assert_eq!(count("events"), 2);
    state.maintain().await.unwrap();
    assert_eq!(
        (count("events"), count("sessions"), count("engagements")),
        (1, 1, 1)
    );
    let kept: i64 = conn
        .query_row("SELECT MIN(ts_ms) FROM engagements", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1_774_000_860_000, "2026-03-20T10:01:00Z");
}

/// A site's own retention (`tallymark site set --retention-days`) applies
/// without `serve --retention-days`, to that site only.
#[tokio::test]
async fn a_site_s_own_retention_applies_to_it_alone() {
    let h = harness().await;
    h.clock.set("2026-11-01T10:00:00Z".parse().unwrap());
    let conn = rusqlite::Connection::open(h.state.store.path()).unwrap();
    let count = |site: &str| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM events WHERE site_id = (SELECT id FROM sites WHERE domain = ?1)",
            [site],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (berlin, utc) = (count(BERLIN), count(UTC_SITE));
    assert!(berlin > 0 && utc > 0);
    // Keeps 2026-11-01 and the 30 days before: none of the data set.
    sites::set_retention(&conn, UTC_SITE, Some(30)).unwrap();
    assert_eq!(h.state.config.retention_days, None);
    // Not the round `serve` waits for before it answers; the next one.
    h.state.maintain().await.unwrap();
    h.state.maintain().await.unwrap();
    assert_eq!((count(BERLIN), count(UTC_SITE)), (berlin, 0));
    let v = h.get("/api/v1/sites").await;
    let kept: Vec<_> = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kept_from"].clone())
        .collect();
    assert_eq!(kept, [Value::Null, json!("2026-10-02")]);
}

/// Plausible's Stats API v2 (`POST /api/v2/query`): the same numbers, in
/// v2's rows.
#[tokio::test]
async fn plausibles_stats_api_v2_answers_with_the_same_numbers() {
    let h = harness().await;
    let post = |body: Value, token: Option<String>| {
        let router = h.router();
        async move {
            let mut req =
                Request::post("/api/v2/query").header(header::CONTENT_TYPE, "application/json");
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let resp = router
                .oneshot(req.body(Body::from(body.to_string())).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let admin = Some(h.admin.clone());
    let native = |path: &str, q: &str| format!("/api/v1/stats/{path}?site={BERLIN}&{q}");

    // Aggregate of the 23-hour DST day: hand-checked 4 visitors, 4
    // pageviews, bounce rate 33.3 (`aggregate_per_local_day_…`).
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "pageviews", "bounce_rate"],
               "date_range": ["2026-03-29", "2026-03-29"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["results"],
        json!([{"metrics": [4, 4, 33.3], "dimensions": []}])
    );
    assert_eq!(
        v["query"]["date_range"],
        json!(["2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59+02:00"])
    );
    assert_eq!(v["query"]["site_id"], BERLIN);

    // Days with data, and every day's label on request.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "pageviews"],
               "date_range": ["2026-03-27", "2026-03-31"], "dimensions": ["time:day"],
               "include": {"time_labels": true}}),
        admin.clone(),
    )
    .await;
    assert_eq!(
        v["results"],
        json!([
            {"metrics": [2, 3], "dimensions": ["2026-03-28"]},
            {"metrics": [4, 4], "dimensions": ["2026-03-29"]},
            {"metrics": [2, 2], "dimensions": ["2026-03-30"]},
        ]),
        "{v}"
    );
    assert_eq!(
        v["meta"]["time_labels"],
        json!([
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
            "2026-03-30",
            "2026-03-31"
        ])
    );

    // `time` is sized by the range and named so; a bucket with visitors is
    // kept even when the metric asked is 0 there (03-30: one bounce, 0 s).
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visit_duration"],
               "date_range": ["2026-03-27", "2026-03-31"], "dimensions": ["time"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(v["query"]["dimensions"], json!(["time:day"]));
    assert_eq!(v["query"]["order_by"], json!([["time:day", "asc"]]));
    assert_eq!(
        v["results"],
        json!([
            {"metrics": [750], "dimensions": ["2026-03-28"]},
            {"metrics": [140], "dimensions": ["2026-03-29"]},
            {"metrics": [0], "dimensions": ["2026-03-30"]},
        ]),
        "{v}"
    );
    // Months by their first day.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-15", "2026-04-30"], "dimensions": ["time:month"],
               "include": {"time_labels": true}}),
        admin.clone(),
    )
    .await;
    assert_eq!(
        v["meta"]["time_labels"],
        json!(["2026-03-01", "2026-04-01"]),
        "{v}"
    );
    assert_eq!(v["results"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["results"][0]["dimensions"], json!(["2026-03-01"]));
    // The last 28 days, today (the clock's) included, in the site's days.
    h.clock.set("2026-03-30T12:00:00Z".parse().unwrap());
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"], "date_range": "28d"}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["query"]["date_range"],
        json!(["2026-03-03T00:00:00+01:00", "2026-03-30T23:59:59+02:00"])
    );

    // A breakdown: the native rows, Plausible's names, ordered and paged.
    let n = h
        .get(&native(
            "breakdown",
            &format!("{MAR}&property=source&metrics=visitors,visits&sort=value:asc"),
        ))
        .await;
    let all: Vec<Value> = n["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let source = match r["value"].as_str() {
                Some("(none)") => "Direct / None",
                other => other.unwrap_or_default(),
            };
            json!({"metrics": [r["visitors"], r["visits"]], "dimensions": [source]})
        })
        .collect();
    assert!(all.len() >= 3, "{n}");
    let mut by_name = all.clone();
    by_name.sort_by(|a, b| {
        a["dimensions"][0]
            .as_str()
            .cmp(&b["dimensions"][0].as_str())
    });
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "visits"],
               "date_range": ["2026-03-28", "2026-03-30"], "dimensions": ["visit:source"],
               "order_by": [["visit:source", "asc"]], "pagination": {"limit": 2, "offset": 1},
               "include": {"total_rows": true}}),
        admin.clone(),
    )
    .await;
    assert_eq!(v["results"], json!(by_name[1..3]), "{v}");
    assert_eq!(v["meta"]["total_rows"], all.len());
    // Two keys: every row read, ordered here.
    let mut by_visitors = all.clone();
    by_visitors.sort_by(|a, b| {
        let n = |r: &Value| r["metrics"][0].as_i64().unwrap_or(0);
        n(b).cmp(&n(a)).then_with(|| {
            a["dimensions"][0]
                .as_str()
                .cmp(&b["dimensions"][0].as_str())
        })
    });
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "visits"],
               "date_range": ["2026-03-28", "2026-03-30"], "dimensions": ["visit:source"],
               "order_by": [["visitors", "desc"], ["visit:source", "asc"]]}),
        admin.clone(),
    )
    .await;
    assert_eq!(v["results"], json!(by_visitors), "{v}");

    // Filters: is_not, contains, and `and`.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "pageviews"],
               "date_range": ["2026-03-28", "2026-03-30"],
               "filters": [["and", [["contains", "event:page", ["/blog"]],
                                    ["is_not", "visit:country", ["US"]]]]]}),
        admin.clone(),
    )
    .await;
    let n = h
        .get(&native(
            "aggregate",
            &format!("{MAR}&metrics=visitors,pageviews&filter=page==*/blog*&filter=country!=US"),
        ))
        .await;
    assert_eq!(
        v["results"],
        json!([{"metrics": [n["results"]["visitors"], n["results"]["pageviews"]], "dimensions": []}])
    );
    assert!(n["results"]["pageviews"].as_i64() > Some(0), "{n}");

    // `or` of one dimension's values and patterns, `not`, and both: each
    // one filter of Tallymark's.
    for (filters, ours) in [
        (
            json!([[
                "or",
                [
                    ["is", "visit:country", ["DE"]],
                    ["contains", "visit:country", ["U"]]
                ]
            ]]),
            "country==DE|*U*",
        ),
        (
            json!([["not", ["is", "visit:country", ["US"]]]]),
            "country!=US",
        ),
        (
            json!([
                [
                    "not",
                    [
                        "or",
                        [
                            ["is", "visit:country", ["US"]],
                            ["is", "visit:country", ["FR"]]
                        ]
                    ]
                ],
                ["not", ["is_not", "visit:browser", ["Firefox"]]]
            ]),
            "country!=US|FR&filter=browser==firefox",
        ),
    ] {
        let (status, v) = post(
            json!({"site_id": BERLIN, "metrics": ["visitors", "pageviews"],
                   "date_range": ["2026-03-28", "2026-03-30"], "filters": filters}),
            admin.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let n = h
            .get(&native(
                "aggregate",
                &format!("{MAR}&metrics=visitors,pageviews&filter={ours}"),
            ))
            .await;
        assert_eq!(
            v["results"][0]["metrics"],
            json!([n["results"]["visitors"], n["results"]["pageviews"]]),
            "{filters}: {v} {n}"
        );
    }
    for filters in [
        json!([[
            "or",
            [
                ["is", "visit:country", ["DE"]],
                ["is", "visit:browser", ["Firefox"]]
            ]
        ]]),
        json!([[
            "or",
            [
                ["is_not", "visit:country", ["DE"]],
                ["is", "visit:country", ["FR"]]
            ]
        ]]),
        json!([["not", ["and", [["is", "visit:country", ["DE"]]]]]]),
    ] {
        let (status, v) = post(
            json!({"site_id": BERLIN, "metrics": ["visitors"], "date_range": "7d", "filters": filters}),
            admin.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filters}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("filters"),
            "{v}"
        );
    }

    // `percentage`: each row's share of the visitors the filters keep, and
    // the rows in the visitors' order.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["percentage", "visitors"],
               "date_range": ["2026-03-28", "2026-03-30"], "dimensions": ["visit:browser"],
               "filters": [["is_not", "visit:country", ["US"]]]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let whole = h
        .get(&native(
            "aggregate",
            &format!("{MAR}&metrics=visitors&filter=country!=US"),
        ))
        .await;
    let whole = whole["results"]["visitors"].as_f64().unwrap();
    let rows = v["results"].as_array().cloned().unwrap_or_default();
    assert!(rows.len() >= 2, "{v}");
    let mut last = f64::MAX;
    for r in &rows {
        let (share, n) = (
            r["metrics"][0].as_f64().unwrap(),
            r["metrics"][1].as_f64().unwrap(),
        );
        assert_eq!(share, (n / whole * 1000.0).round() / 10.0, "{v}");
        assert!(n <= last, "{v}");
        last = n;
    }
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["percentage"], "date_range": "7d", "dimensions": ["time:day"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // An OS with its version, in the order asked; a version alone is one
    // row per number (here each number is one OS's).
    let os = h
        .get(&native(
            "breakdown",
            &format!("{MAR}&property=os&metrics=visitors,visits"),
        ))
        .await;
    let of = |label: &str| {
        let r = row_of(&os, label);
        json!([r["visitors"], r["visits"]])
    };
    for (dimensions, ios, windows, none) in [
        (
            json!(["visit:os", "visit:os_version"]),
            json!(["iOS", "17.5"]),
            json!(["Windows", "10"]),
            json!(["(none)", "(none)"]),
        ),
        (
            json!(["visit:os_version", "visit:os"]),
            json!(["17.5", "iOS"]),
            json!(["10", "Windows"]),
            json!(["(none)", "(none)"]),
        ),
        (
            json!(["visit:os_version"]),
            json!(["17.5"]),
            json!(["10"]),
            json!(["(none)"]),
        ),
    ] {
        let (status, v) = post(
            json!({"site_id": BERLIN, "metrics": ["visitors", "visits"],
                   "date_range": ["2026-03-28", "2026-03-30"], "dimensions": dimensions,
                   "include": {"total_rows": true}}),
            admin.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["query"]["dimensions"], dimensions);
        assert_eq!(
            v["results"],
            json!([
                {"metrics": of("linux"), "dimensions": none},
                {"metrics": of("ios"), "dimensions": ios},
                {"metrics": of("windows"), "dimensions": windows},
            ]),
            "{v}"
        );
        assert_eq!(v["meta"]["total_rows"], 3, "{v}");
    }
    // Country names ordered by name (not by code), one page of them.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-28", "2026-03-30"], "dimensions": ["visit:country_name"],
               "order_by": [["visit:country_name", "asc"]], "pagination": {"limit": 1}}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // France, not Germany (DE, the first code).
    assert_eq!(v["results"][0]["dimensions"], json!(["France"]), "{v}");
    // `include.compare`: each row with the same query's row over the days
    // just before (as many, 27–28 March) and the change, as v1 states it.
    let before = |path: &str, rest: &str| {
        native(
            path,
            &format!("period=custom&from=2026-03-27&to=2026-03-28&{rest}"),
        )
    };
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "bounce_rate"],
               "date_range": ["2026-03-29", "2026-03-30"],
               "include": {"compare": "previous_period"}}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let now = h
        .get(&native(
            "aggregate",
            "period=custom&from=2026-03-29&to=2026-03-30&metrics=visitors,bounce_rate",
        ))
        .await;
    let then = h
        .get(&before("aggregate", "metrics=visitors,bounce_rate"))
        .await;
    let (nv, tv) = (
        now["results"]["visitors"].as_f64().unwrap(),
        then["results"]["visitors"].as_f64().unwrap(),
    );
    let (nb, tb) = (
        now["results"]["bounce_rate"].as_f64().unwrap(),
        then["results"]["bounce_rate"].as_f64().unwrap(),
    );
    assert_eq!(
        v["results"][0]["comparison"],
        json!({"dimensions": [],
               "metrics": [then["results"]["visitors"], then["results"]["bounce_rate"]],
               // A bounce rate changes from something only (Plausible's).
               "change": [((nv - tv) / tv * 100.0).round() as i64,
                          if tb > 0.0 { json!(((nb - tb) * 10.0).round() / 10.0) } else { Value::Null }]}),
        "{v} {now} {then}"
    );
    assert_eq!(v["query"]["include"]["compare"], "previous_period");
    // Days: each with the day at its place in the other period.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-29", "2026-03-30"], "dimensions": ["time:day"],
               "include": {"compare": ["2026-03-27", "2026-03-28"]}}),
        admin.clone(),
    )
    .await;
    let then = h
        .get(&before("timeseries", "metrics=visitors&interval=day"))
        .await;
    let rows = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{v}");
    for (r, t) in rows.iter().zip(then["results"].as_array().unwrap()) {
        assert_eq!(r["comparison"]["dimensions"], json!([t["date"]]), "{v}");
        assert_eq!(r["comparison"]["metrics"], json!([t["visitors"]]), "{v}");
    }
    // The night the clocks go back has two 02:00 hours: each is compared
    // with the hour at its place the day before (which has one).
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-10-25", "2026-10-25"], "dimensions": ["time:hour"],
               "include": {"compare": "previous_period"}}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let rows = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 25, "{v}");
    let at = |i: usize| rows[i]["comparison"]["dimensions"][0].clone();
    assert_eq!(rows[2]["dimensions"], rows[3]["dimensions"], "{v}");
    assert_eq!(
        (at(2), at(3), at(24)),
        (
            json!("2026-10-24 02:00:00"),
            json!("2026-10-24 03:00:00"),
            Value::Null
        ),
        "{v}"
    );
    // Rows of a breakdown by their value; a value not seen before: 0.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-29", "2026-03-30"], "dimensions": ["visit:country"],
               "include": {"compare": "previous_period"}}),
        admin.clone(),
    )
    .await;
    let then = h
        .get(&before("breakdown", "property=country&metrics=visitors"))
        .await;
    let rows = v["results"].as_array().cloned().unwrap_or_default();
    assert!(!rows.is_empty(), "{v}");
    for r in &rows {
        let country = r["dimensions"][0].as_str().unwrap_or_default();
        let was = row_of(&then, country)["visitors"].as_i64().unwrap_or(0);
        assert_eq!(
            r["comparison"]["metrics"],
            json!([was]),
            "{country}: {v} {then}"
        );
        assert_eq!(r["comparison"]["dimensions"], r["dimensions"], "{v}");
    }
    // A version alone sums its OSs' rows: only counts.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["bounce_rate"], "date_range": "7d",
               "dimensions": ["visit:browser_version"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("metrics"),
        "{v}"
    );
    // A `contains` that names no browser is nothing in an `or`.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-28", "2026-03-30"],
               "filters": [["or", [["contains", "visit:browser", ["netscape"]],
                                   ["is", "visit:browser", ["Firefox"]]]]]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["metrics"][0], of("linux")[0], "{v}");

    // `all`: from the day of the site's first event (28 March) to today,
    // 30 March; `time` sized by that range.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors", "pageviews"], "date_range": "all",
               "dimensions": ["time"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["query"]["date_range"],
        json!(["2026-03-28T00:00:00+01:00", "2026-03-30T23:59:59+02:00"])
    );
    assert_eq!(v["query"]["dimensions"], json!(["time:day"]));
    assert_eq!(v["query"]["order_by"], json!([["time:day", "asc"]]));
    let n = h
        .get(&native(
            "timeseries",
            &format!("{MAR}&metrics=visitors,pageviews&interval=day"),
        ))
        .await;
    let days: Vec<Value> = n["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"metrics": [b["visitors"], b["pageviews"]], "dimensions": [b["date"]]}))
        .collect();
    assert_eq!(v["results"], json!(days), "{v} {n}");

    // `contains` on a closed set: the names that contain the text.
    let (_, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"],
               "date_range": ["2026-03-28", "2026-03-30"],
               "filters": [["contains", "visit:device", ["bile"]]]}),
        admin.clone(),
    )
    .await;
    let n = h
        .get(&native(
            "aggregate",
            &format!("{MAR}&metrics=visitors&filter=device==mobile"),
        ))
        .await;
    assert_eq!(
        v["results"][0]["metrics"][0], n["results"]["visitors"],
        "{v}"
    );
    assert!(n["results"]["visitors"].as_i64() > Some(0), "{n}");

    // Refusals: JSON errors naming the field; no token, no answer.
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["visitors"], "date_range": "7d",
               "dimensions": ["visit:source", "visit:country"]}),
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dimensions"),
        "{v}"
    );
    // No token: a 401, whatever the body.
    for body in [
        json!({"site_id": BERLIN, "metrics": ["visitors"], "date_range": "7d"}),
        json!([]),
    ] {
        let (status, _) = post(body, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, v) = post(
        json!({"site_id": BERLIN, "metrics": ["nope"], "date_range": "7d"}),
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("metrics"),
        "{v}"
    );
}

/// Plausible's CSV export for berlin.example: 1 and 2 March, and 28 March,
/// the day its events here begin (left out).
const PLAUSIBLE_EXPORT: &[(&str, &str)] = &[
    (
        "imported_visitors_20260301_20260328.csv",
        "date,visitors,pageviews,bounces,visits,visit_duration\n\
         2026-03-01,10,30,4,12,600\n\
         2026-03-02,5,8,2,6,120\n\
         2026-03-28,99,99,9,99,99\n",
    ),
    (
        "imported_sources_20260301_20260328.csv",
        "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces\n\
         2026-03-01,Google,google.com,,,,,,20,7,8,500,2\n\
         2026-03-01,,,,,,,,10,3,4,100,2\n\
         2026-03-02,Newsletter,,newsletter,email,spring,,,8,5,6,120,2\n",
    ),
    (
        "imported_pages_20260301_20260328.csv",
        "date,hostname,page,visits,visitors,pageviews,scroll_depth,pageleave_visitors\n\
         2026-03-01,berlin.example,/,9,8,20,,0\n\
         2026-03-01,berlin.example,/pricing,5,4,10,,0\n\
         2026-03-02,berlin.example,/,6,5,8,,0\n",
    ),
    (
        "imported_entry_pages_20260301_20260328.csv",
        "date,entry_page,visitors,entrances,visit_duration,bounces,pageviews\n\
         2026-03-01,/,8,9,400,3,20\n\
         2026-03-01,/pricing,3,3,200,1,10\n",
    ),
    (
        "imported_exit_pages_20260301_20260328.csv",
        "date,exit_page,visitors,visit_duration,exits,bounces,pageviews\n\
         2026-03-01,/pricing,6,300,7,1,15\n",
    ),
    (
        "imported_custom_events_20260301_20260328.csv",
        "date,name,link_url,path,visitors,events\n\
         2026-03-01,Signup,,,2,3\n\
         2026-03-01,Outbound Link: Click,https://x.example,,1,1\n\
         2026-03-01,engagement,,,9,20\n",
    ),
    (
        "imported_locations_20260301_20260328.csv",
        "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews\n\
         2026-03-01,de,DE-BE,2950159,6,7,300,2,18\n\
         2026-03-01,FR,,0,4,5,300,2,12\n\
         2026-03-01,ZZ,,0,0,0,0,0,0\n",
    ),
    (
        "imported_devices_20260301_20260328.csv",
        "date,device,visitors,visits,visit_duration,bounces,pageviews\n\
         2026-03-01,Desktop,7,8,500,2,20\n\
         2026-03-01,Mobile,3,4,100,2,10\n",
    ),
    (
        "imported_browsers_20260301_20260328.csv",
        "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews\n\
         2026-03-01,Microsoft Edge,120,4,5,300,1,12\n\
         2026-03-01,Brave,1.6,6,7,300,3,18\n",
    ),
    (
        "imported_operating_systems_20260301_20260328.csv",
        "date,operating_system,operating_system_version,visitors,visits,visit_duration,bounces,pageviews\n\
         2026-03-01,Mac,14,6,7,300,2,18\n\
         2026-03-01,GNU/Linux,,4,5,300,2,12\n",
    ),
];

/// A site's history from Plausible's CSV export (as its ZIP) is answered as
/// its days: totals, days, every rolled-up breakdown and a filter, with the
/// numbers the files hold (hand-summed below); days from its first event on
/// are left out, and importing again adds nothing.
#[tokio::test]
async fn a_plausible_export_is_imported_as_the_days_before() {
    use std::io::Write;
    use tallymark_collector::import;

    let h = harness().await;
    h.clock.set("2026-03-31T12:00:00Z".parse().unwrap());
    let zip_path = h._dir.path().join("plausible-export.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in PLAUSIBLE_EXPORT {
            zip.start_file(*name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        // What macOS adds when it zips: not data.
        zip.start_file(
            "__MACOSX/._imported_visitors_20260301_20260328.csv",
            options,
        )
        .unwrap();
        zip.write_all(b"\0\x05\x16\x07").unwrap();
        zip.finish().unwrap();
    }
    let db = h._dir.path().join("tallymark.sqlite3");
    let now: jiff::Timestamp = "2026-03-31T12:00:00Z".parse().unwrap();
    let run_for = |paths: Vec<std::path::PathBuf>, now: jiff::Timestamp, keep: Option<u32>| {
        let mut conn = store::schema::open(&db).unwrap();
        let site = sites::get(&conn, BERLIN).unwrap().unwrap();
        let files = import::read_files(&paths)?;
        let export = import::parse(&site, &files)?;
        import::write(&mut conn, &site, export, now, keep)
    };
    let run = |paths: Vec<std::path::PathBuf>| run_for(paths, now, None);
    let done = run(vec![zip_path.clone()]).unwrap();
    assert_eq!(
        (done.days, done.after_native, done.already),
        (2, 1, 0),
        "{done:?}"
    );
    assert_eq!(done.tables.len(), 10, "{done:?}");

    // The sites API says which days were imported (the dashboard's note).
    let sites = h.get("/api/v1/sites").await;
    let imported: Vec<(Value, Value)> = sites["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["domain"].clone(), s["imported"].clone()))
        .collect();
    assert_eq!(
        imported,
        [
            (
                json!(BERLIN),
                json!({"from": "2026-03-01", "to": "2026-03-02"})
            ),
            (json!(UTC_SITE), Value::Null)
        ],
        "{sites}"
    );
    let first = "period=custom&from=2026-03-01&to=2026-03-02";
    let q = |path: &str, rest: &str| format!("/api/v1/stats/{path}?site={BERLIN}&{first}&{rest}");
    let a = h
        .get(&q(
            "aggregate",
            "metrics=visitors,visits,pageviews,events,bounce_rate,visit_duration,views_per_visit",
        ))
        .await;
    // 10 + 5 visitors; 12 + 6 visits; 30 + 8 views; the views and the 3 + 1
    // custom events; (4 + 2) / 18 bounces; (600 + 120) s / 18 visits.
    assert_eq!(
        a["results"],
        json!({"visitors": 15, "visits": 18, "pageviews": 38, "events": 42,
               "bounce_rate": 33.3, "visit_duration": 40, "views_per_visit": 2.11}),
        "{a}"
    );
    let t = h
        .get(&q("timeseries", "metrics=visitors,pageviews&interval=day"))
        .await;
    let days: Vec<(Value, Value, Value)> = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["date"].clone(),
                b["visitors"].clone(),
                b["pageviews"].clone(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            (json!("2026-03-01"), json!(10), json!(30)),
            (json!("2026-03-02"), json!(5), json!(8))
        ],
        "{t}"
    );
    for (property, metrics, want) in [
        (
            "source",
            "visitors,visits,bounce_rate",
            // Sources as Tallymark names them (from its utm_source,
            // `newsletter`): one row before and after the move.
            json!([
                ["Google", 7, 8, 25.0],
                ["newsletter", 5, 6, 33.3],
                ["(none)", 3, 4, 50.0]
            ]),
        ),
        (
            "channel",
            "visitors",
            json!([["organic_search", 7], ["email", 5], ["direct", 3]]),
        ),
        (
            "utm_campaign",
            "visitors",
            json!([["(none)", 10], ["spring", 5]]),
        ),
        (
            "page",
            "visitors,pageviews",
            json!([["/", 13, 28], ["/pricing", 4, 10]]),
        ),
        (
            "entry_page",
            "visits,bounce_rate",
            json!([["/", 9, 33.3], ["/pricing", 3, 33.3]]),
        ),
        ("exit_page", "visits", json!([["/pricing", 7]])),
        ("country", "visitors", json!([["DE", 6], ["FR", 4]])),
        // Plausible's regions and cities are codes: the totals, unplaced
        // (the custom events too, as on a native day).
        (
            "region",
            "visitors,visits,pageviews,events",
            json!([["(none)", 15, 18, 38, 42]]),
        ),
        (
            "city",
            "visitors,visits,pageviews,events",
            json!([["(none)", 15, 18, 38, 42]]),
        ),
        ("device", "visitors", json!([["desktop", 7], ["mobile", 3]])),
        // Brave is Chrome here, but the export says only "Brave": other.
        ("browser", "visitors", json!([["other", 6], ["edge", 4]])),
        ("os", "visitors", json!([["macos", 6], ["linux", 4]])),
        (
            "event:name",
            "visitors,events",
            json!([["Signup", 2, 3], ["Outbound Link: Click", 1, 1]]),
        ),
    ] {
        let b = h
            .get(&q(
                "breakdown",
                &format!("property={property}&metrics={metrics}"),
            ))
            .await;
        let names: Vec<&str> = metrics.split(',').collect();
        let rows: Vec<Value> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut row = vec![r["value"].clone()];
                row.extend(names.iter().map(|m| r[*m].clone()));
                Value::Array(row)
            })
            .collect();
        assert_eq!(Value::Array(rows), want, "{property}: {b}");
    }
    // One filter on a visit dimension: that value's row.
    let f = h
        .get(&q(
            "aggregate",
            "metrics=visitors,visits,pageviews&filter=source%3D%3DGoogle",
        ))
        .await;
    assert_eq!(
        f["results"],
        json!({"visitors": 7, "visits": 8, "pageviews": 20}),
        "{f}"
    );
    // A period over both: the imported days and the site's own add up.
    let own = h
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&metrics=visitors,pageviews"
        ))
        .await;
    let both = h
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&period=custom&from=2026-03-01&to=2026-03-30&metrics=visitors,pageviews"
        ))
        .await;
    assert_eq!(
        both["results"]["pageviews"],
        json!(38 + own["results"]["pageviews"].as_i64().unwrap()),
        "{both} {own}"
    );
    assert_eq!(
        both["results"]["visitors"],
        json!(15 + own["results"]["visitors"].as_i64().unwrap()),
        "{both} {own}"
    );
    // Plausible's v2 `all` starts at the first imported day.
    let resp = h
        .router()
        .oneshot(
            Request::post("/api/v2/query")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.admin))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"site_id": BERLIN, "metrics": ["pageviews"], "date_range": "all"})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        v["query"]["date_range"][0], "2026-03-01T00:00:00+01:00",
        "{v}"
    );

    // Again: every day is there already.
    let again = run(vec![zip_path.clone()]).unwrap();
    assert_eq!((again.days, again.already), (0, 2), "{again:?}");
    let a2 = h.get(&q("aggregate", "metrics=visitors,pageviews")).await;
    assert_eq!(a2["results"], json!({"visitors": 15, "pageviews": 38}));

    // Files that are not the export's, or counts that are not counts: an
    // error naming the file (and line), nothing written.
    let dir = h._dir.path().join("bad");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("visitors.csv"), "date,visitors\n").unwrap();
    let e = run(vec![dir.join("visitors.csv")]).unwrap_err().to_string();
    assert!(e.contains("not a file of Plausible's CSV export"), "{e}");
    let file = dir.join("imported_visitors_20260201_20260201.csv");
    std::fs::write(
        &file,
        "date,visitors,pageviews,bounces,visits,visit_duration\n2026-02-01,1,1,0,1,0\n2026-02-01,x,1,0,1,0\n",
    )
    .unwrap();
    let e = run(vec![dir.clone()]).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("visitors"), "{e}");
    // The ZIP and its unpacked files: each day given twice, refused.
    std::fs::write(
        &file,
        "date,visitors,pageviews,bounces,visits,visit_duration\n2026-03-02,1,1,0,1,0\n",
    )
    .unwrap();
    let e = run(vec![zip_path.clone(), file.clone()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("visitors of 2026-03-02 is in both"), "{e}");
    let e = run(vec![file.clone(), file.clone()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("visitors of 2026-03-02 is in both"), "{e}");
    // A day not over yet is left out (it would freeze as rolled).
    std::fs::write(
        &file,
        "date,visitors,pageviews,bounces,visits,visit_duration\n2026-02-01,1,1,0,1,0\n",
    )
    .unwrap();
    let early = run_for(
        vec![file.clone()],
        "2026-02-01T20:00:00Z".parse().unwrap(),
        None,
    )
    .unwrap();
    assert_eq!((early.days, early.after_native), (0, 1), "{early:?}");
    // A day serve's retention would delete is not imported.
    let old = run_for(vec![file.clone()], now, Some(30)).unwrap();
    assert_eq!((old.days, old.past_retention), (0, 1), "{old:?}");
    let feb = h
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&period=custom&from=2026-02-01&to=2026-02-01&metrics=visitors"
        ))
        .await;
    assert_eq!(feb["results"]["visitors"], 0, "{feb}");
}

/// The collector that received the data set, an empty one with its sites,
/// and a moment after the data set (both clocks set to it).
async fn live_and_empty() -> (Harness, Harness, jiff::Timestamp) {
    let live = harness().await;
    let imported = harness_with(&[(BERLIN, "Europe/Berlin"), (UTC_SITE, "UTC")], &[]).await;
    let now: jiff::Timestamp = "2026-11-02T12:00:00Z".parse().unwrap();
    live.clock.set(now);
    imported.clock.set(now);
    (live, imported, now)
}

/// What an import of the data set's history is compared with the live
/// collector on: totals, days, hours, a breakdown by each of `properties`
/// and filters on visit and event dimensions.
fn imported_history_queries(properties: &[&str]) -> Vec<String> {
    let mut queries = Vec::new();
    for period in [
        MAR,
        "period=day&date=2026-03-29",
        "period=custom&from=2026-10-24&to=2026-10-26",
        "period=year&date=2026-06-01",
    ] {
        let all = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";
        queries.push(format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{period}&metrics={all}"
        ));
        queries.push(format!(
            "/api/v1/stats/timeseries?site={BERLIN}&{period}&interval=day&metrics={all}"
        ));
        let interval = if period.contains("year") {
            "month"
        } else {
            "hour"
        };
        queries.push(format!(
            "/api/v1/stats/timeseries?site={BERLIN}&{period}&interval={interval}&metrics=visitors,pageviews"
        ));
        for &property in properties {
            let metrics = match property {
                "page" | "event:name" | "hostname" => "visitors,visits,pageviews,events",
                "entry_page" | "exit_page" => "visitors,visits,bounce_rate,visit_duration",
                _ => "visitors,visits,pageviews,bounce_rate,visit_duration",
            };
            queries.push(format!(
                "/api/v1/stats/breakdown?site={BERLIN}&{period}&property={property}&metrics={metrics}"
            ));
        }
        for filter in [
            "page%3D%3D/pricing",
            "source%3D%3DGoogle",
            "country%3D%3DFR",
            "event:name%3D%3DSignup",
            "browser%3D%3Dfirefox&filter=entry_page%3D%3D/",
        ] {
            queries.push(format!(
                "/api/v1/stats/aggregate?site={BERLIN}&{period}&metrics=visitors,visits,pageviews,bounce_rate&filter={filter}"
            ));
        }
    }
    queries
}

/// The data set's beacons of `berlin.example` as GoatCounter's CSV export
/// holds them (version 2 with its User-Agent column, as GoatCounter wrote
/// it until it stopped storing User-Agents): one GoatCounter session per
/// visitor, an `h` referrer without its scheme, query and trailing `/`, a
/// campaign's `utm_source` as a `c` referrer, the country as `Location`.
fn goatcounter_export_of_the_data_set() -> String {
    let mut csv = String::from(
        "2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,\
         Screen size,Location,FirstVisit,Date\n",
    );
    for b in BEACONS.iter().filter(|b| b.body.contains(BERLIN)) {
        let body: Value = serde_json::from_str(b.body).unwrap();
        let page = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
        let event = body["kind"] == "event";
        let path = if event {
            body["name"].as_str().unwrap().to_string()
        } else {
            page.path().to_string()
        };
        let campaign = page
            .query_pairs()
            .find(|(k, _)| k == "utm_source")
            .map(|(_, v)| v.into_owned());
        let (referrer, scheme) = match (campaign, body["referrer"].as_str()) {
            (Some(source), _) => (source, "c"),
            (None, Some(r)) => {
                let r = url::Url::parse(r).unwrap();
                let without = format!("{}{}", r.host_str().unwrap(), r.path());
                (without.trim_end_matches('/').to_string(), "h")
            }
            (None, None) => (String::new(), "o"),
        };
        let v = &VISITORS[b.visitor];
        csv.push_str(&format!(
            "{path},A title,{},\"{}\",,,{:x}-1,0,{referrer},{scheme},\"0,0,1\",{},1,{}\n",
            u8::from(event),
            v.user_agent,
            b.visitor + 0xabc0,
            v.country,
            b.at,
        ));
    }
    csv
}

/// GoatCounter's CSV export of the data set, imported into an empty
/// collector, answers what the collector that received the beacons
/// answers: visits split and joined the same way (also across midnight and
/// the DST change), the same daily visitors, entry and exit pages, sources,
/// referrers, countries, browsers, OSs, devices and events, from the
/// rollups and from the raw rows. What the export lacks differs on purpose:
/// event properties, and the UTM medium and campaign (GoatCounter keeps
/// only the source).
#[tokio::test]
async fn a_goatcounter_export_answers_as_the_beacons_did_live() {
    use tallymark_collector::import::goatcounter;

    let (live, imported, now) = live_and_empty().await;
    let csv = goatcounter_export_of_the_data_set();
    // As GoatCounter hands it out: gzipped.
    let gz = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    let path = imported
        ._dir
        .path()
        .join("goatcounter-export-berlin.csv.gz");
    std::fs::write(&path, &gz).unwrap();
    let db = imported._dir.path().join("tallymark.sqlite3");
    // A transaction per visitor.
    let pacing = goatcounter::Pacing {
        hold: std::time::Duration::ZERO,
        pause: std::time::Duration::ZERO,
    };
    let run_with = |timeout_ms: i64| {
        let mut conn = store::schema::open(&db).unwrap();
        let site = sites::get(&conn, BERLIN).unwrap().unwrap();
        let files = tallymark_collector::import::read_files(std::slice::from_ref(&path)).unwrap();
        assert!(goatcounter::is_export(&files[0].1));
        let hits = goatcounter::parse(
            &site,
            &files[0].0,
            &files[0].1,
            &tallymark_collector::geo::PlaceNames::default(),
        )
        .unwrap();
        goatcounter::write(&mut conn, &site, hits, now, None, timeout_ms, pacing)
    };
    let run = || run_with(30 * 60_000);
    let queries = imported_history_queries(&[
        "page",
        "entry_page",
        "exit_page",
        "source",
        "referrer",
        "utm_source",
        "country",
        "browser",
        "browser_version",
        "os",
        "os_version",
        "device",
        "event:name",
        "hostname",
    ]);
    // The import stops part-way (a disk full, a kill): the days from the
    // newest back to 03-29 are written, and one visit of 03-28; its other,
    // which goes on past midnight into 03-29, is not.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER stop BEFORE INSERT ON events WHEN NEW.ts_ms < 1774738800000
             AND (SELECT COUNT(*) FROM visit_backlog) > 7
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let stopped = run().unwrap_err().to_string();
    assert!(stopped.contains("disk full"), "{stopped}");
    let partial: (String, i64) = conn
        .query_row(
            "SELECT partial_day, partial_done FROM import_marks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(partial, ("2026-03-28".to_string(), 1));
    // Meanwhile `serve` rolls up none of the site's days: 03-29 may grow.
    let site = sites::get(&conn, BERLIN).unwrap().unwrap();
    let due = || {
        tallymark_collector::stats::rollup::due(
            &conn,
            &site,
            now.as_millisecond(),
            30 * 60_000,
            usize::MAX,
            true,
            None,
        )
        .unwrap()
    };
    assert!(due().is_empty());
    // A dashboard asks meanwhile: the days' live sums, which 03-28's rest
    // changes (a visitor there and on 03-29 is counted once over both).
    for uri in &queries {
        imported.get(uri).await;
    }
    conn.execute_batch("DROP TRIGGER stop").unwrap();
    // Visits split otherwise would not fit those written.
    let other = run_with(45 * 60_000).unwrap_err().to_string();
    assert!(other.contains("--session-timeout-minutes 30"), "{other}");
    // Run again, it writes what is left, 03-29's part of that visit too;
    // here its rollups then fail (the days are rolled up later by `serve`).
    conn.execute_batch(
        "CREATE TRIGGER full BEFORE INSERT ON rollup_days
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let stopped = run().unwrap_err().to_string();
    assert!(stopped.contains("disk full"), "{stopped}");
    conn.execute_batch("DROP TRIGGER full").unwrap();
    let visits: i64 = conn
        .query_row("SELECT COUNT(*) FROM visit_backlog", [], |r| r.get(0))
        .unwrap();
    assert_eq!(visits, 8);
    // Answers from the raw rows and live sums, then from the rollups.
    for uri in &queries {
        let (a, b) = (live.get(uri).await, imported.get(uri).await);
        assert_eq!(a, b, "{uri} (before the days are rolled up)");
    }
    let pending = due();
    assert!(!pending.is_empty());
    {
        let mut conn = store::schema::open(&db).unwrap();
        tallymark_collector::stats::rollup::save(&mut conn, &pending).unwrap();
    }
    // Importing again adds nothing: every day holds its events now.
    let again = run().unwrap();
    assert_eq!((again.visits, again.already), (0, 13), "{again:?}");
    let marks: i64 = conn
        .query_row("SELECT COUNT(*) FROM import_marks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marks, 0);
    // A backup keeps the queue's high-water mark, also past deleted places.
    conn.execute_batch(
        "DELETE FROM visit_backlog WHERE seq = (SELECT MAX(seq) FROM visit_backlog)",
    )
    .unwrap();
    let copy = imported._dir.path().join("backup.sqlite3");
    store::backup::backup(&db, &copy).unwrap();
    let high = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'visit_backlog'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(high(&copy), high(&db));
    assert_eq!(high(&db), 8);

    for uri in &queries {
        let (a, b) = (live.get(uri).await, imported.get(uri).await);
        assert_eq!(a, b, "{uri}");
    }
    // Not vacuous: the answers hold the data set's visits.
    let totals = imported
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&metrics=visitors,visits,events"
        ))
        .await;
    assert_eq!(
        totals["results"],
        json!({"visitors": 6, "visits": 6, "events": 11}),
        "{totals}"
    );
    // The CSV export gives the imported events in time order (they were
    // stored newest day first), the live collector's events each once.
    let export = |h: &Harness| {
        let conn = store::schema::open_reader(h.state.store.path()).unwrap();
        let mut out = Vec::new();
        tallymark_collector::stats::export::export_cli(
            &conn,
            &format!("site={BERLIN}&{MAR}"),
            now,
            &mut out,
        )
        .unwrap();
        let mut rows = csv::Reader::from_reader(out.as_slice());
        rows.records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].to_string(), r[4].to_string())
            })
            .collect::<Vec<_>>()
    };
    let (mut from_live, from_import) = (export(&live), export(&imported));
    assert!(
        from_import.windows(2).all(|w| w[0].0 <= w[1].0),
        "{from_import:?}"
    );
    assert_eq!(from_import.len(), 11);
    from_live.sort();
    let mut sorted = from_import.clone();
    sorted.sort();
    assert_eq!(sorted, from_live);
    // The UTM medium is GoatCounter's loss: the live visit has it.
    let medium = format!("/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property=utm_medium");
    assert_eq!(
        column(&live.get(&medium).await, "value"),
        ["(none)", "email"]
    );
    assert_eq!(column(&imported.get(&medium).await, "value"), ["(none)"]);
}

/// A GoatCounter import's visits end before where ClickHouse's copy of
/// visits stands (it copies them in order of their end): they reach
/// ClickHouse all the same, once each, through the queue of visits written
/// into the past; and a ClickHouse filled from scratch afterwards holds
/// them once too. Its answers then equal SQLite's raw rows'. Queued visits
/// that end after a live visit not yet over do not move the ordered copy
/// past it when the shipper asks ClickHouse where it stands again.
#[tokio::test]
async fn a_goatcounter_import_reaches_clickhouse_once() {
    use tallymark_collector::import::goatcounter;
    let server = clickhouse_server::ClickHouseServer::start();
    let h = harness().await;
    const GC: &str = "gc.example";
    {
        let conn = store::schema::open(h.state.store.path()).unwrap();
        sites::add(&conn, GC, "Europe/Berlin", 0).unwrap();
    }
    let now: jiff::Timestamp = "2026-12-05T12:00:00Z".parse().unwrap();
    h.clock.set(now);
    // ClickHouse holds the live visits, up to 2026-10-25.
    let ch_state = with_clickhouse(&h, &server, "tallymark_gc").await;
    let import = || {
        let mut conn = store::schema::open(h.state.store.path()).unwrap();
        let site = sites::get(&conn, GC).unwrap().unwrap();
        // The data set's March as November: after the live visits.
        let csv = goatcounter_export_of_the_data_set().replace("2026-03-", "2026-11-");
        let hits = goatcounter::parse(
            &site,
            "export.csv",
            csv.as_bytes(),
            &tallymark_collector::geo::PlaceNames::default(),
        )
        .unwrap();
        goatcounter::write(
            &mut conn,
            &site,
            hits,
            now,
            None,
            30 * 60_000,
            goatcounter::Pacing::default(),
        )
        .unwrap()
    };
    assert_eq!(import().visits, 8);
    ch_state.ship_all().await.unwrap();
    // A live visit between the two, still open when the shipper asks
    // ClickHouse again; then over.
    beacon_at(
        &h,
        "2026-11-15T10:00:00Z",
        2,
        "198.51.100.99",
        r#"{"kind":"pageview","site":"berlin.example","url":"https://berlin.example/late"}"#,
    )
    .await;
    ch_state.analytics.as_ref().unwrap().prune_soon();
    ch_state.ship_all().await.unwrap();
    h.clock.set(now);
    ch_state.ship_all().await.unwrap();
    let fresh = with_clickhouse(&h, &server, "tallymark_gc_fresh").await;
    let sqlite_visits: i64 = rusqlite::Connection::open(h.state.store.path())
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    for state in [&ch_state, &fresh] {
        let ch = &state.analytics.as_ref().unwrap().ch;
        let rows = ch
            .rows(&format!(
                "SELECT count(), uniqExact(id), countIf(backlog > 0) FROM {}",
                ch.table("visits")
            ))
            .unwrap();
        let n: Vec<i64> = rows[0]
            .iter()
            .map(tallymark_collector::clickhouse::int)
            .collect();
        assert_eq!(n, [sqlite_visits, sqlite_visits, 8], "{}", ch.database);
    }
    let raw_state = without_rollups(&h);
    let mut queries = Vec::new();
    for period in [
        "period=custom&from=2026-11-28&to=2026-11-30",
        "period=custom&from=2026-10-24&to=2026-10-26",
    ] {
        let all = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events";
        queries.push(format!(
            "/api/v1/stats/aggregate?site={GC}&{period}&metrics={all}"
        ));
        for property in ["entry_page", "exit_page", "source", "country", "browser"] {
            queries.push(format!(
                "/api/v1/stats/breakdown?site={GC}&{period}&property={property}&metrics=visitors,visits,bounce_rate,visit_duration"
            ));
        }
        queries.push(format!(
            "/api/v1/stats/aggregate?site={GC}&{period}&metrics={all}&filter=entry_page%3D%3D/&filter=browser%3D%3Dfirefox"
        ));
    }
    let raw = answers_of(&h, &raw_state, &queries).await;
    assert_eq!(raw[0]["results"]["visits"], 6, "{}", raw[0]);
    for state in [&ch_state, &fresh] {
        let before = state.metrics.clickhouse_queries.get();
        let from_ch = answers_of(&h, state, &queries).await;
        for ((uri, a), b) in queries.iter().zip(&raw).zip(&from_ch) {
            assert_eq!(a, b, "clickhouse differs from sqlite for {uri}");
        }
        assert!(state.metrics.clickhouse_queries.get() > before);
        assert_eq!(state.metrics.clickhouse_query_failures.get(), 0);
    }
    // A removed site's queued places go with its visits.
    let mut conn = store::schema::open(h.state.store.path()).unwrap();
    sites::remove(&mut conn, GC).unwrap();
    let queued: i64 = conn
        .query_row("SELECT COUNT(*) FROM visit_backlog", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0);
}

/// The data set's beacons of `berlin.example` as Umami's `website_event`
/// rows joined with their `session` (as Postgres writes them): Umami's own
/// names for browsers and OSs, its device, the page's query in `url_query`,
/// the referrer split into domain and path, custom events with their page.
fn umami_export_of_the_data_set() -> String {
    let mut csv = String::from(
        "event_id,website_id,session_id,visit_id,created_at,url_path,url_query,referrer_path,\
         referrer_query,referrer_domain,page_title,event_type,event_name,hostname,browser,os,\
         device,screen,language,country,region,city,distinct_id,event_data\n",
    );
    for (n, b) in BEACONS
        .iter()
        .enumerate()
        .filter(|(_, b)| b.body.contains(BERLIN))
    {
        let body: Value = serde_json::from_str(b.body).unwrap();
        let page = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
        let event = body["kind"] == "event";
        let (referrer_domain, referrer_path) = match body["referrer"].as_str() {
            Some(r) => {
                let r = url::Url::parse(r).unwrap();
                (r.host_str().unwrap().to_string(), r.path().to_string())
            }
            None => (String::new(), String::new()),
        };
        let (browser, os, device) = match VISITORS[b.visitor].user_agent {
            ua if ua.contains("Firefox") => ("firefox", "Linux", "desktop"),
            ua if ua.contains("iPhone") => ("ios", "iOS", "mobile"),
            _ => ("chrome", "Windows 10", "desktop"),
        };
        let at = b.at.replace('T', " ").replace('Z', ".000+00");
        // The event's data rows as one JSON object (the README's column list).
        let data = match &body["props"] {
            Value::Object(props) => {
                format!("\"{}\"", json!(props).to_string().replace('"', "\"\""))
            }
            _ => String::new(),
        };
        csv.push_str(&format!(
            "e{n},w,{:08x}-0000-4000-8000-000000000000,v,{at},{},{},{referrer_path},,{referrer_domain},T,{},{},berlin.example,{browser},{os},{device},,en,{},,,,{data}\n",
            b.visitor + 1,
            page.path(),
            page.query().unwrap_or_default(),
            if event { 2 } else { 1 },
            body["name"].as_str().unwrap_or_default(),
            VISITORS[b.visitor].country,
        ));
    }
    csv
}

/// Umami's rows of the data set, imported into an empty collector, answer
/// what the collector that received the beacons answers, UTM medium and
/// campaign included; only versions differ (Umami keeps none but Windows').
#[tokio::test]
async fn an_umami_export_answers_as_the_beacons_did_live() {
    use tallymark_collector::import::umami;

    let (live, imported, now) = live_and_empty().await;
    let csv = umami_export_of_the_data_set();
    assert!(umami::is_export(csv.as_bytes()));
    let db = imported._dir.path().join("tallymark.sqlite3");
    let done = {
        let mut conn = store::schema::open(&db).unwrap();
        let site = sites::get(&conn, BERLIN).unwrap().unwrap();
        let hits = umami::parse(
            &site,
            "umami.csv",
            csv.as_bytes(),
            &tallymark_collector::geo::PlaceNames::default(),
        )
        .unwrap();
        assert_eq!((hits.len(), hits.bots, hits.skipped), (13, 0, 0));
        umami::write(
            &mut conn,
            &site,
            hits,
            now,
            None,
            30 * 60_000,
            umami::Pacing::default(),
        )
        .unwrap()
    };
    assert_eq!(
        (done.visits, done.pageviews, done.events, done.days),
        (8, 11, 2, 4),
        "{done:?}"
    );
    let queries = imported_history_queries(&[
        "page",
        "entry_page",
        "exit_page",
        "source",
        "referrer",
        "channel",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "country",
        "browser",
        "os",
        "device",
        "event:name",
        "hostname",
    ]);
    // And the events' props (the `event_data` column).
    let mut queries = queries;
    for property in ["plan", "seats", "annual", "Plan%20Name", "file"] {
        queries.push(format!(
            "/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property=event:props:{property}&metrics=visitors,events"
        ));
    }
    queries.push(format!(
        "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&metrics=visitors,events&filter=event:props:plan%3D%3Dpro"
    ));
    for uri in &queries {
        let (a, b) = (live.get(uri).await, imported.get(uri).await);
        assert_eq!(a, b, "{uri}");
    }
    let totals = imported
        .get(&format!(
            "/api/v1/stats/aggregate?site={BERLIN}&{MAR}&metrics=visitors,visits,events"
        ))
        .await;
    assert_eq!(
        totals["results"],
        json!({"visitors": 6, "visits": 6, "events": 11}),
        "{totals}"
    );
    // Not vacuous: a prop's values.
    let plan = imported
        .get(&format!(
            "/api/v1/stats/breakdown?site={BERLIN}&{MAR}&property=event:props:plan"
        ))
        .await;
    assert_eq!(column(&plan, "value"), ["pro"], "{plan}");
}
