//! ClickHouse as the analytics store, for when one machine's SQLite is
//! outgrown by the stats queries.
//!
//! SQLite stays the durable ingest log: a request is still answered `202`
//! only after its batch committed there, so a ClickHouse outage or restart
//! loses nothing and slows no beacon. [`ship`] copies the committed rows to
//! ClickHouse in large batches (ClickHouse wants few, big inserts; seed 003's
//! write amplification), and [`query`] answers the stats API from there
//! instead of SQLite's rows and rollups. An empty ClickHouse database is
//! filled from SQLite's whole history on start (backfill), so ClickHouse can
//! be added to a running collector at any time.
//!
//! Only the HTTP interface is used (no native protocol, no driver), with SQL
//! that runs on ClickHouse 18.16 (Debian's package) and current releases
//! alike: no `DateTime64`, no `TTL`, no query parameters (every value from a
//! request goes through [`lit`]), no `SETTINGS` clause (settings are URL
//! parameters).

pub mod query;
pub mod schema;
pub mod ship;

use std::time::Duration;

use serde_json::Value;

/// Where ClickHouse is and which database holds Tallymark's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// The HTTP interface, e.g. `http://127.0.0.1:8123`; a user and password
    /// in it (`http://user:secret@host:8123`) are sent as HTTP Basic auth.
    pub url: String,
    pub database: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("clickhouse URL {0:?}: {1}")]
    Url(String, String),
    #[error("clickhouse database name {0:?}: use letters, digits and _ only")]
    Database(String),
    #[error("clickhouse at {url}: {message}")]
    Http { url: String, message: String },
    /// ClickHouse answered with an error (the first line of its message).
    #[error("clickhouse: {0}")]
    Server(String),
    #[error("clickhouse answer: {0}")]
    Answer(String),
}

/// A ClickHouse HTTP endpoint and database. Calls block: the stats handlers
/// run them on the blocking pool, the shipper on its own thread.
pub struct ClickHouse {
    agent: ureq::Agent,
    /// Base URL, ending in `?` or `&`.
    base: String,
    /// `Authorization: Basic …` for the URL's user and password (a header,
    /// not URL parameters, which ClickHouse writes to its log).
    auth: Option<String>,
    /// For messages: the URL without credentials.
    shown: String,
    pub database: String,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("url", &self.shown)
            .field("database", &self.database)
            .finish()
    }
}

/// How long one call may take (a stats query on a large range included).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer read (a breakdown of many values).
const MAX_ANSWER: u64 = 256 << 20;

impl ClickHouse {
    /// Checks the configuration (no connection is made).
    pub fn new(config: &ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let bad = |m: &str| ClickHouseError::Url(config.url.clone(), m.to_string());
        let mut url = url::Url::parse(&config.url).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "only http:// is supported (put TLS in front: a local proxy)",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if !is_identifier(&config.database) {
            return Err(ClickHouseError::Database(config.database.clone()));
        }
        let user = url.username().to_string();
        let password = url.password().map(str::to_string);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        let shown = url.to_string();
        let auth = (!user.is_empty() || password.is_some()).then(|| {
            use base64::Engine;
            let pair = format!(
                "{}:{}",
                decode(&user),
                decode(password.as_deref().unwrap_or(""))
            );
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        // Numbers as JSON numbers, not strings.
        url.query_pairs_mut()
            .append_pair("output_format_json_quote_64bit_integers", "0");
        let base = format!("{url}&");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            auth,
            shown,
            database: config.database.clone(),
        })
    }

    /// Runs `sql` (the body of a POST) with the URL parameters `params`;
    /// the answer's text.
    fn post(&self, params: &str, sql: String) -> Result<String, ClickHouseError> {
        let url = format!("{}{params}", self.base);
        let http = |e: ureq::Error| ClickHouseError::Http {
            url: self.shown.clone(),
            message: e.to_string(),
        };
        let mut request = self.agent.post(&url);
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let mut resp = request.send(sql).map_err(http)?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(http)?;
        if status.is_success() {
            Ok(text)
        } else {
            let first = text.lines().next().unwrap_or_default();
            Err(ClickHouseError::Server(format!(
                "{status}: {}",
                first.chars().take(500).collect::<String>()
            )))
        }
    }

    /// Runs a statement that returns nothing (DDL).
    pub fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.post("", sql.to_string()).map(drop)
    }

    /// The rows of a `SELECT`, each an array of JSON values in column order.
    pub fn rows(&self, sql: &str) -> Result<Vec<Vec<Value>>, ClickHouseError> {
        let text = self.post("", format!("{sql} FORMAT JSONCompact"))?;
        let mut answer: Value =
            serde_json::from_str(&text).map_err(|e| ClickHouseError::Answer(e.to_string()))?;
        let data = answer
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| ClickHouseError::Answer("no data".into()))?;
        let Value::Array(rows) = data else {
            return Err(ClickHouseError::Answer("data is not a list".into()));
        };
        rows.into_iter()
            .map(|r| match r {
                Value::Array(cells) => Ok(cells),
                _ => Err(ClickHouseError::Answer("a row is not a list".into())),
            })
            .collect()
    }

    /// Inserts `lines` (JSON objects, one per line) into `table` in one
    /// `INSERT`, which ClickHouse applies whole or not at all. `query_id`
    /// names it: while one with that id still runs (an answer that timed
    /// out), ClickHouse refuses the same again.
    pub fn insert(
        &self,
        table: &str,
        lines: String,
        query_id: &str,
    ) -> Result<(), ClickHouseError> {
        let query = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database);
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &query)
            .append_pair("query_id", query_id)
            .finish();
        self.post(&params, lines).map(drop)
    }

    /// `database.table`.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.database)
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// `s` as a ClickHouse string literal. Inside quotes ClickHouse reads
/// backslash escapes, so a backslash and a quote are escaped; every other
/// character stands for itself. The only way a request value enters SQL.
pub fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A JSON cell as an integer (ClickHouse may quote 64-bit integers).
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON cell as a float.
pub fn float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// A JSON cell as text; `None` for null.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(lit("a'b"), r"'a\'b'");
        assert_eq!(lit(r"a\'); DROP"), r"'a\\\'); DROP'");
        assert_eq!(lit("ü\n"), "'ü\n'");
    }

    #[test]
    fn urls_are_checked_and_credentials_become_parameters() {
        let cfg = |url: &str, db: &str| ClickHouseConfig {
            url: url.into(),
            database: db.into(),
        };
        let ch = ClickHouse::new(&cfg("http://u:p%40ss@127.0.0.1:8123", "tallymark")).unwrap();
        // "u:p@ss"
        assert_eq!(ch.auth.as_deref(), Some("Basic dTpwQHNz"));
        assert!(
            !ch.base.contains("p%40ss") && !ch.shown.contains("p%40ss"),
            "{}",
            ch.base
        );
        assert!(
            ClickHouse::new(&cfg("http://127.0.0.1:8123", "t"))
                .unwrap()
                .auth
                .is_none()
        );
        assert!(ClickHouse::new(&cfg("https://h:8443", "t")).is_err());
        assert!(ClickHouse::new(&cfg("not a url", "t")).is_err());
        assert!(ClickHouse::new(&cfg("http://h:8123", "t; DROP")).is_err());
        assert!(ClickHouse::new(&cfg("http://h:8123", "9t")).is_err());
    }
}
