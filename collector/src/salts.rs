//! Daily salts: one secret random 32-byte salt per site per local day.
//!
//! Salts are persisted (a restart keeps the day's visitor ids stable) and
//! deleted once expired: the end of their local day plus one session timeout
//! (sessions crossing midnight still find yesterday's id). Deletion uses
//! SQLite's `secure_delete` and truncates the WAL, so the bytes are gone from
//! disk, and with them any way to recompute an old visitor id.
//!
//! Creation is race-free (seed 000's get-or-create race): one creator at a
//! time, and the database decides (`INSERT OR IGNORE`, then read back).

use std::collections::HashMap;
use std::sync::RwLock;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use tallymark_core::visitor::{Salt, salt_day, salt_expiry};

use crate::sites::Site;
use crate::store::{Store, StoreError};

#[derive(Default)]
pub struct Salts {
    map: RwLock<HashMap<(i64, Date), (Salt, i64)>>,
    create: tokio::sync::Mutex<()>,
}

impl Salts {
    /// Loads the stored salts.
    pub fn load(conn: &Connection) -> Result<Self, StoreError> {
        let mut stmt = conn.prepare("SELECT site_id, day, salt, expires_ms FROM salts")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut map = HashMap::new();
        for row in rows {
            let (site_id, day, bytes, expires_ms) = row?;
            if let (Ok(day), Ok(bytes)) = (day.parse::<Date>(), <[u8; 32]>::try_from(bytes)) {
                map.insert((site_id, day), (Salt::from_bytes(bytes), expires_ms));
            }
        }
        Ok(Self {
            map: RwLock::new(map),
            create: Default::default(),
        })
    }

    pub fn get(&self, site_id: i64, day: Date) -> Option<Salt> {
        self.map
            .read()
            .ok()?
            .get(&(site_id, day))
            .map(|(salt, _)| salt.clone())
    }

    /// The salt of `site` for `day`, created (and persisted) if missing.
    pub async fn get_or_create(
        &self,
        store: &Store,
        site: &Site,
        day: Date,
        session_timeout: SignedDuration,
    ) -> Result<Salt, StoreError> {
        if let Some(salt) = self.get(site.id, day) {
            return Ok(salt);
        }
        let _one_creator = self.create.lock().await;
        if let Some(salt) = self.get(site.id, day) {
            return Ok(salt);
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Thread(std::io::Error::other(e)))?;
        let expires_ms = salt_expiry(day, &site.tz, session_timeout).as_millisecond();
        let (site_id, day_text) = (site.id, day.to_string());
        let stored: Vec<u8> = store
            .maintain(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO salts (site_id, day, salt, expires_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![site_id, day_text, fresh.as_slice(), expires_ms],
                )?;
                conn.query_row(
                    "SELECT salt FROM salts WHERE site_id = ?1 AND day = ?2",
                    params![site_id, day_text],
                    |r| r.get(0),
                )
            })
            .await?;
        let bytes = <[u8; 32]>::try_from(stored).unwrap_or(fresh);
        let salt = Salt::from_bytes(bytes);
        if let Ok(mut map) = self.map.write() {
            map.insert((site.id, day), (salt.clone(), expires_ms));
        }
        Ok(salt)
    }

    /// Creates today's and tomorrow's salts for every site ahead of need, and
    /// deletes every expired salt. Returns how many were deleted (then the
    /// caller empties the WAL: `store::empty_wal`).
    pub async fn rotate(
        &self,
        store: &Store,
        sites: &[std::sync::Arc<Site>],
        now: Timestamp,
        session_timeout: SignedDuration,
    ) -> Result<usize, StoreError> {
        for site in sites {
            let today = salt_day(now, &site.tz);
            self.get_or_create(store, site, today, session_timeout)
                .await?;
            if let Ok(tomorrow) = today.tomorrow() {
                self.get_or_create(store, site, tomorrow, session_timeout)
                    .await?;
            }
        }
        let now_ms = now.as_millisecond();
        let expired = self
            .map
            .read()
            .map(|m| m.values().any(|(_, exp)| *exp <= now_ms))
            .unwrap_or(false);
        let stored_expired: Option<i64> = store
            .maintain(move |conn| {
                conn.query_row(
                    "SELECT 1 FROM salts WHERE expires_ms <= ?1 LIMIT 1",
                    [now_ms],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        if !expired && stored_expired.is_none() {
            return Ok(0);
        }
        let deleted = store
            .maintain(move |conn| {
                conn.execute("DELETE FROM salts WHERE expires_ms <= ?1", [now_ms])
            })
            .await?;
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (_, exp)| *exp > now_ms);
        }
        Ok(deleted)
    }
}
