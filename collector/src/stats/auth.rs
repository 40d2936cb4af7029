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
}
