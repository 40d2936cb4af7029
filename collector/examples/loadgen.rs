//! A small HTTP/1.1 load generator for `cargo xtask bench ingest` (hyper's
//! client connection API over keep-alive connections).
//!
//!   loadgen PORT CONNECTIONS SECONDS [RATE|0|burst] [same|distinct] [TAG] [ids]
//!
//! RATE 0 is closed-loop (each connection sends its next request when the
//! previous answered); a number paces requests to RATE per second in total,
//! and each latency counts from the moment its request was due. `burst`
//! sends one request on every connection at the same moment, waits for all
//! answers, pauses 5 ms and starts again; each latency counts from the
//! burst's start.
//! `same` sends every request as one visitor (one User-Agent);
//! `distinct` gives each connection its own. Bodies are what the SDK's
//! beacon sends (no `event_id`); `ids` gives every request a unique
//! `event_id` too, as API clients that retry may. Prints one JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Clone, Copy)]
struct Shape {
    /// One visitor for every connection.
    same: bool,
    /// A unique `event_id` per request.
    ids: bool,
}

/// When each connection sends.
#[derive(Clone)]
enum Pace {
    /// The next request as soon as the previous one is answered.
    Closed,
    /// One request per interval on each connection.
    Rate(Duration),
    /// All connections at once, when the coordinator says so.
    Burst(Arc<Bursts>),
}

struct Bursts {
    start: tokio::sync::Barrier,
    end: tokio::sync::Barrier,
    stop: AtomicBool,
}

const BURST_PAUSE: Duration = Duration::from_millis(5);

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
    let rate_arg = arg(3, "0");
    let rate: u64 = rate_arg.parse().unwrap_or(0);
    let same = arg(4, "distinct") == "same";
    let tag = arg(5, "run");
    let ids = arg(6, "") == "ids";
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let pace = if rate_arg == "burst" {
        Pace::Burst(Arc::new(Bursts {
            start: tokio::sync::Barrier::new(connections + 1),
            end: tokio::sync::Barrier::new(connections + 1),
            stop: AtomicBool::new(false),
        }))
    } else if rate > 0 {
        Pace::Rate(Duration::from_secs_f64(connections as f64 / rate as f64))
    } else {
        Pace::Closed
    };
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let tag = tag.clone();
            let pace = pace.clone();
            tokio::spawn(async move {
                let shape = Shape { same, ids };
                run_connection(port, (c, connections), shape, pace, deadline, &tag).await
            })
        })
        .collect();
    if let Pace::Burst(bursts) = &pace {
        // Connect first, so the first burst does not time the handshakes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while Instant::now() < deadline {
            bursts.start.wait().await;
            bursts.end.wait().await;
            tokio::time::sleep(BURST_PAUSE).await;
        }
        bursts.stop.store(true, Ordering::SeqCst);
        bursts.start.wait().await;
    }
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
    (conn_no, connections): (usize, usize),
    Shape { same, ids }: Shape,
    pace: Pace,
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
    // Connections start a fraction of the period apart, so the offered load
    // is spread evenly (one request every 1/RATE s), not a burst of every
    // connection at once each period.
    let interval = match pace {
        Pace::Rate(i) => Some(i),
        _ => None,
    };
    let bursts = match &pace {
        Pace::Burst(b) => Some(b.clone()),
        _ => None,
    };
    if bursts.is_some() {
        sender = connect(port).await;
    }
    let mut ticker = interval.map(|i| {
        let offset = i.mul_f64(conn_no as f64 / connections as f64);
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, i);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut i = 0u64;
    let mut last_done = Instant::now();
    while bursts.is_some() || Instant::now() < deadline {
        let burst_start = match &bursts {
            Some(b) => {
                b.start.wait().await;
                if b.stop.load(Ordering::SeqCst) {
                    break;
                }
                Some(Instant::now())
            }
            None => None,
        };
        // Paced: when the previous answer came after this request was due,
        // its latency counts from when it was due, not when it went out, so
        // a server that falls behind shows it (no coordinated omission).
        // Otherwise it counts from sending: tokio's timer fires up to ~1 ms
        // late, and that delay is the load generator's, not the server's.
        let due = match ticker.as_mut() {
            Some(t) => Some(t.tick().await.into_std()),
            None => None,
        };
        let event_id = if ids {
            format!(r#","event_id":"{tag}-{conn_no}-{i}""#)
        } else {
            String::new()
        };
        let body = format!(
            r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/page/{}","referrer":"https://www.google.com/","screen_width":1440{event_id}}}"#,
            i % 50
        );
        i += 1;
        let t0 = match (due, burst_start) {
            (_, Some(start)) => start,
            (Some(due), None) if last_done > due => due,
            _ => Instant::now(),
        };
        if let Some(done) = send(port, &mut sender, &ua, body, &mut out).await {
            last_done = done;
            out.latencies_us
                .push(done.duration_since(t0).as_micros() as u64);
        }
        if let Some(b) = &bursts {
            b.end.wait().await;
        }
    }
    out
}

/// Sends one event (connecting first if needed); returns when its answer
/// was read, or `None` on a connection error.
async fn send(
    port: u16,
    sender: &mut Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    ua: &str,
    body: String,
    out: &mut Outcome,
) -> Option<Instant> {
    if sender.is_none() {
        *sender = connect(port).await;
    }
    let Some(s) = sender.as_mut() else {
        out.errors += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        return None;
    };
    let req = Request::post("/api/event")
        .header("host", "localhost")
        .header("content-type", "text/plain;charset=UTF-8")
        .header("user-agent", ua)
        .body(Full::new(Bytes::from(body)))
        .ok()?;
    match s.send_request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let dropped = resp.headers().contains_key("x-tallymark-dropped");
            let _ = resp.into_body().collect().await;
            match (status, dropped) {
                (202, false) => out.stored += 1,
                (202, true) => out.dropped += 1,
                _ => out.other += 1,
            }
            Some(Instant::now())
        }
        Err(_) => {
            out.errors += 1;
            *sender = None;
            None
        }
    }
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
