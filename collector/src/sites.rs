//! Registered sites. Events for a site that is not registered are refused.
//!
//! The CLI (`tallymark site add|list|remove`) writes the `sites` table
//! directly; a running collector reloads it every few seconds
//! ([`Sites::refresh`]), so a site added while it runs is picked up without a
//! restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jiff::tz::TimeZone;
use rusqlite::{Connection, OptionalExtension, params};
use tallymark_core::validate::normalize_site;

#[derive(Debug, Clone)]
pub struct Site {
    pub id: i64,
    /// Normalised: lower case, no `www.`.
    pub domain: String,
    /// IANA name, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub tz: TimeZone,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{0:?} is not a domain name (example: example.com)")]
    InvalidDomain(String),
    #[error("{0:?} is not an IANA timezone (example: Europe/Berlin)")]
    InvalidTimezone(String),
    #[error("site {0} is already registered")]
    Exists(String),
    #[error("site {0} is not registered")]
    NotFound(String),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Resolves an IANA timezone name with the bundled tz database.
pub fn timezone(name: &str) -> Result<TimeZone, SiteError> {
    TimeZone::get(name).map_err(|_| SiteError::InvalidTimezone(name.to_string()))
}

/// Registers `domain` with `timezone`.
pub fn add(conn: &Connection, domain: &str, tz_name: &str, now_ms: i64) -> Result<Site, SiteError> {
    let domain_norm =
        normalize_site(domain).ok_or_else(|| SiteError::InvalidDomain(domain.to_string()))?;
    let tz = timezone(tz_name)?;
    // A new id is above every id ever given (schema migration 4).
    let tx = conn.unchecked_transaction()?;
    let id: i64 = tx.query_row(
        "SELECT MAX((SELECT last FROM site_ids), COALESCE((SELECT MAX(id) FROM sites), 0)) + 1",
        [],
        |r| r.get(0),
    )?;
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO sites (id, domain, timezone, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![id, domain_norm, tz_name, now_ms],
    )?;
    if inserted == 0 {
        return Err(SiteError::Exists(domain_norm));
    }
    tx.execute("UPDATE site_ids SET last = ?1", [id])?;
    tx.commit()?;
    Ok(Site {
        id,
        domain: domain_norm,
        timezone: tz_name.to_string(),
        tz,
    })
}

/// Registers `domain` unless it already is; returns the stored site.
pub fn ensure(
    conn: &Connection,
    domain: &str,
    tz_name: &str,
    now_ms: i64,
) -> Result<Site, SiteError> {
    match add(conn, domain, tz_name, now_ms) {
        Err(SiteError::Exists(d)) => get(conn, &d)?.ok_or(SiteError::NotFound(d)),
        other => other,
    }
}

pub fn get(conn: &Connection, domain: &str) -> Result<Option<Site>, SiteError> {
    let Some(domain) = normalize_site(domain) else {
        return Ok(None);
    };
    let row = conn
        .query_row(
            "SELECT id, domain, timezone FROM sites WHERE domain = ?1",
            [&domain],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(id, domain, timezone)| site_from_row(id, domain, timezone)))
}

/// Every registered site, by domain.
pub fn list(conn: &Connection) -> Result<Vec<Site>, SiteError> {
    let mut stmt = conn.prepare("SELECT id, domain, timezone FROM sites ORDER BY domain")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut sites = Vec::new();
    for row in rows {
        let (id, domain, timezone) = row?;
        if let Some(site) = site_from_row(id, domain, timezone) {
            sites.push(site);
        }
    }
    Ok(sites)
}

/// Removes the site and everything stored for it: events, sessions,
/// engagement, salts.
pub fn remove(conn: &mut Connection, domain: &str) -> Result<(), SiteError> {
    let site = get(conn, domain)?.ok_or_else(|| SiteError::NotFound(domain.to_string()))?;
    let tx = conn.transaction()?;
    // Its ids stay taken (migration 6).
    tx.execute(
        "UPDATE event_ids SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM events))",
        [],
    )?;
    tx.execute("DELETE FROM events WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM sessions WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM engagements WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM salts WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_days WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_events WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_sessions WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM sites WHERE id = ?1", [site.id])?;
    tx.commit()?;
    Ok(())
}

fn site_from_row(id: i64, domain: String, timezone: String) -> Option<Site> {
    // A row whose timezone this binary cannot resolve is skipped with a
    // warning rather than taking the collector down.
    match TimeZone::get(&timezone) {
        Ok(tz) => Some(Site {
            id,
            domain,
            timezone,
            tz,
        }),
        Err(_) => {
            tracing::warn!(site = %domain, %timezone, "unknown timezone; site ignored");
            None
        }
    }
}

/// The collector's in-memory view of the `sites` table.
#[derive(Default)]
pub struct Sites {
    by_domain: RwLock<HashMap<String, Arc<Site>>>,
}

impl Sites {
    pub fn load(conn: &Connection) -> Result<Self, SiteError> {
        let sites = Self::default();
        sites.refresh(conn)?;
        Ok(sites)
    }

    /// Re-reads the table.
    pub fn refresh(&self, conn: &Connection) -> Result<(), SiteError> {
        let fresh: HashMap<String, Arc<Site>> = list(conn)?
            .into_iter()
            .map(|s| (s.domain.clone(), Arc::new(s)))
            .collect();
        if let Ok(mut map) = self.by_domain.write() {
            *map = fresh;
        }
        Ok(())
    }

    /// The site for a payload's `site` field (normalised like on add).
    pub fn get(&self, domain: &str) -> Option<Arc<Site>> {
        let map = self.by_domain.read().ok()?;
        if let Some(site) = map.get(domain) {
            return Some(site.clone());
        }
        normalize_site(domain).and_then(|d| map.get(&d).cloned())
    }

    pub fn all(&self) -> Vec<Arc<Site>> {
        self.by_domain
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_sites_id_is_never_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::schema::open(&dir.path().join("db")).unwrap();
        let a = add(&conn, "a.example", "UTC", 0).unwrap();
        let b = add(&conn, "b.example", "UTC", 0).unwrap();
        assert!(b.id > a.id);
        remove(&mut conn, "b.example").unwrap();
        let again = add(&conn, "b.example", "UTC", 0).unwrap();
        assert!(again.id > b.id, "{} reused", again.id);
        remove(&mut conn, "b.example").unwrap();
        let c = add(&conn, "c.example", "UTC", 0).unwrap();
        assert!(c.id > again.id, "{} reused", c.id);
        assert!(matches!(
            add(&conn, "a.example", "UTC", 0),
            Err(SiteError::Exists(_))
        ));
    }
}
