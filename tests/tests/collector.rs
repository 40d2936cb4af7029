//! The real `tallymark` binary: durability under `kill -9`, no raw IP at
//! rest or in logs, and the operator commands.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tallymark_e2e::{Collector, bin, tallymark};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn event(id: &str) -> String {
    format!(
        r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/p/{id}","event_id":"{id}"}}"#
    )
}

#[test]
fn every_acknowledged_event_survives_kill_dash_nine() {
    let collector = Collector::start();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let port = collector.port;
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{w}-{i}");
                    i += 1;
                    let ua = format!("{FIREFOX} worker/{w}");
                    match tallymark_e2e::http_post(
                        port,
                        "/api/event",
                        &event(&id),
                        &[("User-Agent", &ua)],
                    ) {
                        Some((202, head)) if !head.contains("x-tallymark-dropped") => {
                            acked.lock().unwrap().insert(id);
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let data = collector.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} events were acknowledged",
        acked.len()
    );

    // Restart on the same directory: recovery must not lose or refuse anything.
    let again = Collector::serve(data, &[]);
    let conn = rusqlite::Connection::open(again.db_path()).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM events").unwrap();
    let stored: HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "kill -9: {} acknowledged, {} stored, 0 lost",
        acked.len(),
        stored.len()
    );
    let (status, _) = again
        .post(
            "/api/event",
            &event("after-restart"),
            &[("User-Agent", FIREFOX)],
        )
        .unwrap();
    assert_eq!(status, 202);
}

#[test]
fn raw_ips_never_reach_disk_or_logs_and_no_cookie_is_set() {
    let collector = Collector::start_with(&["--trusted-proxies", "127.0.0.1,::1"]);
    let ips = ["198.51.100.77", "2001:db8:77::1234"];
    for ip in ips {
        for path in ["/a", "/b"] {
            let body = format!(
                r#"{{"kind":"pageview","site":"localhost","url":"http://localhost{path}"}}"#
            );
            let (status, head) = collector
                .post(
                    "/api/event",
                    &body,
                    &[("User-Agent", FIREFOX), ("X-Forwarded-For", ip)],
                )
                .unwrap();
            assert_eq!(status, 202, "{head}");
            assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
        }
    }
    // Two distinct forwarded clients: the headers were believed, then dropped.
    let conn = rusqlite::Connection::open(collector.db_path()).unwrap();
    let visitors: i64 = conn
        .query_row("SELECT COUNT(DISTINCT visitor_id) FROM events", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(visitors, 2);
    drop(conn);
    let logs = collector.logs();
    let data = collector.kill();

    let v4: std::net::Ipv4Addr = ips[0].parse().unwrap();
    let v6: std::net::Ipv6Addr = ips[1].parse().unwrap();
    let needles: Vec<Vec<u8>> = vec![
        ips[0].as_bytes().to_vec(),
        ips[1].as_bytes().to_vec(),
        "2001:0db8:0077".as_bytes().to_vec(),
        v4.octets().to_vec(),
        v6.octets().to_vec(),
    ];
    let mut scanned = 0;
    for file in walk(data.path()) {
        let bytes = std::fs::read(&file).unwrap();
        scanned += 1;
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(scanned >= 1);
    assert!(!logs.is_empty(), "debug logs were written");
    for ip in ips {
        assert!(!logs.contains(ip), "the log mentions {ip}");
    }
    assert!(
        !logs.contains("Firefox/133"),
        "the log mentions the User-Agent"
    );
}

#[test]
fn the_bots_command_explains_each_line() {
    let mut child = Command::new(bin())
        .arg("bots")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // CRLF line ends and a Latin-1 byte (an old log file) are read, not fatal.
    let mut input = format!(
        "{FIREFOX}\r\nMozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)\n\ncurl/8.5.0\n"
    )
    .into_bytes();
    input.extend_from_slice(FIREFOX.as_bytes());
    input.extend_from_slice(b" caf\xe9\n");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "human\nbot crawler\nbot empty_user_agent\nbot short_user_agent\nhuman\n"
    );
}

#[test]
fn sites_are_added_listed_and_removed_and_unknown_sites_refused() {
    let data = tempfile::tempdir().unwrap();
    tallymark(
        &[
            "site",
            "add",
            "www.Example.com",
            "--timezone",
            "Europe/Berlin",
            "--data",
        ],
        data.path(),
    );
    tallymark(&["site", "add", "shop.example", "--data"], data.path());
    let list = tallymark(&["site", "list", "--data"], data.path());
    assert_eq!(list, "example.com\tEurope/Berlin\nshop.example\tUTC\n");

    let bad = Command::new(bin())
        .args([
            "site",
            "add",
            "x.com",
            "--timezone",
            "Mars/Olympus",
            "--data",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Mars/Olympus"));

    let collector = Collector::serve(data, &[]);
    let ok = r#"{"kind":"pageview","site":"example.com","url":"https://www.example.com/"}"#;
    assert_eq!(
        collector
            .post("/api/event", ok, &[("User-Agent", FIREFOX)])
            .unwrap()
            .0,
        202
    );
    let unknown = r#"{"kind":"pageview","site":"other.org","url":"https://other.org/"}"#;
    let (status, head) = collector
        .post("/api/event", unknown, &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 404, "{head}");
    assert!(head.contains("unknown site"));
    let data = collector.kill();
    tallymark(&["site", "remove", "shop.example", "--data"], data.path());
    assert_eq!(
        tallymark(&["site", "list", "--data"], data.path()),
        "example.com\tEurope/Berlin\n"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Seed 000's get-or-create race, on the real binary over real sockets: 500
/// requests of one visitor at once make one visitor and one session, every
/// one of them acknowledged and stored.
#[test]
fn five_hundred_concurrent_requests_of_one_visitor_over_http() {
    let collector = Collector::start();
    let port = collector.port;
    let start = Arc::new(std::sync::Barrier::new(50));
    let workers: Vec<_> = (0..50)
        .map(|w| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..10)
                    .filter(|i| {
                        let id = format!("race-{w}-{i}");
                        matches!(
                            tallymark_e2e::http_post(port, "/api/event", &event(&id), &[("User-Agent", FIREFOX)]),
                            Some((202, head)) if !head.contains("x-tallymark-dropped")
                        )
                    })
                    .count()
            })
        })
        .collect();
    let acked: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(acked, 500);
    let counts = collector.query::<i64>(
        "SELECT COUNT(*), COUNT(DISTINCT visitor_id), COUNT(DISTINCT session_id) FROM events",
    );
    assert_eq!(counts, vec![vec![500, 1, 1]]);
    let sessions = collector.query::<i64>("SELECT COUNT(*), SUM(pageviews) FROM sessions");
    assert_eq!(sessions, vec![vec![1, 500]]);
}

/// Settings: a flag beats `TALLYMARK_*`, which beats the TOML file, which
/// beats the default. Skip paths show which layer won: a pageview of a skip
/// path is dropped with `skip_path`.
#[test]
fn flags_beat_environment_beats_file() {
    let data = tempfile::tempdir().unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let file = data.path().join("tallymark.toml");
    std::fs::write(
        &file,
        "skip_paths = [\"/from-file\"]\nvolume_drop_percent = 20.0\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let dropped = |c: &Collector, path: &str| {
        let body =
            format!(r#"{{"kind":"pageview","site":"localhost","url":"http://localhost{path}"}}"#);
        let (status, head) = c
            .post("/api/event", &body, &[("User-Agent", FIREFOX)])
            .unwrap();
        assert_eq!(status, 202);
        head.contains("x-tallymark-dropped: skip_path")
    };

    let c = Collector::serve(data, &["--config", &file]);
    assert!(dropped(&c, "/from-file"));
    assert!(!dropped(&c, "/from-env"));
    let data = c.kill();

    let env = [("TALLYMARK_SKIP_PATHS", "/from-env")];
    let c = Collector::serve_with_env(data, &["--config", &file], &env);
    assert!(dropped(&c, "/from-env"), "environment beats the file");
    assert!(!dropped(&c, "/from-file"));
    let data = c.kill();

    let c = Collector::serve_with_env(
        data,
        &["--config", &file, "--skip-paths", "/from-flag"],
        &env,
    );
    assert!(dropped(&c, "/from-flag"), "a flag beats the environment");
    assert!(!dropped(&c, "/from-env"));
    assert!(!dropped(&c, "/from-file"));
}

/// `POST /api/event` on an open keep-alive connection; returns the status
/// and the response head once the whole response (by `Content-Length`) is read.
fn keep_alive_post(stream: &mut std::net::TcpStream, body: &str) -> (u16, String) {
    use std::io::Read;
    let request = format!(
        "POST /api/event HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {FIREFOX}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut byte = [0; 1];
    while !response.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "connection closed early"
        );
        response.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&response).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// Waits until the server closes `stream` (EOF or reset), writing one more
/// header byte every 200 ms as a slowloris client does; panics if it is
/// still open after `limit`.
fn closed_within(stream: &mut std::net::TcpStream, dribble: bool, limit: Duration) {
    use std::io::{ErrorKind, Read};
    let start = std::time::Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0; 256];
    while start.elapsed() < limit {
        if dribble && stream.write_all(b"x").is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    panic!("the connection was still open after {limit:?}");
}

/// Slowloris: connections that never finish their request head are closed
/// at the header read timeout (here 1 s; bytes trickling in do not extend
/// it), and meanwhile a beacon on a fresh connection is still answered.
#[test]
fn connections_that_never_finish_their_headers_are_closed() {
    let collector = Collector::start_with(&["--read-timeout-secs", "1"]);
    let mut slow: Vec<_> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", collector.port)).unwrap();
            s.write_all(b"POST /api/event HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let (status, head) = collector
        .post("/api/event", &event("fresh-1"), &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 202);
    assert!(!head.contains("x-tallymark-dropped"), "{head}");
    for (i, s) in slow.iter_mut().enumerate() {
        closed_within(s, i % 2 == 0, Duration::from_secs(15));
    }
    let (status, _) = collector
        .post("/api/event", &event("fresh-2"), &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(
        collector.query::<i64>("SELECT COUNT(*) FROM events"),
        vec![vec![2]]
    );
}

/// Keep-alive still works: two requests back to back on one connection are
/// both stored; the connection, idle after them, is closed at the header read
/// timeout (hyper restarts that deadline once a response is written).
#[test]
fn keep_alive_connections_carry_several_requests_then_idle_out() {
    let collector = Collector::start_with(&["--read-timeout-secs", "2"]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", collector.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for id in ["ka-1", "ka-2"] {
        let (status, head) = keep_alive_post(&mut stream, &event(id));
        assert_eq!(status, 202, "{head}");
        assert!(!head.contains("x-tallymark-dropped"), "{head}");
    }
    assert_eq!(
        collector.query::<i64>("SELECT COUNT(*) FROM events"),
        vec![vec![2]]
    );
    closed_within(&mut stream, false, Duration::from_secs(15));
}

/// A slow body: complete headers, then a body trickled a byte every 200 ms
/// that would take ten minutes. The read deadline (here 1 s, from the end of
/// the head) answers 408 naming the body, so the connection is not held.
#[test]
fn a_body_trickled_past_the_read_deadline_gets_a_408() {
    use std::io::{ErrorKind, Read};
    let collector = Collector::start_with(&["--read-timeout-secs", "1"]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", collector.port)).unwrap();
    stream
        .write_all(
            format!(
                "POST /api/event HTTP/1.1\r\nHost: x\r\nUser-Agent: {FIREFOX}\r\nContent-Type: text/plain\r\nContent-Length: 3000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut response = Vec::new();
    let mut buf = [0; 512];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no answer after 15 s"
        );
        // The server may close the read side once it answered.
        let _ = stream.write_all(b" ");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read failed before an answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#"{"error":"body:"#), "{text}");
    assert_eq!(
        collector.query::<i64>("SELECT COUNT(*) FROM events"),
        vec![vec![0]]
    );
}
