//! `cargo xtask seed --events N [--data DIR] [--sites K] [--seed S] [--days D]`:
//! a realistic, deterministic data set written through the collector's own
//! storage code (`store::schema::open`, `store::rows::{insert_event,
//! upsert_session}`, `sites::ensure`).
//!
//! Sites get Zipf-like shares of the traffic (site 1 the most). Each session
//! picks a visitor from the site's pool (the id is salted per local day, as
//! in production, so a returning person gets a new id each day), a
//! time-of-day shaped start, a source (direct, search, social, newsletter
//! campaigns, referrals), a country and a device, then 1 to ~12 pageviews
//! with 10 s to 5 min between them and sometimes a custom event with
//! properties; most views get an engagement row (time on page, scroll
//! depth). Same arguments, same data.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use jiff::tz::TimeZone;
use tallymark_collector::sites;
use tallymark_collector::store::rows::{self, Dimensions, EngagementRow, EventRow, SessionRow};
use tallymark_collector::store::schema;
use tallymark_core::useragent::{Os, OsVersion};

pub struct SeedArgs {
    pub events: u64,
    pub data: PathBuf,
    pub sites: usize,
    pub seed: u64,
    pub days: i64,
}

/// The last day of generated data is the day before this instant (UTC).
pub const END_UTC: &str = "2026-04-01T00:00:00Z";

const TIMEZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "UTC",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
];

pub fn parse_args(args: &[String]) -> Result<SeedArgs> {
    let mut out = SeedArgs {
        events: 1_000_000,
        data: PathBuf::from("target/seed"),
        sites: 10,
        seed: 1,
        days: 30,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => out.events = parse_count(value)?,
            "--data" => out.data = PathBuf::from(value),
            "--sites" => out.sites = value.parse().context("--sites")?,
            "--seed" => out.seed = value.parse().context("--seed")?,
            "--days" => out.days = value.parse().context("--days")?,
            _ => bail!(
                "usage: cargo xtask seed --events N [--data DIR] [--sites K] [--seed S] [--days D]"
            ),
        }
    }
    if out.sites == 0 || out.days <= 0 {
        bail!("--sites and --days must be positive");
    }
    Ok(out)
}

/// `10000`, `10k`, `10M`.
pub fn parse_count(s: &str) -> Result<u64> {
    let (digits, factor) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    Ok(digits
        .parse::<u64>()
        .with_context(|| format!("{s:?} is not a count"))?
        * factor)
}

/// SplitMix64: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// An index into `weights`, proportionally.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut pick = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if pick < u64::from(*w) {
                return i;
            }
            pick -= u64::from(*w);
        }
        weights.len() - 1
    }
}

/// A traffic source: (referrer URL, source, channel, utm source, medium, campaign).
type Src = (
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const SOURCES: &[(u32, Src)] = &[
    (40, (None, None, "direct", None, None, None)),
    (
        25,
        (
            Some("google.com"),
            Some("Google"),
            "organic_search",
            None,
            None,
            None,
        ),
    ),
    (
        4,
        (
            Some("bing.com"),
            Some("Bing"),
            "organic_search",
            None,
            None,
            None,
        ),
    ),
    (
        4,
        (
            Some("duckduckgo.com"),
            Some("DuckDuckGo"),
            "organic_search",
            None,
            None,
            None,
        ),
    ),
    (
        3,
        (
            Some("news.ycombinator.com"),
            Some("Hacker News"),
            "organic_social",
            None,
            None,
            None,
        ),
    ),
    (
        3,
        (
            Some("reddit.com"),
            Some("Reddit"),
            "organic_social",
            None,
            None,
            None,
        ),
    ),
    (
        3,
        (
            Some("t.co"),
            Some("Twitter"),
            "organic_social",
            None,
            None,
            None,
        ),
    ),
    (
        2,
        (
            Some("facebook.com"),
            Some("Facebook"),
            "organic_social",
            None,
            None,
            None,
        ),
    ),
    (
        5,
        (
            None,
            Some("newsletter"),
            "email",
            Some("newsletter"),
            Some("email"),
            Some("spring-launch"),
        ),
    ),
    (
        3,
        (
            None,
            Some("Google"),
            "paid_search",
            Some("google"),
            Some("cpc"),
            Some("brand"),
        ),
    ),
    (
        2,
        (
            Some("github.com"),
            Some("GitHub"),
            "referral",
            None,
            None,
            None,
        ),
    ),
    (
        2,
        (
            Some("blog.example.org/post"),
            Some("blog.example.org"),
            "referral",
            None,
            None,
            None,
        ),
    ),
    (
        1,
        (
            Some("lobste.rs"),
            Some("Lobsters"),
            "organic_social",
            None,
            None,
            None,
        ),
    ),
];

/// Regions and cities of a few countries, as a city database names them
/// (the others have none, as with a country database).
const PLACES: &[(&str, &[(&str, &str)])] = &[
    (
        "US",
        &[
            ("California", "San Francisco"),
            ("California", "Los Angeles"),
            ("New York", "New York"),
            ("Oregon", "Portland"),
            ("Maine", "Portland"),
            ("Texas", "Austin"),
        ],
    ),
    (
        "DE",
        &[
            ("Bavaria", "Munich"),
            ("Berlin", "Berlin"),
            ("Hamburg", "Hamburg"),
            ("North Rhine-Westphalia", "Cologne"),
        ],
    ),
    (
        "GB",
        &[
            ("England", "London"),
            ("Scotland", "Edinburgh"),
            ("England", "Manchester"),
        ],
    ),
    (
        "FR",
        &[
            ("Île-de-France", "Paris"),
            ("Provence-Alpes-Côte d'Azur", "Marseille"),
        ],
    ),
];

const COUNTRIES: &[(u32, &str)] = &[
    (22, "US"),
    (12, "DE"),
    (8, "GB"),
    (7, "FR"),
    (6, "IN"),
    (5, "CA"),
    (4, "NL"),
    (4, "BR"),
    (4, "JP"),
    (3, "ES"),
    (3, "IT"),
    (3, "PL"),
    (3, "SE"),
    (3, "AU"),
    (2, "CH"),
    (2, "AT"),
    (9, "--"),
];

/// (browser, os, device)
const AGENTS: &[(u32, (&str, &str, &str))] = &[
    (30, ("chrome", "windows", "desktop")),
    (10, ("chrome", "macos", "desktop")),
    (8, ("safari", "macos", "desktop")),
    (6, ("firefox", "windows", "desktop")),
    (4, ("firefox", "linux", "desktop")),
    (5, ("edge", "windows", "desktop")),
    (18, ("safari", "ios", "mobile")),
    (14, ("chrome", "android", "mobile")),
    (3, ("samsung_internet", "android", "mobile")),
    (2, ("safari", "ios", "tablet")),
];

const EVENTS: &[(u32, &str, &str, &[&str])] = &[
    (5, "Signup", "plan", &["free", "pro", "team"]),
    (
        3,
        "Download",
        "file",
        &["guide.pdf", "report.pdf", "app.dmg"],
    ),
    (2, "Purchase", "plan", &["pro", "team"]),
    (
        2,
        "Outbound Link: Click",
        "url",
        &["https://github.com/", "https://docs.rs/"],
    ),
];

fn paths(n: usize) -> Vec<String> {
    let mut out = vec![
        "/".to_string(),
        "/pricing".into(),
        "/about".into(),
        "/docs".into(),
    ];
    for i in 0..n.saturating_sub(4) {
        out.push(match i % 3 {
            0 => format!("/blog/post-{i}"),
            1 => format!("/docs/page-{i}"),
            _ => format!("/product/{i}"),
        });
    }
    out
}

/// Zipf-ish index in `0..n` (rank 0 most likely).
fn zipf(rng: &mut Rng, n: usize) -> usize {
    // Inverse of a continuous 1/x density over [1, n+1).
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let x = ((n as f64 + 1.0).ln() * u).exp() - 1.0;
    (x as usize).min(n - 1)
}

/// Hour-of-day weights (local time): quiet nights, busy afternoons.
const HOURS: [u32; 24] = [
    3, 2, 2, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 10, 11, 11, 10, 9, 8, 8, 7, 6, 5, 4,
];

pub struct Summary {
    pub events: u64,
    pub sessions: u64,
    pub sites: Vec<(i64, String, String)>,
    pub seconds: f64,
}

/// Writes the data set into `args.data` (its `tallymark.sqlite3`).
pub fn seed(args: &SeedArgs) -> Result<Summary> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let db = args.data.join("tallymark.sqlite3");
    let mut conn = schema::open(&db)?;
    // Bulk load: the collector's own schema and row code, without per-batch fsync.
    conn.pragma_update(None, "synchronous", "OFF")?;
    // Sessions arrive in random time order: keep the index pages in memory.
    conn.pragma_update(None, "cache_size", -1_000_000)?;
    let started = Instant::now();
    let end: jiff::Timestamp = END_UTC.parse()?;
    let start_ms = end.as_millisecond() - args.days * 86_400_000;

    let mut site_rows = Vec::new();
    for i in 0..args.sites {
        let tz_name = TIMEZONES[i % TIMEZONES.len()];
        let site = sites::ensure(&conn, &format!("site{}.example", i + 1), tz_name, start_ms)?;
        site_rows.push(site);
    }
    let weights: Vec<u32> = (0..args.sites)
        .map(|i| (1_000_000 / (i as u32 + 1)).max(1))
        .collect();
    let tzs: Vec<TimeZone> = site_rows.iter().map(|s| s.tz.clone()).collect();
    let all_paths = paths(300);
    let mut rng = Rng::new(args.seed);
    let (mut events, mut sessions, mut engagements) = (0u64, 0u64, 0u64);
    let src_w: Vec<u32> = SOURCES.iter().map(|s| s.0).collect();
    let country_w: Vec<u32> = COUNTRIES.iter().map(|c| c.0).collect();
    let agent_w: Vec<u32> = AGENTS.iter().map(|a| a.0).collect();
    let event_w: Vec<u32> = EVENTS.iter().map(|e| e.0).collect();
    let hour_w: Vec<u32> = HOURS.to_vec();

    while events < args.events {
        let tx = conn.transaction()?;
        let batch_end = (events + 200_000).min(args.events);
        while events < batch_end {
            let s = rng.weighted(&weights);
            let site = &site_rows[s];
            // Start: a uniform day, a shaped local hour, a uniform minute.
            let day = rng.below(args.days as u64) as i64;
            let hour = rng.weighted(&hour_w) as i64;
            let offset_ms = i64::from(
                tzs[s]
                    .to_offset(jiff::Timestamp::from_millisecond(
                        start_ms + day * 86_400_000,
                    )?)
                    .seconds(),
            ) * 1000;
            let mut t = start_ms + day * 86_400_000 + hour * 3_600_000 - offset_ms
                + rng.below(3_600_000) as i64;
            t = t.clamp(start_ms, end.as_millisecond() - 3_600_000);
            // A person from the site's pool; ids are per local day.
            let person = rng.below(200_000 + 2_000_000 / (s as u64 + 1));
            // As the collector does: the id is the person's on the local day
            // the visit starts (so an id spans two days only through a visit
            // that crosses midnight).
            let offset_at_t = i64::from(
                tzs[s]
                    .to_offset(jiff::Timestamp::from_millisecond(t)?)
                    .seconds(),
            ) * 1000;
            let local_day = (t + offset_at_t).div_euclid(86_400_000);
            let visitor_id = (mix(site.id as u64, person, local_day as u64) >> 1) as i64;
            let session_id = (rng.next_u64() >> 1) as i64;
            let src = SOURCES[rng.weighted(&src_w)].1;
            let country = COUNTRIES[rng.weighted(&country_w)].1;
            // One visit in ten of a country with places is not placed (the
            // address is in no city of the database).
            let place = PLACES
                .iter()
                .find(|(c, _)| *c == country)
                .filter(|_| !rng.chance(0.1))
                .map(|(_, places)| places[rng.below(places.len() as u64) as usize]);
            let (browser, os, device) = AGENTS[rng.weighted(&agent_w)].1;
            let (channel, browser, os, device) =
                Dimensions::from_labels(src.2, browser, os, device);
            let dims = Dimensions {
                referrer: src.0.map(str::to_string),
                referrer_domain: src.0.map(|r| r.split('/').next().unwrap_or(r).to_string()),
                source: src.1.map(str::to_string),
                channel,
                utm_source: src.3.map(str::to_string),
                utm_medium: src.4.map(str::to_string),
                utm_campaign: src.5.map(str::to_string),
                utm_term: None,
                utm_content: None,
                click_id: None,
                country: (country != "--").then(|| country.to_string()),
                region: place.map(|p| p.0.to_string()),
                city: place.map(|p| p.1.to_string()),
                browser,
                browser_major: Some(120 + rng.below(12) as u16),
                os,
                os_version: match os {
                    Os::Windows => Some(OsVersion {
                        major: 10,
                        minor: None,
                    }),
                    Os::MacOs => Some(OsVersion {
                        major: 10,
                        minor: Some(15),
                    }),
                    Os::Ios => Some(OsVersion {
                        major: 16 + rng.below(3) as u16,
                        minor: Some(1 + rng.below(6) as u16),
                    }),
                    Os::Android => Some(OsVersion {
                        major: 12 + rng.below(4) as u16,
                        minor: None,
                    }),
                    _ => None,
                },
                device,
            };
            let bounce = rng.chance(0.45);
            let pageviews = if bounce {
                1
            } else {
                2 + rng.below(4) + rng.below(4) * rng.below(3)
            };
            let with_event = rng.chance(0.12);
            let mut session = SessionRow {
                id: session_id,
                site_id: site.id,
                visitor_id,
                version: 0,
                started_ms: t,
                last_ms: t,
                entry_path: String::new(),
                exit_path: String::new(),
                pageviews: 0,
                events: 0,
                interactions: 0,
                dims: dims.clone(),
            };
            let hits = pageviews + u64::from(with_event);
            let event_at = if with_event {
                rng.below(hits)
            } else {
                u64::MAX
            };
            for h in 0..hits {
                if h > 0 {
                    t += 10_000 + rng.below(290_000) as i64;
                }
                let path = all_paths[zipf(&mut rng, all_paths.len())].clone();
                let mut revenue = None;
                let (kind, name, props) = if h == event_at {
                    let (_, name, key, values) = EVENTS[rng.weighted(&event_w)];
                    let value = values[rng.below(values.len() as u64) as usize];
                    let props = serde_json::json!({ key: value }).to_string();
                    if name == "Purchase" {
                        // Plan price, a quarter of them in dollars.
                        let amount = if value == "team" { 49.0 } else { 19.0 };
                        let currency = if rng.chance(0.25) { "USD" } else { "EUR" };
                        revenue = Some((amount, currency.to_string()));
                    }
                    ("event", Some(name.to_string()), Some(props))
                } else {
                    ("pageview", None, None)
                };
                if kind == "pageview" {
                    session.pageviews += 1;
                    if session.pageviews == 1 {
                        session.entry_path = path.clone();
                    }
                    session.exit_path = path.clone();
                } else {
                    session.events += 1;
                    session.interactions += 1;
                    if session.entry_path.is_empty() {
                        session.entry_path = path.clone();
                        session.exit_path = path.clone();
                    }
                }
                session.version += 1;
                session.last_ms = t;
                let row = EventRow {
                    site_id: site.id,
                    ts_ms: t,
                    kind,
                    name,
                    visitor_id,
                    session_id,
                    hostname: site.domain.clone(),
                    path,
                    dims: dims.clone(),
                    screen_width: Some(if device == tallymark_core::useragent::Device::Mobile {
                        390
                    } else {
                        1440
                    }),
                    props,
                    revenue_amount: revenue.as_ref().map(|r| r.0),
                    revenue_currency: revenue.map(|r| r.1),
                    event_id: None,
                };
                let engaged_at = row.ts_ms;
                let engaged_path = (row.kind == "pageview").then(|| row.path.clone());
                rows::insert_event(&tx, &row, None)?;
                events += 1;
                // Most views send their engagement when they end: from a
                // generator of their own, so the events are the same as
                // before engagement was seeded.
                if let Some(path) = engaged_path {
                    let mut e = Rng::new(mix(session_id as u64, h, 0xE7));
                    if e.chance(0.8) {
                        rows::insert_engagement(
                            &tx,
                            &EngagementRow {
                                site_id: site.id,
                                ts_ms: engaged_at + 5_000 + e.below(55_000) as i64,
                                session_id,
                                hostname: site.domain.clone(),
                                path,
                                engaged_ms: e.below(240_000) as u32,
                                scroll_depth: e.chance(0.9).then(|| 10 + e.below(91) as u8),
                            },
                        )?;
                        engagements += 1;
                    }
                }
            }
            rows::upsert_session(&tx, &session)?;
            sessions += 1;
        }
        tx.commit()?;
        eprint!("\r  seeded {events} events, {sessions} sessions, {engagements} engagements");
    }
    eprintln!();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(Summary {
        events,
        sessions,
        sites: site_rows
            .iter()
            .map(|s| (s.id, s.domain.clone(), s.timezone.clone()))
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A well-mixed id for (site, person, day): the seed packs `b` (< 2^40) and
/// `c` (< 2^24) into separate bits, so distinct pairs never share a seed,
/// and SplitMix64's output step is a bijection, so they never share an id.
fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut r = Rng::new(a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b << 24) ^ (c & 0xFF_FFFF));
    r.next_u64()
}

pub fn run(args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    if args.data.join("tallymark.sqlite3").exists() {
        bail!(
            "{} already holds a database; choose another --data or remove it",
            args.data.display()
        );
    }
    let s = seed(&args)?;
    println!(
        "seeded {} events in {} sessions over {} days for {} sites into {} in {:.1} s",
        s.events,
        s.sessions,
        args.days,
        s.sites.len(),
        db_path(&args.data).display(),
        s.seconds
    );
    Ok(())
}

pub fn db_path(data: &Path) -> PathBuf {
    data.join("tallymark.sqlite3")
}

/// Re-runs this xtask command under `--release` when built in debug
/// (seeding and benchmarks need an optimised build). `Ok(true)`: done.
pub fn reexec_in_release(args: &[String]) -> Result<bool> {
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    let status = std::process::Command::new("cargo")
        .args(["run", "--quiet", "--release", "-p", "xtask", "--"])
        .args(args)
        .status()
        .context("starting cargo run --release -p xtask")?;
    if !status.success() {
        bail!("xtask (release) exited with {status}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(db: &Path) -> (i64, i64, i64, i64) {
        let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{e}"));
        conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM sessions),
                    (SELECT SUM(visitor_id % 1000003) FROM events),
                    (SELECT COUNT(DISTINCT site_id) FROM events)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_same_seed_gives_the_same_data_set_and_another_seed_another() {
        let dir = std::env::temp_dir().join(format!("tallymark-seed-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = |name: &str, n: u64| {
            let args = SeedArgs {
                events: 3000,
                data: dir.join(name),
                sites: 3,
                seed: n,
                days: 5,
            };
            let s = super::seed(&args).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.events >= 3000 && s.sessions > 0);
            digest(&db_path(&args.data))
        };
        let a = run("a", 7);
        assert_eq!(a, run("b", 7));
        assert_ne!(a, run("c", 8));
        assert_eq!(a.3, 3, "every site gets events");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
