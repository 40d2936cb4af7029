//! A small HTTP/1.1 load generator for `cargo xtask bench ingest` (hyper's
//! client connection API over keep-alive connections).
//!
//!   loadgen PORT CONNECTIONS SECONDS [RATE|0] [same|distinct] [TAG]
//!
//! RATE 0 is closed-loop (each connection sends its next request when the
//! previous answered); otherwise requests are paced to RATE per second in
//! total, and each latency counts from the moment its request was due.
//! `same` sends every request as one visitor (one User-Agent);
//! `distinct` gives each connection its own. Prints one JSON line.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Outcome {
    latencies_us: Vec<u64>,
    stored: u64,
    dropped: u64,
    other: u64,
    errors: u64,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let port: u16 = arg(0, "8080").parse().unwrap_or(8080);
    let connections: usize = arg(1, "32").parse().unwrap_or(32);
    let seconds: u64 = arg(2, "10").parse().unwrap_or(10);
    let rate: u64 = arg(3, "0").parse().unwrap_or(0);
    let same = arg(4, "distinct") == "same";
    let tag = arg(5, "run");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let tag = tag.clone();
            tokio::spawn(async move {
                let interval =
                    (rate > 0).then(|| Duration::from_secs_f64(connections as f64 / rate as f64));
                run_connection(port, c, same, interval, deadline, &tag).await
            })
        })
        .collect();
    let mut all = Outcome {
        latencies_us: Vec::new(),
        stored: 0,
        dropped: 0,
        other: 0,
        errors: 0,
    };
    for t in tasks {
        if let Ok(o) = t.await {
            all.latencies_us.extend(o.latencies_us);
            all.stored += o.stored;
            all.dropped += o.dropped;
            all.other += o.other;
            all.errors += o.errors;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((all.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        all.latencies_us[i] as f64 / 1000.0
    };
    let n = all.latencies_us.len();
    println!(
        "{{\"requests\":{n},\"stored\":{},\"dropped\":{},\"other_status\":{},\"errors\":{},\"rps\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        all.stored,
        all.dropped,
        all.other,
        all.errors,
        n as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

async fn run_connection(
    port: u16,
    conn_no: usize,
    same: bool,
    interval: Option<Duration>,
    deadline: Instant,
    tag: &str,
) -> Outcome {
    let mut out = Outcome {
        latencies_us: Vec::new(),
        stored: 0,
        dropped: 0,
        other: 0,
        errors: 0,
    };
    let ua = if same {
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".to_string()
    } else {
        format!(
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 load/{conn_no}"
        )
    };
    let mut sender = None;
    let mut ticker = interval.map(|i| {
        let mut t = tokio::time::interval(i);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut i = 0u64;
    while Instant::now() < deadline {
        // Paced: latency counts from when the request was due, not when it
        // went out, so a server that falls behind shows it (no coordinated
        // omission).
        let due = match ticker.as_mut() {
            Some(t) => Some(t.tick().await.into_std()),
            None => None,
        };
        if sender.is_none() {
            sender = connect(port).await;
            if sender.is_none() {
                out.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let body = format!(
            r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/page/{}","referrer":"https://www.google.com/","screen_width":1440,"event_id":"{tag}-{conn_no}-{i}"}}"#,
            i % 50
        );
        i += 1;
        let req = Request::post("/api/event")
            .header("host", "localhost")
            .header("content-type", "text/plain;charset=UTF-8")
            .header("user-agent", &ua)
            .body(Full::new(Bytes::from(body)));
        let Ok(req) = req else { continue };
        let t0 = due.unwrap_or_else(Instant::now);
        match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let dropped = resp.headers().contains_key("x-tallymark-dropped");
                let _ = resp.into_body().collect().await;
                out.latencies_us.push(t0.elapsed().as_micros() as u64);
                match (status, dropped) {
                    (202, false) => out.stored += 1,
                    (202, true) => out.dropped += 1,
                    _ => out.other += 1,
                }
            }
            Err(_) => {
                out.errors += 1;
                sender = None;
            }
        }
    }
    out
}

async fn connect(port: u16) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}
