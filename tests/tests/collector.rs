//! The real `tallymark` binary: durability under `kill -9`, no raw IP at
//! rest or in logs, and the operator commands.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tallymark_e2e::{Collector, FIREFOX, bin, tallymark};

fn event(id: &str) -> String {
    format!(
        r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/p/{id}","event_id":"{id}"}}"#
    )
}

/// The `event_id`s in the collector's database.
fn stored_event_ids(collector: &Collector) -> HashSet<String> {
    collector
        .query::<String>("SELECT event_id FROM events")
        .into_iter()
        .flatten()
        .collect()
}

/// Every event answered 202 (`acked`) is among the `stored` ones.
fn assert_none_lost(when: &str, acked: &HashSet<String>, stored: &HashSet<String>) {
    let lost: Vec<_> = acked.difference(stored).collect();
    assert!(
        lost.is_empty(),
        "{when}: {} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
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
    let stored = stored_event_ids(&again);
    assert_none_lost("kill -9", &acked, &stored);
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

/// `SIGTERM` (systemd, `docker stop`) and `SIGINT` (Ctrl-C) under load:
/// 8 clients posting without pause, half on keep-alive connections, beside
/// an idle keep-alive connection and a client that never finishes its
/// request head. The collector stops accepting, answers what it is serving
/// and exits 0 within a few seconds (well inside `docker stop`'s 10 s): the
/// idle connection is closed at once and the unfinished head is not waited
/// for up to its 10 s read timeout. Every event answered 202 is stored;
/// after the signal a client gets a 202 for a stored event, a 503 or a
/// connection error, never a 202 that is lost.
#[test]
fn a_stop_signal_under_load_exits_promptly_and_loses_no_acknowledged_event() {
    for signal in ["TERM", "INT"] {
        stop_under_load(signal);
    }
}

/// A stop signal sent as soon as the listening line is read (a supervisor
/// or a script that stops it at once) is a graceful stop too, exit code 0:
/// the signals are listened for before the line is printed.
#[test]
fn a_stop_signal_right_after_start_is_a_clean_exit() {
    for _ in 0..20 {
        let mut collector = Collector::start();
        collector.signal("TERM");
        let (status, _) = collector
            .wait_exit(Duration::from_secs(10))
            .expect("still running 10 s after SIGTERM");
        assert!(status.success(), "exit status {status:?}");
    }
}

fn stop_under_load(signal: &str) {
    use std::io::ErrorKind;
    let mut collector = Collector::start();
    let port = collector.port;
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let keep_alive = w % 2 == 0;
                let mut stream: Option<std::net::TcpStream> = None;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("{w}-{i}");
                    i += 1;
                    let answer = if keep_alive {
                        if stream.is_none() {
                            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                                Ok(s) => {
                                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                                    stream = Some(s);
                                }
                                Err(_) => break,
                            }
                        }
                        let answer = stream
                            .as_mut()
                            .and_then(|s| try_keep_alive_post(s, &event(&id)));
                        if answer.is_none() {
                            // Closed by the server: reconnect, or stop once refused.
                            stream = None;
                        }
                        answer
                    } else {
                        match tallymark_e2e::http_post(
                            port,
                            "/api/event",
                            &event(&id),
                            &[("User-Agent", FIREFOX)],
                        ) {
                            None => break,
                            answer => answer,
                        }
                    };
                    match answer {
                        Some((202, head)) if !head.contains("x-tallymark-dropped") => {
                            acked.lock().unwrap().insert(id);
                        }
                        Some((202 | 503, _)) | None => {}
                        Some((status, head)) => panic!("unexpected {status}: {head}"),
                    }
                }
            })
        })
        .collect();
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(keep_alive_post(&mut idle, &event("idle")).0, 202);
    acked.lock().unwrap().insert("idle".to_string());
    let mut unfinished = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    unfinished
        .write_all(b"POST /api/event HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    collector.signal(signal);
    let exited = collector.wait_exit(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let (status, took) = exited.unwrap_or_else(|| panic!("SIG{signal}: still running after 30 s"));
    assert!(
        status.success(),
        "SIG{signal}: exit status {status:?}\n{}",
        collector.logs()
    );
    assert!(
        took < Duration::from_secs(8),
        "SIG{signal}: exit took {took:?}"
    );
    // The idle keep-alive connection was closed, not left to time out.
    let mut buf = [0; 16];
    assert!(
        matches!(idle.read(&mut buf), Ok(0))
            || matches!(idle.read(&mut buf), Err(e) if e.kind() != ErrorKind::WouldBlock),
        "the idle connection is still open"
    );
    assert!(tallymark_e2e::http_post(port, "/api/event", &event("late"), &[]).is_none());

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} events were acknowledged",
        acked.len()
    );
    let stored = stored_event_ids(&collector);
    assert_none_lost(&format!("SIG{signal}"), &acked, &stored);
    let logs = collector.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    eprintln!(
        "SIG{signal}: exit 0 after {took:?}; {} acknowledged, {} stored, 0 lost",
        acked.len(),
        stored.len()
    );
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

/// `serve --retention-days 30` on a database with older rows: they are
/// deleted at start (events and their visit), their bytes leave every file
/// in the data directory (the WAL included), and newer events stay.
#[test]
fn rows_past_the_retention_period_leave_the_disk() {
    let page = |p: &str| {
        format!(r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/{p}"}}"#)
    };
    let collector = Collector::start();
    for p in ["retired-page-a", "retired-page-b"] {
        let (status, head) = collector
            .post("/api/event", &page(p), &[("User-Agent", FIREFOX)])
            .unwrap();
        assert_eq!(status, 202, "{head}");
    }
    let data = collector.kill();
    // As if recorded 40 days ago.
    let conn = rusqlite::Connection::open(data.path().join("tallymark.sqlite3")).unwrap();
    conn.pragma_update(None, "secure_delete", "ON").unwrap();
    // The rows stay in the WAL's frames too: nothing copies them back.
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    let back = 40 * 86_400_000_i64;
    conn.execute("UPDATE events SET ts_ms = ts_ms - ?1", [back])
        .unwrap();
    conn.execute(
        "UPDATE sessions SET started_ms = started_ms - ?1, last_ms = last_ms - ?1",
        [back],
    )
    .unwrap();
    // Not closed (closing would copy the WAL back and delete it), as a
    // crash leaves it.
    std::mem::forget(conn);
    assert!(
        data.path()
            .join("tallymark.sqlite3-wal")
            .metadata()
            .unwrap()
            .len()
            > 0
    );

    let collector = Collector::serve(data, &["--retention-days", "30"]);
    let (status, head) = collector
        .post("/api/event", &page("kept-page"), &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 202, "{head}");
    let needle = b"retired-page";
    let holding = || -> Vec<String> {
        walk(collector.data.path())
            .into_iter()
            .filter(|f| {
                std::fs::read(f).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            })
            .map(|f| f.display().to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !holding().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "after 20 s {:?} still hold the deleted pages",
            holding()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let paths = collector.query::<String>("SELECT path FROM events");
    assert_eq!(paths, [["/kept-page".to_string()]]);
    let visits = collector.query::<i64>("SELECT COUNT(*) FROM sessions");
    assert_eq!(visits, [[1]]);
    assert_eq!(
        collector.metric("tallymark_retention_deleted_rows_total"),
        Some(3.0),
        "two events, one visit"
    );
}

/// `tallymark export`: the stored events as the export endpoint's CSV,
/// beside a running collector, filtered like the stats API; a bad period is
/// named.
#[test]
fn the_export_command_writes_the_events_as_csv() {
    let collector = Collector::start();
    for p in ["a", "b"] {
        let body =
            format!(r#"{{"kind":"pageview","site":"localhost","url":"http://localhost/{p}"}}"#);
        let (status, head) = collector
            .post("/api/event", &body, &[("User-Agent", FIREFOX)])
            .unwrap();
        assert_eq!(status, 202, "{head}");
    }
    let data = collector.data.path();
    let csv = tallymark(
        &["export", "--site", "localhost", "--period", "day", "--data"],
        data,
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("time,kind,name,hostname,path,"),
        "{csv}"
    );
    assert!(lines[1].contains(",pageview,,localhost,/a,"), "{csv}");
    assert!(lines[2].contains(",pageview,,localhost,/b,"), "{csv}");
    let filtered = tallymark(
        &[
            "export",
            "--site",
            "localhost",
            "--filter",
            "page==/b",
            "--data",
        ],
        data,
    );
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    let file = data.join("out.csv");
    let file_arg = file.display().to_string();
    tallymark(
        &[
            "export",
            "--site",
            "localhost",
            "--period",
            "day",
            "--out",
            &file_arg,
            "--data",
        ],
        data,
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    let bad = Command::new(bin())
        .args([
            "export",
            "--site",
            "localhost",
            "--period",
            "nope",
            "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("period: unknown period \"nope\""),
        "{stderr}"
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
    // A site's own retention, shown in the list, and back to serve's.
    let set = |value: &str| {
        Command::new(bin())
            .args([
                "site",
                "set",
                "shop.example",
                "--retention-days",
                value,
                "--data",
            ])
            .arg(data.path())
            .output()
            .unwrap()
    };
    assert!(set("90").status.success());
    let list = tallymark(&["site", "list", "--data"], data.path());
    assert_eq!(
        list,
        "example.com\tEurope/Berlin\nshop.example\tUTC\tkeeps 90 days\n"
    );
    let bad = set("0");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"0\" is not a number of days"));
    assert!(set("off").status.success());
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
    try_keep_alive_post(stream, body).expect("connection closed early")
}

/// [`keep_alive_post`], or `None` if the connection is closed or fails
/// before the whole response is read.
fn try_keep_alive_post(stream: &mut std::net::TcpStream, body: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let request = format!(
        "POST /api/event HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {FIREFOX}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut byte = [0; 1];
    while !response.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? != 1 {
            return None;
        }
        response.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&response).into_owned();
    let length: usize = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .and_then(|v| v.trim().parse().ok())
    })?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head))
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

/// Runs `tallymark ARGS` expecting it to refuse: exit code 1 within 20 s,
/// and one line on stderr (logs at `warn`), `error: …`, with no panic, no
/// "Caused by" and no backtrace even with `RUST_BACKTRACE=1`. Returns it.
fn refused(mut command: Command, args: &[&str]) -> String {
    let mut child = command
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tallymark {args:?} is still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(1), "tallymark {args:?}: {stderr}");
    assert!(
        stderr.starts_with("error: ") && !stderr.contains('\n'),
        "tallymark {args:?}: not one line:\n{stderr}"
    );
    stderr
}

/// An operator's mistakes: each is refused with one line naming the value
/// and the problem, exit code 1, and nothing touched.
#[test]
fn configuration_mistakes_are_one_clear_line_and_exit_code_1() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--data", dir];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        refused(Command::new(bin()), &args)
    };

    // A port in use, refused before the database is created.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = serve(&["--listen", &addr]);
    assert!(
        line.contains(&format!("binding {addr}")) && line.contains("in use"),
        "{line}"
    );
    assert!(!data.path().join("tallymark.sqlite3").exists());

    let line = serve(&["--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"]);
    assert!(line.contains("\"10.0.0.0/33\""), "{line}");
    assert_eq!(line.matches("trusted proxies").count(), 1, "{line}");

    let config = data.path().join("tallymark.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ntrusted_proxy = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let line = serve(&["--config", config]);
    assert!(
        line.contains(&format!(
            "{config}: line 2, column 1: unknown field `trusted_proxy`"
        )),
        "{line}"
    );
    let line = serve(&["--config", &format!("{dir}/missing.toml")]);
    assert!(
        line.contains("missing.toml") && line.contains("No such file"),
        "{line}"
    );
    let line = serve(&["--geoip", &format!("{dir}/missing.mmdb")]);
    assert!(
        line.contains("missing.mmdb") && line.contains("No such file"),
        "{line}"
    );

    let file = format!("{dir}/a-file");
    std::fs::write(&file, "").unwrap();
    let line = refused(
        Command::new(bin()),
        &["serve", "--listen", "127.0.0.1:0", "--data", &file],
    );
    assert!(line.contains(&file), "{line}");

    let line = refused(
        Command::new(bin()),
        &[
            "site",
            "add",
            "x.com",
            "--timezone",
            "Mars/Olympus",
            "--data",
            dir,
        ],
    );
    assert!(
        line.contains("\"Mars/Olympus\" is not an IANA timezone"),
        "{line}"
    );

    // A mistyped --data: nothing to list, remove or mint a token for, and
    // nothing created there.
    let typo = format!("{dir}/typo");
    for args in [
        vec!["site", "list", "--data", &typo],
        vec!["site", "remove", "x.com", "--data", &typo],
        vec!["token", "create", "--data", &typo],
    ] {
        let line = refused(Command::new(bin()), &args);
        assert!(
            line.contains("no database in") && line.contains(&typo),
            "{line}"
        );
        assert!(
            !std::path::Path::new(&typo).exists(),
            "{args:?} created {typo}"
        );
    }

    // A database migrated by a newer release (a rolled-back upgrade).
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let conn = rusqlite::Connection::open(data.path().join("tallymark.sqlite3")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let line = serve(&[]);
    assert!(line.contains("schema version 99 is newer"), "{line}");
}

/// `tallymark` as an unprivileged user: through `setpriv` as `nobody` when
/// the tests run as root, whom file permissions do not stop.
fn unprivileged() -> Command {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return Command::new(bin());
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin());
    command
}

/// A data directory the service user may not write (created by root with
/// `site add`, say): `serve` refuses at start with one line naming the path,
/// rather than starting, or failing later on a write.
#[test]
fn a_data_directory_or_database_the_user_may_not_write_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data", dir.as_str()];

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let line = refused(unprivileged(), &serve);
    assert!(
        line.contains(&format!("{dir}/tallymark.lock")) && line.contains("ermission denied"),
        "{line}"
    );

    // The directory is writable now, the database (root's) is not.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    tallymark(&["site", "add", "localhost", "--data"], data.path());
    let db = format!("{dir}/tallymark.sqlite3");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let line = refused(unprivileged(), &serve);
    assert!(
        line.contains(&format!("database {db} is read-only")),
        "{line}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A second `serve` started by mistake on the same data directory refuses
/// to start, naming the directory and the running one's pid; the first goes
/// on, and once it is gone (even by `kill -9`) the directory is free again.
#[test]
fn a_second_collector_on_the_same_data_directory_refuses_to_start() {
    let first = Collector::start();
    let dir = first.data.path().to_str().unwrap().to_string();
    let line = refused(
        Command::new(bin()),
        &["serve", "--listen", "127.0.0.1:0", "--data", &dir],
    );
    assert!(
        line.contains(&format!(
            "data directory {dir} is in use by another `tallymark serve` (pid {})",
            first.pid()
        )),
        "{line}"
    );
    let (status, _) = first
        .post("/api/event", &event("first"), &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 202);
    // The CLI still works beside a running collector.
    tallymark(&["site", "add", "example.com", "--data"], first.data.path());

    let again = Collector::serve(first.kill(), &[]);
    let (status, _) = again
        .post("/api/event", &event("again"), &[("User-Agent", FIREFOX)])
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(
        again.query::<i64>("SELECT COUNT(*) FROM events"),
        vec![vec![2]]
    );
}
