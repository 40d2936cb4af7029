//! The `tallymark` binary: command-line parsing and process set-up only.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use clap::{Args, Parser, Subcommand};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tallymark_collector::clock::{Clock, SystemClock};
use tallymark_collector::config::{self, FileConfig, Overrides};
use tallymark_collector::{AppState, app, lock_data_dir, sites, spawn_maintenance, stats, store};
use tallymark_core::bots::{BotRules, Classification, classify};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tracing_subscriber::EnvFilter;

/// The server allocates small short-lived buffers per request; mimalloc
/// serves those markedly cheaper than glibc's malloc under concurrency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tallymark",
    version,
    about = "Privacy-first, cookieless web analytics: the collector.",
    long_about = "Privacy-first, cookieless web analytics: the collector.\n\n\
        Quick start:\n  tallymark site add example.com --timezone Europe/Berlin\n  tallymark serve\n\
        then add <script defer src=\"http://localhost:8080/js/tallymark.js\" data-site=\"example.com\"></script> to your pages."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector: accept events, store them, serve the script and the demo page.
    Serve(ServeArgs),
    /// Register, list or remove the sites whose events are accepted.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Classify User-Agents read from stdin, one per line: prints `human` or `bot <reason>`.
    ///
    /// Uses exactly the rules the collector drops events with, so it answers
    /// "why was this visit not counted?".
    Bots,
    /// Create, list and revoke stats API tokens (printed once; only their
    /// SHA-256 hash is stored).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a consistent copy of the database to a new file, also while `serve` runs.
    ///
    /// The daily salts are left out (privacy: they must not outlive their
    /// day), so after a restore a visitor who comes back later that day
    /// counts twice. To restore: stop the collector, put the copy in the
    /// data directory as tallymark.sqlite3 (deleting tallymark.sqlite3-wal
    /// and tallymark.sqlite3-shm there), start it.
    Backup {
        /// The file to write; it must not exist.
        out: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Write a site's raw events of a period as CSV, as the dashboard's
    /// export does (times in UTC, no visitor id), also while `serve` runs.
    Export {
        /// The site, as registered.
        #[arg(long)]
        site: String,
        /// day, 7d, 30d, month, 6mo, 12mo, year, or custom with --from and --to
        /// [default: 30d].
        #[arg(long)]
        period: Option<String>,
        /// The day the period ends on or is in, YYYY-MM-DD [default: today].
        #[arg(long)]
        date: Option<String>,
        /// First day of a custom period, YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// Last day of a custom period, YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
        /// A filter as the stats API takes it (`page==/blog/*`, `country==FR|DE`);
        /// repeat for several.
        #[arg(long)]
        filter: Vec<String>,
        /// Write to this file (replaced) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
    },
    /// Import a site's history from Plausible's, GoatCounter's or Umami's
    /// export, also while `serve` runs.
    ///
    /// Plausible (Site settings → Imports & Exports → Export data): its daily
    /// totals per source, page, country, device, browser, OS and custom
    /// event become the site's days before its own first event here: whole-day
    /// answers (totals, the daily graph, breakdowns, one filter) include
    /// them, as Plausible shows imported data.
    ///
    /// GoatCounter (Settings → Export, CSV; the .csv.gz as downloaded) and
    /// Umami (its website_event rows joined with their session, as CSV):
    /// their page views and events become the site's own events and
    /// visits, so every answer includes them. Rows GoatCounter marked as
    /// bots, and Umami's link, pixel and performance events, are left out.
    ///
    /// Either way, days on or after the site's own first event here (not an
    /// import's), and days with imported data, are left out: importing the
    /// same export again adds nothing, and a later export fills the days
    /// between an earlier one and the site's own.
    Import {
        /// The site to import into, as registered.
        #[arg(long)]
        site: String,
        /// The export: Plausible's .zip, the folder it was unpacked to, or its
        /// .csv files; GoatCounter's or Umami's .csv or .csv.gz.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// `serve`'s --retention-days, when it has one: days it would delete
        /// are not imported (a site's own retention applies anyway).
        #[arg(long, env = "TALLYMARK_RETENTION_DAYS", value_name = "DAYS")]
        retention_days: Option<u32>,
        /// `serve`'s --geoip: with a MaxMind-format city database
        /// (GeoLite2-City), the export's regions and cities are named as
        /// `serve` names them; without one they are unknown.
        #[arg(long, env = "TALLYMARK_GEOIP", value_delimiter = ',')]
        geoip: Vec<PathBuf>,
        /// `serve`'s --session-timeout-minutes: GoatCounter's and Umami's hits are split
        /// into visits after this much inactivity [default: 30].
        #[arg(
            long,
            env = "TALLYMARK_SESSION_TIMEOUT_MINUTES",
            value_name = "MINUTES"
        )]
        session_timeout_minutes: Option<u32>,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token: an admin token (reads every site) or, with --site and
    /// --share, a read-only share token for one site's public dashboard.
    /// Send it as `Authorization: Bearer <token>`.
    Create {
        /// The site a share token is for.
        #[arg(long, requires = "share")]
        site: Option<String>,
        /// Make a share token (requires --site).
        #[arg(long, requires = "site")]
        share: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List the tokens: id, kind, site (share tokens), creation time. The
    /// secrets are not stored, so they cannot be shown.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke a token (it answers 401 from the next request on): give its
    /// id from `token list`, or the token itself.
    Revoke {
        /// The token's id (or at least its first 6 hex digits), or the token.
        id: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]. Port 0 picks a free port (printed on start).
    #[arg(long, env = "TALLYMARK_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the database. Created if missing [default: ./tallymark-data].
    #[arg(long, env = "TALLYMARK_DATA")]
    data: Option<PathBuf>,
    /// A TOML file with any of these settings (keys as the flags, with underscores).
    /// Flags and TALLYMARK_* variables take precedence over it.
    #[arg(long, env = "TALLYMARK_CONFIG")]
    config: Option<PathBuf>,
    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For, Forwarded,
    /// X-Real-IP, CF-Connecting-IP and CF-IPCountry headers are believed.
    /// With none, those headers are ignored and the socket peer is the client.
    #[arg(long, env = "TALLYMARK_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// The one header of a trusted proxy the client's address is read from:
    /// any (the first of CF-Connecting-IP, Forwarded, X-Forwarded-For,
    /// X-Real-IP that holds one; the proxy must clear the others), or one of
    /// cf-connecting-ip, forwarded, x-forwarded-for, x-real-ip (the rest are
    /// ignored, CF-IPCountry too unless cf-connecting-ip) [default: any].
    #[arg(long, env = "TALLYMARK_CLIENT_IP_HEADER")]
    client_ip_header: Option<String>,
    /// MaxMind-format databases, comma-separated, asked in order: a country
    /// database (GeoLite2-Country, ip-location-db, ...) for countries, a city
    /// database (GeoLite2-City, DB-IP City Lite, ip-location-db's city files
    /// for IPv4 and IPv6) for regions and cities too.
    #[arg(long, env = "TALLYMARK_GEOIP", value_delimiter = ',')]
    geoip: Option<Vec<PathBuf>>,
    /// Minutes of inactivity after which a visit ends [default: 30].
    #[arg(long, env = "TALLYMARK_SESSION_TIMEOUT_MINUTES")]
    session_timeout_minutes: Option<u32>,
    /// Extra paths never counted (added to /health, /robots.txt, /favicon.ico, ...), comma-separated.
    #[arg(long, env = "TALLYMARK_SKIP_PATHS", value_delimiter = ',')]
    skip_paths: Option<Vec<String>>,
    /// Warn when a site's events over 24 h fall this many percent below the 24 h before [default: 15].
    #[arg(long, env = "TALLYMARK_VOLUME_DROP_PERCENT")]
    volume_drop_percent: Option<f64>,
    /// fsync every write batch before answering: acknowledged events then survive
    /// power loss, not only a crash of this process. Costs the disk's fsync latency.
    #[arg(long, env = "TALLYMARK_FSYNC")]
    fsync: bool,
    /// Seconds a connection has to send each request's headers (idle keep-alive
    /// time included), and then its body; keep it above the idle timeout of a
    /// load balancer in front [default: 75].
    #[arg(long, env = "TALLYMARK_READ_TIMEOUT_SECS")]
    read_timeout_secs: Option<u64>,
    /// Ask ClickHouse at this HTTP URL (for example http://127.0.0.1:8123; a
    /// user and password may be in it) the stats questions the daily rollups
    /// cannot answer: filtered breakdowns, properties, goals, realtime.
    /// Events are still stored in SQLite first, then copied there in the
    /// background, the whole history included. Off by default.
    #[arg(long, env = "TALLYMARK_CLICKHOUSE", value_name = "URL")]
    clickhouse: Option<String>,
    /// The ClickHouse database for Tallymark's tables, created if missing
    /// [default: tallymark].
    #[arg(long, env = "TALLYMARK_CLICKHOUSE_DATABASE", value_name = "NAME")]
    clickhouse_database: Option<String>,
    /// Delete events, visits and their daily sums older than this many whole
    /// days before today (in each site's timezone), in SQLite and ClickHouse,
    /// within minutes of them falling out. Off by default: everything is kept.
    #[arg(long, env = "TALLYMARK_RETENTION_DAYS", value_name = "DAYS")]
    retention_days: Option<u32>,
}

#[derive(Args)]
struct DataArg {
    /// The collector's data directory.
    #[arg(long, env = "TALLYMARK_DATA", default_value = "./tallymark-data")]
    data: PathBuf,
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Register a site. Its visitor days start at midnight in its timezone.
    Add {
        /// The site's domain, e.g. example.com (subdomains and www. are included).
        domain: String,
        /// IANA timezone for days, reports and the daily salt rotation.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Succeed if the site is already registered.
        #[arg(long)]
        exist_ok: bool,
        /// Keep this site's events this many days before today (overrides
        /// `serve --retention-days` for it).
        #[arg(long, value_name = "DAYS")]
        retention_days: Option<String>,
        #[command(flatten)]
        data: DataArg,
    },
    /// Change a site's settings.
    Set {
        domain: String,
        /// Keep this site's events this many days before today, deleting older
        /// ones (overrides `serve --retention-days` for it); `off`: as `serve`
        /// says. A running collector applies it within a minute.
        #[arg(long, value_name = "DAYS|off")]
        retention_days: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// List registered sites.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Remove a site and everything stored for it.
    Remove {
        domain: String,
        #[command(flatten)]
        data: DataArg,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: not as escape codes in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Site { command } => site(command),
        Command::Bots => bots(),
        Command::Token { command } => token(command),
        Command::Backup { out, data } => backup(&out, &data),
        Command::Export {
            site,
            period,
            date,
            from,
            to,
            filter,
            out,
            data,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("site", &site);
            for (key, value) in [
                ("period", period),
                ("date", date),
                ("from", from),
                ("to", to),
            ] {
                if let Some(value) = value {
                    query.append_pair(key, &value);
                }
            }
            for f in &filter {
                query.append_pair("filter", f);
            }
            export(&query.finish(), out.as_deref(), &data)
        }
        Command::Import {
            site,
            paths,
            retention_days,
            geoip,
            session_timeout_minutes,
            data,
        } => import(
            &site,
            &paths,
            Options {
                retention_days,
                geoip: &geoip,
                session_timeout_minutes,
            },
            &data,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once. Returning the error
/// from `main` would print anyhow's report instead: a cause the message
/// already quotes again under "Caused by", on lines of their own, and a
/// backtrace whenever `RUST_BACKTRACE` is set.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// One request worker per CPU but one: the store's writer thread is busy
/// whenever requests are. On two cores a second worker only competed with
/// it: `cargo xtask bench ingest` measured the server's CPU per request at
/// 42 vs 49 µs (closed loop) and 80 vs 110 µs (5,000 req/s), with the same
/// throughput. `TOKIO_WORKER_THREADS` still decides when set.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads(cpus.saturating_sub(1).max(1));
    }
    builder.enable_all().build()
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    };
    let config = config::merge(
        Overrides {
            listen: args.listen,
            data: args.data,
            trusted_proxies: args.trusted_proxies,
            client_ip_header: args.client_ip_header,
            geoip: args.geoip,
            session_timeout_minutes: args.session_timeout_minutes,
            skip_paths: args.skip_paths,
            volume_drop_percent: args.volume_drop_percent,
            fsync: args.fsync.then_some(true),
            read_timeout_secs: args.read_timeout_secs,
            clickhouse: args.clickhouse,
            clickhouse_database: args.clickhouse_database,
            retention_days: args.retention_days,
        },
        file,
    )?;
    let read_timeout = config.read_timeout;
    // One `serve` per data directory, held until the runtime below is gone.
    let lock = lock_data_dir(&config.data)?;
    let runtime = runtime()?;
    let result = runtime.block_on(async move {
        let listen = config.listen;
        let data = config.data.clone();
        // Before the database is opened: a mistake (port in use) touches nothing.
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let state = AppState::open(config, Arc::new(SystemClock))?;
        state.maintain().await?;
        spawn_maintenance(state.clone());
        let signals = StopSignals::listen().context("listening for stop signals")?;
        // The first line on stdout is the address: scripts and tests read it.
        println!("tallymark listening on http://{addr}");
        std::io::stdout().flush()?;
        tracing::info!(%addr, data = %data.display(), "collector started");
        serve_http(listener, app(state), read_timeout, signals).await;
        Ok(())
    });
    // Work left on the blocking pool (a long stats query, a rollup) only
    // reads or computes; its writes go through the writer thread. Waiting
    // for it held the exit for tens of seconds past `SHUTDOWN_GRACE`, with
    // the signal handlers no longer answering a second signal.
    runtime.shutdown_timeout(Duration::from_millis(500));
    drop(lock);
    result
}

// The read timeout (`Config::read_timeout`, 75 s by default) is how long a
// client has to send a request's complete head (request line and headers),
// counted from when hyper starts reading it: when the connection is
// accepted, and again as soon as the previous response on a keep-alive
// connection is written. The deadline is not extended by bytes that do
// arrive, so a client dribbling a header a byte at a time (slowloris) is cut
// off at it, and a kept-alive connection that sends no next request within
// it is closed, silently (no 408). The body then gets the same time again,
// as a deadline for the whole body (tower-http's `RequestBodyDeadlineLayer`,
// not an idle timer that each trickled byte would reset): a request that
// stops short of its `Content-Length` is answered 408 instead of holding its
// connection forever.

/// How long a stop signal waits for open connections before closing them.
/// Idle keep-alive connections close at once and a request in flight is
/// answered in milliseconds (it waits for one commit), so only a client
/// still sending its head or body is cut, and such a request was never
/// acknowledged: nothing answered 202 is lost. Without this bound such a
/// client held the exit for up to both read deadlines (150 s by default),
/// past `docker stop`'s 10 s, after which the process is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// axum's `serve`, with a header read timeout it does not offer: HTTP/1.1
/// with keep-alive (what axum served: its `http2` feature is off), the peer
/// address as `ConnectInfo<SocketAddr>` for the ingest, and graceful
/// shutdown. On a stop signal it stops accepting (new connections are
/// refused), closes idle connections, lets every connection finish the
/// request it is serving (an acknowledged event is committed before its
/// answer) and returns once all connections are closed, after
/// [`SHUTDOWN_GRACE`] at the latest, or at once on a second signal.
async fn serve_http(
    listener: TcpListener,
    app: Router,
    read_timeout: Duration,
    mut signals: StopSignals,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .keep_alive(true);
    let app = app.layer(RequestBodyDeadlineLayer::new(read_timeout));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = signals.recv() => break,
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // No peer address here: IPs are never logged.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: finishing requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "closing connections still open after the grace period"
        ),
        () = signals.recv() => tracing::warn!("second stop signal: closing open connections now"),
    }
}

/// The next connection. An accept error never ends the server: a reset
/// before accept is skipped; anything else (`EMFILE`: out of file
/// descriptors) is logged and retried after a second, as axum does, so
/// closing connections can free descriptors.
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
                if !matches!(
                    e.kind(),
                    ConnectionAborted | ConnectionRefused | ConnectionReset
                ) {
                    tracing::error!(error = %e, "accept failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn open_db(data: &DataArg) -> anyhow::Result<rusqlite::Connection> {
    std::fs::create_dir_all(&data.data)
        .with_context(|| format!("creating {}", data.data.display()))?;
    let path = data.data.join("tallymark.sqlite3");
    // A running `serve` of an older version would write, beside this, into
    // a schema it does not know (an import's marks, its transactions): the
    // database is updated only with nothing else running on it, the data
    // directory's lock held meanwhile (so no `serve` starts halfway).
    let behind = if path.exists() {
        store::schema::behind(&path)?
    } else {
        None
    };
    let _updating = match behind {
        Some((version, known)) => match lock_data_dir(&data.data) {
            Ok(lock) => Some(lock),
            Err(tallymark_collector::StartError::InUse { holder, .. }) => anyhow::bail!(
                "{} is in use{holder}, by a `tallymark serve` of an older version or \
                     another command: its database has schema version {version}, this \
                     tallymark's is {known}, and it is updated only with nothing else running \
                     on it. Stop the older `serve` and start this version's (it updates the \
                     database), or run this again",
                data.data.display()
            ),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(store::schema::open(&path)?)
}

/// The database of an existing data directory. Unlike [`open_db`] (for
/// `site add`, which starts one) it creates nothing: a mistyped `--data`
/// would otherwise list no sites, or mint a token no collector knows.
fn open_existing_db(data: &DataArg) -> anyhow::Result<rusqlite::Connection> {
    if !data.data.join("tallymark.sqlite3").exists() {
        anyhow::bail!(
            "no database in {}: give the --data of your `tallymark serve` \
             (`tallymark site add` starts one)",
            data.data.display()
        );
    }
    open_db(data)
}

fn site(command: SiteCommand) -> anyhow::Result<()> {
    let now_ms = SystemClock.now_ms();
    match command {
        SiteCommand::Add {
            domain,
            timezone,
            exist_ok,
            retention_days,
            data,
        } => {
            // Checked before anything is written.
            let days = retention_days
                .as_deref()
                .map(sites::parse_retention)
                .transpose()?
                .flatten();
            let conn = open_db(&data)?;
            let result = if exist_ok {
                sites::ensure(&conn, &domain, &timezone, now_ms)
            } else {
                sites::add(&conn, &domain, &timezone, now_ms)
            };
            let mut site = result?;
            if retention_days.is_some() {
                site = sites::set_retention(&conn, &site.domain, days)?;
            }
            println!("{}", site_line(&site));
        }
        SiteCommand::Set {
            domain,
            retention_days,
            data,
        } => {
            let days = sites::parse_retention(&retention_days)?;
            let conn = open_existing_db(&data)?;
            let site = sites::set_retention(&conn, &domain, days)?;
            println!("{}", site_line(&site));
        }
        SiteCommand::List { data } => {
            let conn = open_existing_db(&data)?;
            for site in sites::list(&conn)? {
                println!("{}", site_line(&site));
            }
        }
        SiteCommand::Remove { domain, data } => {
            let mut conn = open_existing_db(&data)?;
            sites::remove(&mut conn, &domain)?;
            println!("removed {domain}");
        }
    }
    Ok(())
}

/// `domain<TAB>timezone`, and `<TAB>keeps N days` when the site has its own
/// retention.
fn site_line(site: &sites::Site) -> String {
    match site.retention_days {
        Some(days) => format!("{}\t{}\tkeeps {days} days", site.domain, site.timezone),
        None => format!("{}\t{}", site.domain, site.timezone),
    }
}

fn backup(out: &std::path::Path, data: &DataArg) -> anyhow::Result<()> {
    let db = data.data.join("tallymark.sqlite3");
    if !db.exists() {
        anyhow::bail!(
            "no database in {}: give the --data of your `tallymark serve`",
            data.data.display()
        );
    }
    let s = store::backup::backup(&db, out)?;
    println!(
        "wrote {}: {} events, {} sessions, {} sites (salts left out)",
        out.display(),
        s.events,
        s.sessions,
        s.sites
    );
    Ok(())
}

fn export(query: &str, out: Option<&std::path::Path>, data: &DataArg) -> anyhow::Result<()> {
    let db = data.data.join("tallymark.sqlite3");
    if !db.exists() {
        anyhow::bail!(
            "no database in {}: give the --data of your `tallymark serve`",
            data.data.display()
        );
    }
    // Read-only: beside a running `serve`, like the stats API's readers.
    let conn = store::schema::open_reader(&db)?;
    let now = SystemClock.now();
    let written = match out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            stats::export::export_cli(&conn, query, now, std::io::BufWriter::new(file))
        }
        None => stats::export::export_cli(&conn, query, now, std::io::stdout().lock()),
    };
    written.map_err(|e| anyhow::anyhow!("{e}"))
}

/// `import`'s settings that are `serve`'s too.
struct Options<'a> {
    retention_days: Option<u32>,
    geoip: &'a [PathBuf],
    session_timeout_minutes: Option<u32>,
}

fn import(
    domain: &str,
    paths: &[PathBuf],
    options: Options<'_>,
    data: &DataArg,
) -> anyhow::Result<()> {
    let Options {
        retention_days,
        geoip,
        session_timeout_minutes,
    } = options;
    let mut conn = open_existing_db(data)?;
    let site = sites::get(&conn, domain)?
        .ok_or_else(|| anyhow::anyhow!("site {domain} is not registered"))?;
    // One import at a time per data directory (`serve` may run beside it).
    let lock_path = data.data.join("tallymark-import.lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match fs4::FileExt::try_lock(&lock) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => anyhow::bail!(
            "another `tallymark import` is running on {}: wait for it to end",
            data.data.display()
        ),
        Err(fs4::TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context(format!("locking {}", lock_path.display())));
        }
    }
    let files = tallymark_collector::import::read_files(paths)?;
    use tallymark_collector::import::{goatcounter, umami};
    let goatcounter = files
        .iter()
        .filter(|(_, bytes)| goatcounter::is_export(bytes))
        .count();
    let umami = files
        .iter()
        .filter(|(_, bytes)| umami::is_export(bytes))
        .count();
    if goatcounter + umami > 0 {
        if goatcounter + umami != files.len() || (goatcounter > 0 && umami > 0) {
            anyhow::bail!(
                "give one tool's export in one import: GoatCounter's, Umami's or Plausible's files"
            );
        }
        let minutes = session_timeout_minutes.unwrap_or(30);
        if !(1..=1440).contains(&minutes) {
            anyhow::bail!("session timeout: must be between 1 and 1440 minutes");
        }
        let tool = if umami > 0 {
            RawTool::Umami
        } else {
            RawTool::GoatCounter
        };
        return import_raw(
            tool,
            &mut conn,
            &site,
            &files,
            Options {
                retention_days,
                geoip,
                session_timeout_minutes: Some(minutes),
            },
        );
    }
    // Only an export with locations needs the names (a walk over the whole
    // database).
    let locations = files
        .iter()
        .any(|(name, _)| name.contains("imported_locations_"));
    let names = if locations {
        tallymark_collector::geo::Geo::open(geoip)?.place_names()
    } else {
        tallymark_collector::geo::PlaceNames::default()
    };
    if locations && !geoip.is_empty() {
        println!(
            "the city database names {} regions and {} cities",
            names.regions.len(),
            names.cities.len()
        );
    }
    let export = tallymark_collector::import::parse_with(&site, &files, &names)?;
    let done = tallymark_collector::import::write(
        &mut conn,
        &site,
        export,
        SystemClock.now(),
        retention_days,
    )?;
    match (done.first, done.last) {
        (Some(first), Some(last)) => println!(
            "imported {} days into {domain}, {first} to {last} ({})",
            done.days,
            done.tables.join(", ")
        ),
        _ => println!("imported no days into {domain}"),
    }
    if done.after_native > 0 {
        println!(
            "left out {} days on or after the site's own first event here, or not over yet",
            done.after_native
        );
    }
    if done.past_retention > 0 {
        println!(
            "left out {} days before the site's retention period",
            done.past_retention
        );
    }
    if done.already > 0 {
        println!(
            "left out {} days that hold events or imported data already",
            done.already
        );
    }
    Ok(())
}

/// Exports of raw rows, one per hit.
#[derive(Clone, Copy)]
enum RawTool {
    GoatCounter,
    Umami,
}

fn import_raw(
    tool: RawTool,
    conn: &mut rusqlite::Connection,
    site: &sites::Site,
    files: &[(String, Vec<u8>)],
    options: Options<'_>,
) -> anyhow::Result<()> {
    use tallymark_collector::import::{goatcounter, raw, umami};
    // Regions (`US-TX`) are named from the city database, when given.
    let names = if options.geoip.is_empty() {
        tallymark_collector::geo::PlaceNames::default()
    } else {
        tallymark_collector::geo::Geo::open(options.geoip)?.place_names()
    };
    let mut all = raw::Hits::default();
    let mut seen: Vec<([u8; 32], &str)> = Vec::new();
    for (name, bytes) in files {
        let hits = match tool {
            RawTool::GoatCounter => goatcounter::parse(site, name, bytes, &names)?,
            RawTool::Umami => umami::parse(site, name, bytes, &names)?,
        };
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == hits.digest) {
            anyhow::bail!(
                "{name} holds the same rows as {first}: give each export once (gzipped or not)"
            );
        }
        seen.push((hits.digest, name));
        let left_out = match tool {
            RawTool::GoatCounter => "marked as bots",
            RawTool::Umami => "link, pixel or performance events",
        };
        println!(
            "{name}: {} rows, {} {left_out} (left out), {} unreadable (left out)",
            hits.len() + hits.bots + hits.skipped,
            hits.bots,
            hits.skipped
        );
        for (line, why) in &hits.skipped_lines {
            println!("  line {line}: {why}");
        }
        let overlap = all.append(hits);
        if overlap > 0 {
            println!("  {overlap} rows left out: an export given before holds them");
        }
    }
    let minutes = options.session_timeout_minutes.unwrap_or(30);
    let done = raw::write(
        conn,
        site,
        all,
        SystemClock.now(),
        options.retention_days,
        i64::from(minutes) * 60_000,
        tallymark_collector::import::Pacing::default(),
    );
    let marked: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM import_marks WHERE site_id = ?1)",
            [site.id],
            |r| r.get(0),
        )
        .unwrap_or(false);
    if done.is_err() && marked {
        eprintln!(
            "the import stopped part-way: until it is run again to the end, `serve` rolls up \
             none of {}'s days (its answers stay exact, only slower)",
            site.domain
        );
    }
    let done = done?;
    let domain = &site.domain;
    match (done.first, done.last) {
        (Some(first), Some(last)) => println!(
            "imported {} visits ({} pageviews, {} custom events) on {} days into {domain}, {first} to {last}",
            done.visits, done.pageviews, done.events, done.days
        ),
        _ => println!("imported nothing into {domain}"),
    }
    if done.after_native > 0 {
        println!(
            "left out {} rows on or after the site's own first event here, or on a day not over yet",
            done.after_native
        );
    }
    if done.past_retention > 0 {
        println!(
            "left out {} rows before the site's retention period",
            done.past_retention
        );
    }
    if done.already > 0 {
        println!(
            "left out {} rows of days that hold events or imported data already",
            done.already
        );
    }
    Ok(())
}

fn token(command: TokenCommand) -> anyhow::Result<()> {
    let (site, share, data) = match command {
        TokenCommand::Create { site, share, data } => (site, share, data),
        TokenCommand::List { data } => {
            let conn = open_existing_db(&data)?;
            let tokens = stats::auth::list(&conn)?;
            if tokens.is_empty() {
                eprintln!("no tokens: `tallymark token create` makes one");
            } else {
                println!("id            kind   site  created");
            }
            for t in tokens {
                let created = jiff::Timestamp::from_millisecond(t.created_ms)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default();
                let site = t.site.as_deref().unwrap_or("-");
                println!("{}  {:<5}  {site}  {created}", t.id, t.kind);
            }
            return Ok(());
        }
        TokenCommand::Revoke { id, data } => {
            let conn = open_existing_db(&data)?;
            let id = stats::auth::revoke(&conn, &id)?;
            println!("revoked {id}");
            return Ok(());
        }
    };
    let conn = open_existing_db(&data)?;
    let (kind, site_id) = match (site, share) {
        (Some(domain), true) => {
            let site = sites::get(&conn, &domain)?
                .ok_or_else(|| anyhow::anyhow!("site {domain} is not registered"))?;
            (stats::auth::TokenKind::Share, Some(site.id))
        }
        _ => (stats::auth::TokenKind::Admin, None),
    };
    let token = stats::auth::create(&conn, kind, site_id, SystemClock.now_ms())?;
    eprintln!(
        "{} token {} created; it is shown only this once (`tallymark token revoke {}` ends it):",
        kind.as_str(),
        stats::auth::id_of(&token),
        stats::auth::id_of(&token),
    );
    println!("{token}");
    Ok(())
}

fn bots() -> anyhow::Result<()> {
    let rules = BotRules::default();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Bytes, not `lines()`: a log line in Latin-1 is read as the collector
    // reads a header (lossily), not an error that ends the run.
    for line in stdin.lock().split(b'\n') {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let line = String::from_utf8_lossy(line);
        // Path "/": only the User-Agent decides here.
        match classify(&rules, &line, "/") {
            Classification::Human => writeln!(out, "human")?,
            Classification::Bot(reason) => writeln!(out, "bot {reason}")?,
        }
    }
    Ok(())
}

/// The stop signals: `SIGTERM` (systemd, `docker stop`, Kubernetes) and
/// `SIGINT` (Ctrl-C). Listened for from just before the listening line is
/// printed, so a signal sent as soon as it is read is a graceful stop (the
/// default action would end the process with no exit code 0), while one
/// during a slow start (migrations, rollups) still ends it at once: nothing
/// has been acknowledged then, and a migration is one transaction.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// The next stop signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
