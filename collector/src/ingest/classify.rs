//! Stage 3, classify: drop what must not be counted — bots, skip paths and
//! referrer spam (core's pure `classify`), then repeats of an `event_id`
//! already seen (a client's retry).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use tallymark_core::bots::BotRules;
use tallymark_core::classify::{self, DropReason, Outcome};
use tallymark_core::validate::Valid;

pub fn classify(rules: &BotRules, user_agent: &str, event: &Valid) -> Outcome<()> {
    classify::classify(rules, user_agent, event)
}

/// Event ids seen recently, per site. The database's unique index is the
/// final word (it also catches repeats across restarts); this check keeps a
/// retried event from touching the session at all. Sharded, so concurrent
/// requests rarely meet on one lock.
pub struct RecentEventIds {
    shards: Vec<Mutex<HashMap<(i64, String), i64>>>,
    hasher: RandomState,
    ttl_ms: i64,
    cap_per_shard: usize,
}

const SHARDS: usize = 32;

impl RecentEventIds {
    pub fn new(ttl_ms: i64, cap: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            ttl_ms,
            cap_per_shard: (cap / SHARDS).max(16),
        }
    }

    fn shard(&self, site_id: i64, id: &str) -> &Mutex<HashMap<(i64, String), i64>> {
        let h = self.hasher.hash_one((site_id, id));
        &self.shards[(h as usize) % SHARDS]
    }

    /// Records `id`; `Drop(Duplicate)` if it was already recorded.
    pub fn check(&self, site_id: i64, id: &str, now_ms: i64) -> Outcome<()> {
        let Ok(mut seen) = self.shard(site_id, id).lock() else {
            return Outcome::Accept(());
        };
        let key = (site_id, id.to_string());
        if seen.get(&key).is_some_and(|t| now_ms - t < self.ttl_ms) {
            return Outcome::Drop(DropReason::Duplicate);
        }
        if seen.len() >= self.cap_per_shard {
            let ttl = self.ttl_ms;
            seen.retain(|_, t| now_ms - *t < ttl);
            if seen.len() >= self.cap_per_shard {
                // Still full of fresh ids: forget them; the database's unique
                // index still refuses real repeats.
                seen.clear();
            }
        }
        seen.insert(key, now_ms);
        Outcome::Accept(())
    }

    /// Forgets `id` (its event was not stored, so a retry must go through).
    pub fn forget(&self, site_id: i64, id: &str) {
        if let Ok(mut seen) = self.shard(site_id, id).lock() {
            seen.remove(&(site_id, id.to_string()));
        }
    }
}
