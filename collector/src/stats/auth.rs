//! Stats API tokens: `Authorization: Bearer <token>`.
//!
//! A token is 32 random bytes from the OS, shown once as `tm_` + 64 hex
//! digits. Only its SHA-256 hash is stored (`tokens` table, migration 2), and
//! a request is matched by hashing what it presents and looking the hash up:
//! the raw secret is never stored, logged or compared.
//!
//! - An **admin** token reads every site.
//! - A **share** token reads one site only (read-only public dashboards); any
//!   other site answers `403`.

use axum::http::{HeaderMap, header};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::error::StatsError;

const PREFIX: &str = "tm_";

/// What a token may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Every site.
    Admin,
    /// The one site with this id.
    Share { site_id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Admin,
    Share,
}

impl TokenKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Share => "share",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Creates a token and returns its secret, which is not stored anywhere: the
/// caller shows it once. `site_id` is required for a share token and must be
/// `None` for an admin token.
pub fn create(
    conn: &Connection,
    kind: TokenKind,
    site_id: Option<i64>,
    now_ms: i64,
) -> Result<String, TokenError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex(&secret));
    let site_id = match kind {
        TokenKind::Admin => None,
        TokenKind::Share => site_id,
    };
    conn.execute(
        "INSERT INTO tokens (hash, kind, site_id, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![hash(&token), kind.as_str(), site_id, now_ms],
    )?;
    Ok(token)
}

/// A token's public name: the first 12 hex digits of its hash (which is
/// stored anyway and grants nothing). `token list` shows it and `token
/// revoke` takes it.
pub fn id_of(token: &str) -> String {
    id_of_hash(&hash(token))
}

fn id_of_hash(hash: &[u8]) -> String {
    hex(hash).chars().take(12).collect()
}

/// A stored token, as `token list` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub kind: String,
    /// The site of a share token.
    pub site: Option<String>,
    pub created_ms: i64,
}

/// Every token, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>, TokenError> {
    let mut stmt = conn.prepare(
        "SELECT t.hash, t.kind, s.domain, t.created_ms FROM tokens t
         LEFT JOIN sites s ON s.id = t.site_id ORDER BY t.created_ms, t.hash",
    )?;
    let rows = stmt.query_map([], |r| {
        let hash: Vec<u8> = r.get(0)?;
        Ok(TokenInfo {
            id: id_of_hash(&hash),
            kind: r.get(1)?,
            site: r.get(2)?,
            created_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no token has the id {0} (see `tallymark token list`)")]
    Unknown(String),
    #[error("{0} names more than one token: give more of its id")]
    Ambiguous(String),
    #[error("an id is 6 to 64 hex digits (see `tallymark token list`), or the token itself")]
    Malformed,
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Deletes the token named by `id_or_token`: its id (or a longer prefix of
/// its hash, at least 6 hex digits), or the secret itself. From then on it
/// answers `401`. Returns the token's id.
pub fn revoke(conn: &Connection, id_or_token: &str) -> Result<String, RevokeError> {
    let wanted = if id_or_token.starts_with(PREFIX) {
        hex(&hash(id_or_token))
    } else {
        id_or_token.to_ascii_lowercase()
    };
    if !(6..=64).contains(&wanted.len()) || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RevokeError::Malformed);
    }
    let mut stmt = conn.prepare("SELECT hash FROM tokens")?;
    let matching: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|h| hex(h).starts_with(&wanted))
        .collect();
    match matching.as_slice() {
        // Never a secret in a message: a token is named by its id.
        [] if id_or_token.starts_with(PREFIX) => Err(RevokeError::Unknown(format!(
            "{} (that token)",
            id_of(id_or_token)
        ))),
        [] => Err(RevokeError::Unknown(id_or_token.chars().take(64).collect())),
        [one] => {
            conn.execute("DELETE FROM tokens WHERE hash = ?1", [one])?;
            Ok(id_of_hash(one))
        }
        _ => Err(RevokeError::Ambiguous(wanted)),
    }
}

/// The grant of the bearer token in `headers`, or `401`.
pub fn authenticate(conn: &Connection, headers: &HeaderMap) -> Result<Grant, StatsError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(StatsError::Unauthorized(
            "authorization: missing; send `Authorization: Bearer <token>`",
        ))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(StatsError::Unauthorized(
            "authorization: expected `Bearer <token>`",
        ))?;
    let row: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT kind, site_id FROM tokens WHERE hash = ?1",
            [hash(token)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        Some((kind, None)) if kind == TokenKind::Admin.as_str() => Ok(Grant::Admin),
        Some((kind, Some(site_id))) if kind == TokenKind::Share.as_str() => {
            Ok(Grant::Share { site_id })
        }
        _ => Err(StatsError::Unauthorized("authorization: unknown token")),
    }
}

impl Grant {
    /// `403` unless this grant may read `site_id`.
    pub fn allows(&self, site_id: i64) -> Result<(), StatsError> {
        match self {
            Grant::Admin => Ok(()),
            Grant::Share { site_id: own } if *own == site_id => Ok(()),
            Grant::Share { .. } => Err(StatsError::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_two_digits_per_byte() {
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_revoked_token_no_longer_reads_and_others_still_do() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::schema::open(&dir.path().join("t.sqlite3")).unwrap();
        let site = crate::sites::add(&conn, "example.com", "UTC", 0).unwrap();
        let admin = create(&conn, TokenKind::Admin, None, 1).unwrap();
        let share = create(&conn, TokenKind::Share, Some(site.id), 2).unwrap();
        let listed = list(&conn).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|t| (t.id.clone(), t.kind.as_str(), t.site.as_deref()))
                .collect::<Vec<_>>(),
            [
                (id_of(&admin), "admin", None),
                (id_of(&share), "share", Some("example.com")),
            ]
        );
        // The listing never shows a secret.
        assert!(!format!("{listed:?}").contains(&admin[3..15]));

        assert!(matches!(revoke(&conn, "zz"), Err(RevokeError::Malformed)));
        assert!(matches!(
            revoke(&conn, "000000000000"),
            Err(RevokeError::Unknown(_))
        ));
        // An unknown secret is named by its id, never shown.
        let e = revoke(&conn, "tm_00112233445566778899")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("00112233445566778899") && e.contains("that token"),
            "{e}"
        );
        // By id: the share token stops working at once; the admin one does not.
        assert_eq!(revoke(&conn, &id_of(&share)).unwrap(), id_of(&share));
        assert!(authenticate(&conn, &bearer(&share)).is_err());
        assert_eq!(authenticate(&conn, &bearer(&admin)).unwrap(), Grant::Admin);
        // By the secret itself.
        assert_eq!(revoke(&conn, &admin).unwrap(), id_of(&admin));
        assert!(authenticate(&conn, &bearer(&admin)).is_err());
        assert!(list(&conn).unwrap().is_empty());
    }
}
