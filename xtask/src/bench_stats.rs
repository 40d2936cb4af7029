//! `cargo xtask bench stats [--events N] [--sites K] [--data DIR] [--iterations I]`:
//! a dashboard load against the stats API on a seeded SQLite database.
//!
//! Seeds N events (default 10M) over 30 days with `cargo xtask seed`'s
//! generator (reused when the directory already holds that data set), then
//! times, through the real router in-process (`app()` + `oneshot`, so
//! auth, parsing, SQL and JSON are all included), for the busiest site:
//! aggregate (all metrics, compared with the previous period), timeseries
//! (daily visitors and pageviews) and seven breakdowns (source, page,
//! entry page, country, device, browser, and event name with revenue), each
//! the median of I runs; the
//! whole dashboard run one request after another and all at once; and a
//! plain `SELECT COUNT(*)` over the same site and range, with each time's
//! ratio to it. Before timing, it rolls up every finished day (what `serve`
//! does in the background) and reports how long that took; each request is
//! also answered once with rollups off (the raw rows) and must give the
//! very same JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tallymark_collector::clock::SystemClock;
use tallymark_collector::config::Config;
use tallymark_collector::stats::auth::{self, TokenKind};
use tallymark_collector::store::schema;
use tallymark_collector::{AppState, app};
use tower::ServiceExt;

use crate::seed::{self, SeedArgs};

struct Args {
    events: u64,
    sites: usize,
    data: Option<PathBuf>,
    iterations: usize,
    /// Also answer every request from ClickHouse (a private Debian
    /// `clickhouse-server` fed by the collector's shipper).
    clickhouse: bool,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut out = Args {
        events: 10_000_000,
        sites: 10,
        data: None,
        iterations: 5,
        clickhouse: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--clickhouse" {
            out.clickhouse = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => out.events = seed::parse_count(value)?,
            "--sites" => out.sites = value.parse().context("--sites")?,
            "--data" => out.data = Some(PathBuf::from(value)),
            "--iterations" => out.iterations = value.parse().context("--iterations")?,
            _ => bail!(
                "usage: cargo xtask bench stats [--events N] [--sites K] [--data DIR] [--iterations I] [--clickhouse]"
            ),
        }
    }
    out.iterations = out.iterations.max(1);
    Ok(out)
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut forwarded = vec!["bench".to_string(), "stats".to_string()];
    forwarded.extend(args.iter().cloned());
    if seed::reexec_in_release(&forwarded)? {
        return Ok(());
    }
    let args = parse(args)?;
    let data = args.data.clone().unwrap_or_else(|| {
        root.join(format!(
            "target/bench-stats/{}-events-{}-sites",
            args.events, args.sites
        ))
    });
    if !seed::db_path(&data).exists() {
        eprintln!("seeding {} events into {} ...", args.events, data.display());
        let s = seed::seed(&SeedArgs {
            events: args.events,
            data: data.clone(),
            sites: args.sites,
            seed: 1,
            days: 30,
        })?;
        eprintln!(
            "seeded {} events, {} sessions in {:.1} s ({:.0} events/s)",
            s.events,
            s.sessions,
            s.seconds,
            s.events as f64 / s.seconds
        );
    } else {
        eprintln!("reusing {}", data.display());
    }
    let conn = schema::open(&seed::db_path(&data))?;
    let token = auth::create(&conn, TokenKind::Admin, None, 0)?;
    let end: jiff::Timestamp = seed::END_UTC.parse()?;
    // site1 is the busiest; its timezone is Europe/Berlin.
    let site = "site1.example";
    let (site_id, tz): (i64, String) = conn.query_row(
        "SELECT id, timezone FROM sites WHERE domain = ?1",
        [site],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let tz = jiff::tz::TimeZone::get(&tz)?;
    let last_day = end.to_zoned_datetime(tz.clone()).date().yesterday()?;
    let first_day = last_day.checked_sub(jiff::ToSpan::days(29))?;
    let start_ms = first_day
        .to_zoned_datetime(tz.clone())?
        .timestamp()
        .as_millisecond();
    let end_ms = last_day
        .tomorrow()?
        .to_zoned_datetime(tz)?
        .timestamp()
        .as_millisecond();
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    drop(conn);

    let config = Config {
        data: data.clone(),
        ..Config::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let raw_state = AppState::open(
            Config {
                rollups: false,
                ..config.clone()
            },
            Arc::new(SystemClock),
        )?;
        let state = AppState::open(config.clone(), Arc::new(SystemClock))?;
        // What `serve` does in the background: roll up every finished day.
        let started = Instant::now();
        let mut rolled = 0;
        loop {
            let n = state.roll_up(10_000, true).await?;
            if n == 0 {
                break;
            }
            rolled += n;
        }
        let rollup_time = started.elapsed();
        let peer: SocketAddr = "127.0.0.1:1".parse()?;
        let router = app(state.clone()).layer(MockConnectInfo(peer));
        let raw_router = app(raw_state.clone()).layer(MockConnectInfo(peer));
        let range = format!("site={site}&period=custom&from={first_day}&to={last_day}");
        let dashboard: Vec<(String, String)> = vec![
            (
                "aggregate (8 metrics incl. revenue + previous period)".into(),
                format!("/api/v1/stats/aggregate?{range}&compare=previous_period"),
            ),
            (
                "timeseries (day; visitors, pageviews)".into(),
                format!("/api/v1/stats/timeseries?{range}&interval=day&metrics=visitors,pageviews"),
            ),
            (
                "breakdown source (visitors, visits, bounce_rate)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=source&limit=10&metrics=visitors,visits,bounce_rate"),
            ),
            (
                "breakdown page (visitors, pageviews)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=page&limit=10&metrics=visitors,pageviews"),
            ),
            (
                "breakdown entry_page (visits)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=entry_page&limit=10&metrics=visits"),
            ),
            (
                "breakdown country (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=country&limit=10"),
            ),
            (
                "breakdown device (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=device&limit=10"),
            ),
            (
                "breakdown browser (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=browser&limit=10"),
            ),
            // The dashboard's Goals panel (revenue from its partial index).
            (
                "breakdown event:name (visitors, events, revenue)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=event:name&limit=10&metrics=visitors,events,revenue"),
            ),
        ];
        let n = dashboard.len();
        let fetch = |router: axum::Router, uri: String| fetch(router, token.clone(), uri);
        let get = |uri: String| {
            let f = fetch(router.clone(), uri);
            async move { f.await.map(|(t, _)| t) }
        };

        // The baseline: a plain count over the same site and range.
        let reader = state.store.reader()?;
        let count_once = || -> Result<(Duration, i64)> {
            let started = Instant::now();
            let n: i64 = reader.query_row(
                "SELECT COUNT(*) FROM events WHERE site_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3",
                [site_id, start_ms, end_ms],
                |r| r.get(0),
            )?;
            Ok((started.elapsed(), n))
        };
        let (_, in_range) = count_once()?;
        let mut counts = Vec::new();
        for _ in 0..args.iterations {
            counts.push(count_once()?.0);
        }
        let count = median(&mut counts);

        println!();
        println!(
            "bench stats: {total} events in the database ({} sites, 30 days); {site}: {in_range} events in {first_day}..{last_day}",
            args.sites
        );
        println!(
            "rollups: {rolled} day rollups written in {:.1} s (done once, in the background, by `serve`)",
            rollup_time.as_secs_f64()
        );
        println!("median of {} runs after one warm-up run; raw: the same request with rollups off, one run\n", args.iterations);
        println!(
            "{:<50} {:>10} {:>14} {:>10} {:>10}",
            "request", "ms", "x COUNT(*)", "raw ms", "raw/fast"
        );
        println!(
            "{:<50} {:>10.1} {:>14}",
            "SELECT COUNT(*) (same site and range)",
            ms(count),
            "1.0"
        );
        // One request: the median of the runs after a warm-up, and one run
        // with rollups off, which must give the very same answer; printed.
        let measure = |name: String, uri: String| {
            let (router, raw_router) = (router.clone(), raw_router.clone());
            async move {
                let (_, fast_json) = fetch(router, uri.clone()).await?;
                let mut times = Vec::new();
                for _ in 0..args.iterations {
                    times.push(get(uri.clone()).await?);
                }
                let t = median(&mut times);
                let (raw_t, raw_json) = fetch(raw_router, uri.clone()).await?;
                if raw_json != fast_json {
                    bail!("{uri}: rollups and raw rows disagree:\n{fast_json}\n{raw_json}");
                }
                println!(
                    "{name:<50} {:>10.1} {:>14.1} {:>10.1} {:>10.1}",
                    ms(t),
                    ratio(t, count),
                    ms(raw_t),
                    ratio(raw_t, t)
                );
                anyhow::Ok((t, raw_t, raw_json))
            }
        };
        let mut sequential_sum = Duration::ZERO;
        let mut worst_breakdown = Duration::ZERO;
        let mut raw_sum = Duration::ZERO;
        let mut raw_answers = Vec::new();
        for (name, uri) in &dashboard {
            let (t, raw_t, raw_json) = measure(name.clone(), uri.clone()).await?;
            sequential_sum += t;
            if name.starts_with("breakdown") {
                worst_breakdown = worst_breakdown.max(t);
            }
            raw_sum += raw_t;
            raw_answers.push(raw_json);
        }
        println!(
            "{:<50} {:>10.1} {:>14.1} {:>10.1} {:>10.1}",
            format!("sum of the {n} (fast / raw)"),
            ms(sequential_sum),
            ratio(sequential_sum, count),
            ms(raw_sum),
            ratio(raw_sum, sequential_sum)
        );
        // A click on a source in the dashboard: one filter on a visit
        // dimension, answered from that dimension's rollup rows; the other
        // panels' breakdowns under it read the raw rows.
        let google = "filter=source%3D%3DGoogle";
        let filtered: Vec<(String, String)> = vec![
            (
                "filtered source==Google: aggregate (+ previous)".into(),
                format!("/api/v1/stats/aggregate?{range}&compare=previous_period&{google}"),
            ),
            (
                "filtered source==Google: timeseries (day)".into(),
                format!("/api/v1/stats/timeseries?{range}&interval=day&metrics=visitors,pageviews&{google}"),
            ),
            (
                "filtered source==Google: breakdown source".into(),
                format!("/api/v1/stats/breakdown?{range}&property=source&limit=10&metrics=visitors,visits,bounce_rate&{google}"),
            ),
            (
                "filtered source==Google: breakdown page (raw)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=page&limit=10&metrics=visitors,pageviews&{google}"),
            ),
        ];
        let mut filtered_raw = Vec::new();
        for (name, uri) in &filtered {
            filtered_raw.push(measure(name.clone(), uri.clone()).await?.2);
        }
        // A click on a goal: its conversions, from the event name's rollup
        // rows when only events are counted.
        let signup = "filter=event:name%3D%3DSignup";
        for (name, uri) in [
            (
                "goal Signup: aggregate (visitors, events, CR + previous)",
                format!("/api/v1/stats/aggregate?{range}&compare=previous_period&metrics=visitors,events,conversion_rate&{signup}"),
            ),
            (
                "goal Signup: timeseries (day; visitors, events)",
                format!("/api/v1/stats/timeseries?{range}&interval=day&metrics=visitors,events&{signup}"),
            ),
        ] {
            measure(name.into(), uri).await?;
        }
        // Opened on a click: Locations → Region and City (from the
        // rollups, as the country is), Pages → Engagement (time on page and
        // scroll depth, from the engagement rows) and a funnel (the matching
        // events). ClickHouse answers them too (below).
        let clicked: Vec<(String, String)> = vec![
            (
                "breakdown region (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=region&limit=10"),
            ),
            (
                "breakdown city (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=city&limit=10"),
            ),
            // By name alone (Plausible's `visit:region`, `visit:city`): the
            // region rows renamed; the two Portlands share a name, so the
            // cities' come from the raw rows.
            (
                "breakdown region_name (visitors)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=region_name&limit=10"),
            ),
            (
                "breakdown city_name (visitors; two share a name: raw)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=city_name&limit=10"),
            ),
            (
                "breakdown page: time on page, scroll (engagement rows)".into(),
                format!("/api/v1/stats/breakdown?{range}&property=page&limit=10&metrics=visitors,time_on_page,scroll_depth"),
            ),
            // A funnel: the matching events of the month in order per visit.
            (
                "funnel: / then /pricing then Signup (raw rows)".into(),
                format!("/api/v1/stats/funnel?{range}&step=page%3D%3D/&step=page%3D%3D/pricing&step=event:name%3D%3DSignup"),
            ),
        ];
        let mut clicked_raw = Vec::new();
        for (name, uri) in &clicked {
            clicked_raw.push(measure(name.clone(), uri.clone()).await?.2);
        }
        println!("every answer identical with and without rollups");
        // The whole dashboard, one after another and all at once (as a
        // browser loads it).
        let mut seq = Vec::new();
        let mut par = Vec::new();
        for _ in 0..args.iterations {
            let started = Instant::now();
            for (_, uri) in &dashboard {
                get(uri.clone()).await?;
            }
            seq.push(started.elapsed());
            let started = Instant::now();
            let tasks: Vec<_> = dashboard
                .iter()
                .map(|(_, uri)| tokio::spawn(get(uri.clone())))
                .collect();
            for t in tasks {
                t.await??;
            }
            par.push(started.elapsed());
        }
        let (seq, par) = (median(&mut seq), median(&mut par));
        println!(
            "{:<50} {:>10.1} {:>14.1}",
            format!("dashboard, {n} requests one after another"),
            ms(seq),
            ratio(seq, count)
        );
        println!(
            "{:<50} {:>10.1} {:>14.1}",
            format!("dashboard, {n} requests concurrently"),
            ms(par),
            ratio(par, count)
        );
        // As when the range ends today: the last day is not rolled up yet,
        // so its sums are computed from its raw rows on every request.
        let day = last_day.to_string();
        state
            .store
            .maintain(move |conn| {
                for table in ["rollup_days", "rollup_events", "rollup_sessions"] {
                    conn.execute(
                        &format!("DELETE FROM {table} WHERE site_id = ?1 AND day = ?2"),
                        rusqlite::params![site_id, day],
                    )?;
                }
                Ok(())
            })
            .await?;
        let mut live = Vec::new();
        let mut cold = Duration::ZERO;
        for i in 0..args.iterations + 1 {
            let started = Instant::now();
            for ((_, uri), raw_json) in dashboard.iter().zip(&raw_answers) {
                let (_, json) = fetch(router.clone(), uri.clone()).await?;
                if &json != raw_json {
                    bail!("{uri}: the unrolled last day changed the answer");
                }
            }
            if i > 0 {
                live.push(started.elapsed());
            } else {
                cold = started.elapsed();
            }
        }
        let live = median(&mut live);
        println!(
            "{:<50} {:>10.1} {:>14.1}",
            "dashboard, last day not rolled up, first load",
            ms(cold),
            ratio(cold, count)
        );
        println!(
            "{:<50} {:>10.1} {:>14.1}",
            "dashboard, last day not rolled up, next loads",
            ms(live),
            ratio(live, count)
        );
        // Later, past the reuse window: the live sums are brought up to date
        // (new rows by id, the day's sessions recounted), not rebuilt.
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        let started = Instant::now();
        for ((_, uri), raw_json) in dashboard.iter().zip(&raw_answers) {
            let (_, json) = fetch(router.clone(), uri.clone()).await?;
            if &json != raw_json {
                bail!("{uri}: the updated live day changed the answer");
            }
        }
        let later = started.elapsed();
        println!(
            "{:<50} {:>10.1} {:>14.1}",
            "dashboard, last day not rolled up, 10 s later",
            ms(later),
            ratio(later, count)
        );
        // Put the last day's rollup back for the next run.
        while state.roll_up(10_000, true).await? > 0 {}
        if args.clickhouse {
            let requests: Vec<_> = dashboard
                .iter()
                .zip(&raw_answers)
                .chain(filtered.iter().zip(&filtered_raw))
                .chain(clicked.iter().zip(&clicked_raw))
                .collect();
            clickhouse(&config, &token, &requests, args.iterations, count).await?;
        }
        println!();
        println!(
            "targets: dashboard <= 1000 ms: {} (sequential {:.0} ms, concurrent {:.0} ms); slowest breakdown <= 200 ms: {} ({:.0} ms)",
            if par.min(seq) <= Duration::from_secs(1) { "met" } else { "MISSED" },
            ms(seq),
            ms(par),
            if worst_breakdown <= Duration::from_millis(200) { "met" } else { "MISSED" },
            ms(worst_breakdown),
        );
        Ok::<(), anyhow::Error>(())
    })
}

#[path = "../../collector/tests/support/clickhouse.rs"]
mod clickhouse_server;

/// The same requests answered from ClickHouse: every event shipped there
/// first (timed: the backfill a collector does when ClickHouse is added),
/// then each request's median time with ClickHouse answering every count,
/// and as `serve --clickhouse` answers (the rollups first), the answers
/// checked equal to SQLite's raw rows.
async fn clickhouse(
    config: &Config,
    token: &str,
    requests: &[(&(String, String), &serde_json::Value)],
    iterations: usize,
    count: Duration,
) -> Result<()> {
    crate::tools::ensure_clickhouse()?;
    // Kept beside the data set: a later run ships nothing new.
    let server = clickhouse_server::ClickHouseServer::start_in(config.data.join("clickhouse"));
    let state = AppState::open(
        Config {
            rollups: false,
            clickhouse: Some(tallymark_collector::clickhouse::ClickHouseConfig {
                url: server.url.clone(),
                database: "bench".into(),
            }),
            ..config.clone()
        },
        Arc::new(SystemClock),
    )?;
    let ch = state
        .analytics
        .as_ref()
        .map(|a| a.ch.clone())
        .context("no clickhouse")?;
    let held = || -> Result<i64> {
        let rows = ch.rows(&format!("SELECT count() FROM {}", ch.table("events")))?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .map_or(0, tallymark_collector::clickhouse::int))
    };
    // Nothing yet on a first run: the shipper creates the database.
    let before = held().unwrap_or(0);
    let started = Instant::now();
    // With the background shipper, which sends batches of its own meanwhile.
    state.ship_all().await?;
    let ship_time = started.elapsed();
    let shipped = held()? - before;
    println!();
    println!(
        "clickhouse (Debian 18.16, same machine): {shipped} events shipped in {:.1} s ({:.0} events/s: the backfill when ClickHouse is added; 0 when kept from an earlier run)",
        ship_time.as_secs_f64(),
        shipped as f64 / ship_time.as_secs_f64().max(1e-9)
    );
    // As `serve --clickhouse` answers: the rollups first, ClickHouse for the rest.
    let hybrid = AppState::open(
        Config {
            clickhouse: state.config.clickhouse.clone(),
            ..config.clone()
        },
        Arc::new(SystemClock),
    )?;
    let peer = MockConnectInfo("127.0.0.1:1".parse::<SocketAddr>()?);
    let routers = [app(state.clone()).layer(peer), app(hybrid).layer(peer)];
    let fetch = |router: &axum::Router, uri: String| fetch(router.clone(), token.to_string(), uri);
    println!(
        "{:<50} {:>10} {:>14} {:>12} {:>14}",
        "request (median, after a warm-up)", "ch ms", "x COUNT(*)", "rollups+ch", "x COUNT(*)"
    );
    let mut sums = [Duration::ZERO; 2];
    for ((name, uri), raw_json) in requests {
        let mut t = [Duration::ZERO; 2];
        for (i, router) in routers.iter().enumerate() {
            let (_, json) = fetch(router, uri.clone()).await?;
            if &&json != raw_json {
                bail!("{uri}: clickhouse and sqlite disagree:\n{json}\n{raw_json}");
            }
            let mut times = Vec::new();
            for _ in 0..iterations {
                times.push(fetch(router, uri.clone()).await?.0);
            }
            t[i] = median(&mut times);
            sums[i] += t[i];
        }
        println!(
            "{name:<50} {:>10.1} {:>14.1} {:>12.1} {:>14.1}",
            ms(t[0]),
            ratio(t[0], count),
            ms(t[1]),
            ratio(t[1], count)
        );
    }
    println!(
        "{:<50} {:>10.1} {:>14.1} {:>12.1} {:>14.1}",
        format!("sum of the {}", requests.len()),
        ms(sums[0]),
        ratio(sums[0], count),
        ms(sums[1]),
        ratio(sums[1], count)
    );
    println!("every clickhouse answer identical to sqlite's raw rows");
    Ok(())
}

/// One request through `router` as the admin: its time and its JSON (an
/// error unless `200`).
async fn fetch(
    router: axum::Router,
    token: String,
    uri: String,
) -> Result<(Duration, serde_json::Value)> {
    let started = Instant::now();
    let resp = router
        .oneshot(
            Request::get(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())?,
        )
        .await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!("{uri}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok((started.elapsed(), serde_json::from_slice(&body)?))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(d: Duration, base: Duration) -> f64 {
    d.as_secs_f64() / base.as_secs_f64().max(1e-9)
}
