//! The core hot path per event — parse + validate + classify + visitor id +
//! session step — against a bare `serde_json` parse of the same payload, in
//! the same run. Prints ns/event for both and the ratio (target ≤ 3×).
//!
//!     cargo bench -p tallymark-core --bench hot_path

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tallymark_core::bots::{self, BotRules, Classification};
use tallymark_core::session::{self, Hit, SessionConfig};
use tallymark_core::visitor::{Salt, visitor_id};
use tallymark_core::{validate, wire};

const BODY: &[u8] = br#"{"kind":"pageview","site":"example.com","url":"https://www.example.com/blog/rust-analytics?utm_source=newsletter&utm_medium=email","referrer":"https://www.google.com/","screen_width":1440}"#;
const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn bare_parse(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
}

fn hot_path(
    body: &[u8],
    rules: &BotRules,
    salt: &Salt,
    config: &SessionConfig,
    prev: Option<session::Session>,
) -> Option<session::Session> {
    let payload = wire::parse(body).ok()?;
    let valid = validate::validate(payload).ok()?;
    if let Classification::Bot(_) = bots::classify(rules, UA, &valid.path) {
        return None;
    }
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let id = visitor_id(salt, &valid.site, ip, UA);
    let hit = Hit {
        kind: valid.kind,
        path: &valid.path,
        interactive: true,
    };
    let (s, _) = session::step(prev, hit, 1_000, config, id.0);
    Some(s)
}

fn per_event(mut f: impl FnMut()) -> f64 {
    let n = 200_000;
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn bench(c: &mut Criterion) {
    let rules = BotRules::default();
    let salt = Salt::from_bytes([7; 32]);
    let config = SessionConfig::default();
    let prev = hot_path(BODY, &rules, &salt, &config, None);
    assert!(prev.is_some(), "the benchmark payload must pass");

    let mut group = c.benchmark_group("per_event");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("bare_serde_json_parse", |b| {
        b.iter(|| bare_parse(black_box(BODY)))
    });
    group.bench_function("core_hot_path", |b| {
        b.iter(|| hot_path(black_box(BODY), &rules, &salt, &config, prev.clone()))
    });
    group.finish();

    // The figures BENCHMARKS.md records, measured back to back in this process.
    let base = per_event(|| {
        black_box(bare_parse(black_box(BODY)));
    });
    let full = per_event(|| {
        black_box(hot_path(
            black_box(BODY),
            &rules,
            &salt,
            &config,
            prev.clone(),
        ));
    });
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let parsed = wire::parse(BODY).ok();
    let valid = parsed.clone().and_then(|p| validate::validate(p).ok());
    let stages = [
        (
            "wire::parse",
            per_event(|| {
                black_box(wire::parse(black_box(BODY)).ok());
            }),
        ),
        (
            "validate",
            per_event(|| {
                black_box(parsed.clone().map(validate::validate));
            }),
        ),
        (
            "bots::classify",
            per_event(|| {
                black_box(bots::classify(
                    &rules,
                    black_box(UA),
                    "/blog/rust-analytics",
                ));
            }),
        ),
        (
            "visitor_id",
            per_event(|| {
                black_box(visitor_id(&salt, "example.com", ip, black_box(UA)));
            }),
        ),
        (
            "session::step",
            per_event(|| {
                if let Some(v) = &valid {
                    let hit = Hit {
                        kind: v.kind,
                        path: &v.path,
                        interactive: true,
                    };
                    black_box(session::step(prev.clone(), hit, 1_000, &config, 1));
                }
            }),
        ),
    ];
    println!();
    for (name, ns) in stages {
        println!("  stage {name:<16} {ns:>6.0} ns");
    }
    println!("\nbare serde_json parse: {base:.0} ns/event");
    println!("core hot path:         {full:.0} ns/event");
    println!("ratio:                 {:.2}x (target <= 3x)", full / base);
}

criterion_group!(benches, bench);
criterion_main!(benches);
