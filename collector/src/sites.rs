//! Registered sites. Events for a site that is not registered are refused.
//!
//! The CLI (`tallymark site add|set|list|remove`) writes the `sites` table
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
    /// Days kept before today (`site set --retention-days`); `None`: as
    /// `serve --retention-days` says.
    pub retention_days: Option<u32>,
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
    #[error("retention days: {0:?} is not a number of days from 1 to 36500, or off")]
    InvalidRetention(String),
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
        retention_days: None,
    })
}

/// Parses a `--retention-days` value of `site set`: days (1 to 36500), or
/// `off` (the site keeps what `serve --retention-days` says).
pub fn parse_retention(value: &str) -> Result<Option<u32>, SiteError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(days) if (1..=crate::config::MAX_RETENTION_DAYS).contains(&days) => Ok(Some(days)),
        _ => Err(SiteError::InvalidRetention(
            value.chars().take(32).collect(),
        )),
    }
}

/// Sets the site's own retention (`None`: `serve --retention-days`'s); a
/// running collector applies it within a minute.
pub fn set_retention(
    conn: &Connection,
    domain: &str,
    days: Option<u32>,
) -> Result<Site, SiteError> {
    let site = get(conn, domain)?.ok_or_else(|| SiteError::NotFound(domain.to_string()))?;
    conn.execute(
        "UPDATE sites SET retention_days = ?1 WHERE id = ?2",
        params![days, site.id],
    )?;
    Ok(Site {
        retention_days: days,
        ..site
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
            "SELECT id, domain, timezone, retention_days FROM sites WHERE domain = ?1",
            [&domain],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(row.and_then(|(id, domain, timezone, days)| site_from_row(id, domain, timezone, days)))
}

/// Every registered site, by domain.
pub fn list(conn: &Connection) -> Result<Vec<Site>, SiteError> {
    let mut stmt =
        conn.prepare("SELECT id, domain, timezone, retention_days FROM sites ORDER BY domain")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let mut sites = Vec::new();
    for row in rows {
        let (id, domain, timezone, days) = row?;
        if let Some(site) = site_from_row(id, domain, timezone, days) {
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
    tx.execute(
        "UPDATE engagement_ids SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM engagements))",
        [],
    )?;
    tx.execute("DELETE FROM events WHERE site_id = ?1", [site.id])?;
    tx.execute(
        "DELETE FROM visit_backlog WHERE session_id IN (SELECT id FROM sessions WHERE site_id = ?1)",
        [site.id],
    )?;
    tx.execute("DELETE FROM sessions WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM import_marks WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM engagements WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM salts WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_days WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_events WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM rollup_sessions WHERE site_id = ?1", [site.id])?;
    tx.execute("DELETE FROM sites WHERE id = ?1", [site.id])?;
    tx.commit()?;
    Ok(())
}

fn site_from_row(
    id: i64,
    domain: String,
    timezone: String,
    retention_days: Option<u32>,
) -> Option<Site> {
    // A row whose timezone this binary cannot resolve is skipped with a
    // warning rather than taking the collector down.
    match TimeZone::get(&timezone) {
        Ok(tz) => Some(Site {
            id,
            domain,
            timezone,
            tz,
            retention_days,
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
    fn a_site_keeps_its_own_retention_or_serves() {
        assert_eq!(parse_retention("30").unwrap(), Some(30));
        assert_eq!(parse_retention(" OFF ").unwrap(), None);
        for bad in ["0", "36501", "-1", "30d", ""] {
            assert!(
                matches!(parse_retention(bad), Err(SiteError::InvalidRetention(_))),
                "{bad}"
            );
        }
        let conn = Connection::open_in_memory().unwrap();
        crate::store::schema::MIGRATIONS
            .iter()
            .for_each(|m| conn.execute_batch(m).unwrap());
        add(&conn, "example.com", "UTC", 0).unwrap();
        assert_eq!(list(&conn).unwrap()[0].retention_days, None);
        set_retention(&conn, "www.example.com", Some(90)).unwrap();
        assert_eq!(
            get(&conn, "example.com").unwrap().unwrap().retention_days,
            Some(90)
        );
        set_retention(&conn, "example.com", None).unwrap();
        assert_eq!(list(&conn).unwrap()[0].retention_days, None);
        assert!(matches!(
            set_retention(&conn, "other.example", Some(1)),
            Err(SiteError::NotFound(_))
        ));
    }

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
