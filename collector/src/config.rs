//! Configuration of `tallymark serve`: flags, then `TALLYMARK_*` environment
//! variables, then an optional TOML file, then defaults, in that order of
//! precedence. Flags and environment are parsed by clap (in `main.rs`); this
//! module merges them with the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::Deserialize;
use tallymark_core::client_ip::TrustedProxies;

/// Everything `serve` needs, merged and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub trusted_proxies: TrustedProxies,
    /// Which forwarding header of a trusted proxy gives the client.
    pub client_ip_header: ClientIpHeader,
    /// MaxMind-format databases, asked in this order.
    pub geoip: Vec<PathBuf>,
    pub session_timeout: SignedDuration,
    /// Added to core's default skip paths.
    pub skip_paths: Vec<String>,
    /// A site's last 24 h this many percent below the 24 h before raise the
    /// volume-drop warning.
    pub volume_drop_percent: f64,
    pub queue_capacity: usize,
    pub max_batch: usize,
    pub max_live_sessions: usize,
    /// fsync every batch before answering (survives power loss, not only a
    /// process crash).
    pub fsync: bool,
    /// Answer whole-day stats from daily rollups (stats/rollup.rs). Off only
    /// to check them against the raw path.
    pub rollups: bool,
    /// How long a connection may take to send each request head (idle
    /// keep-alive time included), and then its whole body (see `serve` in
    /// main.rs).
    pub read_timeout: std::time::Duration,
    /// Answer the stats API from ClickHouse, fed from SQLite (clickhouse/).
    pub clickhouse: Option<crate::clickhouse::ClickHouseConfig>,
    /// Keep this many whole days before today (in each site's timezone);
    /// older rows are deleted (retention.rs). `None`: kept for ever.
    pub retention_days: Option<u32>,
}

/// The ClickHouse database used when none is named.
pub const DEFAULT_CLICKHOUSE_DATABASE: &str = "tallymark";

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./tallymark-data"),
            trusted_proxies: TrustedProxies::default(),
            client_ip_header: ClientIpHeader::Any,
            geoip: Vec::new(),
            session_timeout: SignedDuration::from_mins(30),
            skip_paths: Vec::new(),
            volume_drop_percent: 15.0,
            queue_capacity: 8192,
            max_batch: 512,
            max_live_sessions: 1_000_000,
            fsync: false,
            rollups: true,
            read_timeout: std::time::Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
            clickhouse: None,
            retention_days: None,
        }
    }
}

/// The forwarding header a trusted proxy's client is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// The first that holds an address: `CF-Connecting-IP`, `Forwarded`,
    /// `X-Forwarded-For`, `X-Real-IP` (core's precedence). The proxy must
    /// then clear the ones it does not set (docs/deploy.md).
    Any,
    /// Only this one (and `CF-IPCountry` only with `CF-Connecting-IP`):
    /// whatever else a client sends through the proxy is ignored.
    CfConnectingIp,
    Forwarded,
    XForwardedFor,
    XRealIp,
}

impl ClientIpHeader {
    /// Whether `CF-IPCountry` of a trusted proxy is believed.
    pub fn trusts_cf_country(self) -> bool {
        matches!(self, ClientIpHeader::Any | ClientIpHeader::CfConnectingIp)
    }
}

impl std::str::FromStr for ClientIpHeader {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "any" => ClientIpHeader::Any,
            "cf-connecting-ip" => ClientIpHeader::CfConnectingIp,
            "forwarded" => ClientIpHeader::Forwarded,
            "x-forwarded-for" => ClientIpHeader::XForwardedFor,
            "x-real-ip" => ClientIpHeader::XRealIp,
            _ => return Err(ConfigError::ClientIpHeader(s.chars().take(64).collect())),
        })
    }
}

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.data.join("tallymark.sqlite3")
    }
}

/// Values given on the command line or in the environment; `None` = not
/// given, so the file or the default decides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    pub trusted_proxies: Option<String>,
    pub client_ip_header: Option<String>,
    pub geoip: Option<Vec<PathBuf>>,
    pub session_timeout_minutes: Option<u32>,
    pub skip_paths: Option<Vec<String>>,
    pub volume_drop_percent: Option<f64>,
    pub fsync: Option<bool>,
    pub read_timeout_secs: Option<u64>,
    pub clickhouse: Option<String>,
    pub clickhouse_database: Option<String>,
    pub retention_days: Option<u32>,
}

/// The longest retention (100 years): beyond it, leave it unset.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The default of `read_timeout`: above the idle timeout of the load
/// balancers that pool connections to a backend (AWS ALB 60 s, nginx's
/// `keepalive_timeout` 75 s), which must not find the collector closing a
/// connection they are about to reuse (a beacon lost as a 502); slowloris
/// clients still must reconnect every 75 s to hold a descriptor, as with
/// nginx's 60 s `client_header_timeout`.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 75;

/// A TOML value that is one path or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    One(PathBuf),
    More(Vec<PathBuf>),
}

impl OneOrMore {
    pub fn into_vec(self) -> Vec<PathBuf> {
        match self {
            OneOrMore::One(path) => vec![path],
            OneOrMore::More(paths) => paths,
        }
    }
}

/// The TOML file's shape: the same keys as the flags, with underscores.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    /// A list of CIDRs or addresses.
    pub trusted_proxies: Option<Vec<String>>,
    pub client_ip_header: Option<String>,
    /// One path, or a list (ip-location-db's IPv4 and IPv6 files).
    pub geoip: Option<OneOrMore>,
    pub session_timeout_minutes: Option<u32>,
    pub skip_paths: Option<Vec<String>>,
    pub volume_drop_percent: Option<f64>,
    pub queue_capacity: Option<usize>,
    pub max_batch: Option<usize>,
    pub max_live_sessions: Option<usize>,
    pub fsync: Option<bool>,
    pub read_timeout_secs: Option<u64>,
    /// ClickHouse's HTTP URL (`http://127.0.0.1:8123`).
    pub clickhouse: Option<String>,
    pub clickhouse_database: Option<String>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// On one line: toml's own report spans several, with a snippet.
    #[error("{path}: line {line}, column {column}: {message}")]
    Toml {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The core error names the setting already.
    #[error(transparent)]
    TrustedProxies(#[from] tallymark_core::client_ip::TrustedProxiesError),
    #[error("session timeout: must be between 1 and 1440 minutes")]
    SessionTimeout,
    #[error("volume drop percent: must be between 0 and 100")]
    VolumeDrop,
    #[error("read timeout: must be between 1 and 3600 seconds")]
    ReadTimeout,
    #[error("retention days: must be between 1 and 36500 (leave it unset to keep every event)")]
    RetentionDays,
    #[error(
        "client ip header: {0:?} is not one of any, cf-connecting-ip, forwarded, x-forwarded-for, x-real-ip"
    )]
    ClientIpHeader(String),
    #[error(transparent)]
    ClickHouse(#[from] crate::clickhouse::ClickHouseError),
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            // 1-based line and column of the error's start (in characters).
            let before = e
                .span()
                .and_then(|span| text.get(..span.start))
                .unwrap_or_default();
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            ConfigError::Toml {
                path: path.display().to_string(),
                line: before.matches('\n').count() + 1,
                column: before[line_start..].chars().count() + 1,
                message: e.message().trim().replace('\n', " "),
            }
        })
    }
}

/// Flags/env over file over defaults.
pub fn merge(over: Overrides, file: FileConfig) -> Result<Config, ConfigError> {
    let d = Config::default();
    let trusted_proxies = match (over.trusted_proxies, file.trusted_proxies) {
        (Some(list), _) => list.parse()?,
        (None, Some(list)) => TrustedProxies::try_from_entries(list)?,
        (None, None) => d.trusted_proxies,
    };
    let client_ip_header = match over.client_ip_header.or(file.client_ip_header) {
        Some(name) => name.parse()?,
        None => d.client_ip_header,
    };
    let minutes = over
        .session_timeout_minutes
        .or(file.session_timeout_minutes)
        .unwrap_or(30);
    if !(1..=1440).contains(&minutes) {
        return Err(ConfigError::SessionTimeout);
    }
    let read_timeout_secs = over.read_timeout_secs.or(file.read_timeout_secs);
    if read_timeout_secs.is_some_and(|s| !(1..=3600).contains(&s)) {
        return Err(ConfigError::ReadTimeout);
    }
    let volume_drop_percent = over
        .volume_drop_percent
        .or(file.volume_drop_percent)
        .unwrap_or(d.volume_drop_percent);
    if !(0.0..=100.0).contains(&volume_drop_percent) {
        return Err(ConfigError::VolumeDrop);
    }
    let retention_days = over.retention_days.or(file.retention_days);
    if retention_days.is_some_and(|d| !(1..=MAX_RETENTION_DAYS).contains(&d)) {
        return Err(ConfigError::RetentionDays);
    }
    let clickhouse = match over.clickhouse.or(file.clickhouse) {
        Some(url) if !url.trim().is_empty() => {
            let config = crate::clickhouse::ClickHouseConfig {
                url: url.trim().to_string(),
                database: over
                    .clickhouse_database
                    .or(file.clickhouse_database)
                    .unwrap_or_else(|| DEFAULT_CLICKHOUSE_DATABASE.to_string()),
            };
            // Checked now, so a typo stops `serve` before it starts.
            crate::clickhouse::ClickHouse::new(&config)?;
            Some(config)
        }
        _ => None,
    };
    Ok(Config {
        listen: over.listen.or(file.listen).unwrap_or(d.listen),
        data: over.data.or(file.data).unwrap_or(d.data),
        trusted_proxies,
        client_ip_header,
        geoip: over
            .geoip
            .or(file.geoip.map(OneOrMore::into_vec))
            .unwrap_or_default(),
        session_timeout: SignedDuration::from_mins(minutes.into()),
        skip_paths: over.skip_paths.or(file.skip_paths).unwrap_or_default(),
        volume_drop_percent,
        queue_capacity: file.queue_capacity.unwrap_or(d.queue_capacity).max(1),
        max_batch: file.max_batch.unwrap_or(d.max_batch).max(1),
        max_live_sessions: file.max_live_sessions.unwrap_or(d.max_live_sessions),
        fsync: over.fsync.or(file.fsync).unwrap_or(d.fsync),
        rollups: d.rollups,
        read_timeout: read_timeout_secs.map_or(d.read_timeout, std::time::Duration::from_secs),
        clickhouse,
        retention_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geoip_is_one_path_or_a_list() {
        let one: FileConfig = toml::from_str(r#"geoip = "/geo/city.mmdb""#).unwrap();
        let c = merge(Overrides::default(), one).unwrap();
        assert_eq!(c.geoip, [PathBuf::from("/geo/city.mmdb")]);
        let more: FileConfig =
            toml::from_str(r#"geoip = ["/geo/city-ipv4.mmdb", "/geo/city-ipv6.mmdb"]"#).unwrap();
        let over = Overrides {
            geoip: Some(vec![PathBuf::from("/flag.mmdb")]),
            ..Overrides::default()
        };
        assert_eq!(
            merge(Overrides::default(), more.clone()).unwrap().geoip,
            [
                PathBuf::from("/geo/city-ipv4.mmdb"),
                PathBuf::from("/geo/city-ipv6.mmdb")
            ]
        );
        assert_eq!(
            merge(over, more).unwrap().geoip,
            [PathBuf::from("/flag.mmdb")]
        );
        assert!(
            merge(Overrides::default(), FileConfig::default())
                .unwrap()
                .geoip
                .is_empty()
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            data = "/var/lib/tallymark"
            trusted_proxies = ["10.0.0.0/8"]
            session_timeout_minutes = 45
            "#,
        )
        .unwrap();
        let over = Overrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Overrides::default()
        };
        let c = merge(over, file).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.data, PathBuf::from("/var/lib/tallymark"));
        assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(c.session_timeout, SignedDuration::from_mins(45));
        assert_eq!(c.volume_drop_percent, 15.0);
    }

    #[test]
    fn bad_values_are_named() {
        let over = Overrides {
            trusted_proxies: Some("10.0.0.0/8, nonsense".into()),
            ..Overrides::default()
        };
        let err = merge(over, FileConfig::default()).unwrap_err().to_string();
        assert!(err.contains("nonsense"), "{err}");
        assert!(toml::from_str::<FileConfig>("unknown_key = 1").is_err());
    }

    #[test]
    fn a_file_error_is_one_line_naming_the_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tallymark.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:0\"\n  trusted_proxy = []\n").unwrap();
        let err = FileConfig::read(&path).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.starts_with(&format!("{}: line 2, column 3: ", path.display())),
            "{err}"
        );
        assert!(err.contains("unknown field `trusted_proxy`"), "{err}");
    }

    #[test]
    fn clickhouse_comes_from_flags_then_file_and_a_bad_url_is_named() {
        let file: FileConfig = toml::from_str(
            r#"
            clickhouse = "http://127.0.0.1:8123"
            clickhouse_database = "stats"
            "#,
        )
        .unwrap();
        let c = merge(Overrides::default(), file.clone()).unwrap();
        let ch = c.clickhouse.unwrap();
        assert_eq!(
            (ch.url.as_str(), ch.database.as_str()),
            ("http://127.0.0.1:8123", "stats")
        );
        let over = Overrides {
            clickhouse: Some("http://ch.internal:8123".into()),
            ..Overrides::default()
        };
        let ch = merge(over, file).unwrap().clickhouse.unwrap();
        assert_eq!(
            (ch.url.as_str(), ch.database.as_str()),
            ("http://ch.internal:8123", "stats")
        );
        let d = merge(Overrides::default(), FileConfig::default()).unwrap();
        assert!(d.clickhouse.is_none());
        let over = Overrides {
            clickhouse: Some("ftp://nope".into()),
            ..Overrides::default()
        };
        let err = merge(over, FileConfig::default()).unwrap_err().to_string();
        assert!(err.contains("ftp://nope"), "{err}");
    }

    #[test]
    fn retention_comes_from_flags_then_file_and_is_bounded() {
        let d = merge(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(d.retention_days, None);
        let file: FileConfig = toml::from_str("retention_days = 400").unwrap();
        assert_eq!(
            merge(Overrides::default(), file.clone())
                .unwrap()
                .retention_days,
            Some(400)
        );
        let over = Overrides {
            retention_days: Some(30),
            ..Overrides::default()
        };
        assert_eq!(merge(over, file).unwrap().retention_days, Some(30));
        for bad in [0, MAX_RETENTION_DAYS + 1] {
            let over = Overrides {
                retention_days: Some(bad),
                ..Overrides::default()
            };
            assert!(matches!(
                merge(over, FileConfig::default()),
                Err(ConfigError::RetentionDays)
            ));
        }
    }

    #[test]
    fn read_timeout_comes_from_flags_then_file_and_is_bounded() {
        let file = |secs| FileConfig {
            read_timeout_secs: Some(secs),
            ..FileConfig::default()
        };
        let flags = |secs| Overrides {
            read_timeout_secs: Some(secs),
            ..Overrides::default()
        };
        let d = merge(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(d.read_timeout.as_secs(), DEFAULT_READ_TIMEOUT_SECS);
        let c = merge(Overrides::default(), file(120)).unwrap();
        assert_eq!(c.read_timeout.as_secs(), 120);
        let c = merge(flags(5), file(120)).unwrap();
        assert_eq!(c.read_timeout.as_secs(), 5);
        assert!(matches!(
            merge(flags(0), file(120)),
            Err(ConfigError::ReadTimeout)
        ));
        assert!(matches!(
            merge(Overrides::default(), file(7200)),
            Err(ConfigError::ReadTimeout)
        ));
    }
}
