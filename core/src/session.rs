//! Sessions as a pure state machine: (previous session, event, time) →
//! the session the event belongs to, and whether it continued the previous
//! one or started a new one.
//!
//! A session ends after [`SessionConfig::timeout`] of inactivity (30 minutes
//! by default). It tracks entry and exit page, pageview count, duration and
//! bounce. Bounce follows Plausible's definition: a session with at most one
//! pageview and no interactive custom event.
//!
//! Session ids are the caller's (random) choice: core has no randomness.

use serde::{Deserialize, Serialize};

use crate::wire::Kind;

/// Default inactivity after which a session ends.
pub const DEFAULT_TIMEOUT_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Inactivity, in milliseconds, after which the next event starts a new
    /// session.
    pub timeout_ms: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }
}

/// One visit. Times are milliseconds since the Unix epoch, from the
/// collector's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    pub started_ms: i64,
    pub last_ms: i64,
    pub entry_path: String,
    pub exit_path: String,
    pub pageviews: u32,
    /// Custom events, interactive or not.
    pub events: u32,
    /// Custom events that count as interaction (all but non-interactive ones).
    pub interactions: u32,
}

impl Session {
    /// Milliseconds between the first and the last event.
    pub fn duration_ms(&self) -> i64 {
        self.last_ms - self.started_ms
    }

    /// At most one pageview and no interaction.
    pub fn is_bounce(&self) -> bool {
        self.pageviews <= 1 && self.interactions == 0
    }

    /// Whether an event at `now_ms` would still belong to this session.
    pub fn is_live(&self, now_ms: i64, config: &SessionConfig) -> bool {
        now_ms - self.last_ms <= config.timeout_ms
    }
}

/// What the state machine needs to know about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'a> {
    pub kind: Kind,
    /// The normalised page path.
    pub path: &'a str,
    /// For custom events: whether it counts as interaction (see bounce).
    pub interactive: bool,
}

/// How an event related to the previous session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The event continued the live session.
    Continued,
    /// The event started a new session; `ended` is the previous one, if it
    /// existed and had timed out.
    Started { ended: Option<Session> },
}

/// Applies `hit` at `now_ms` to `previous`; `new_id` is used only when a new
/// session starts. Events that arrive out of order (a clock earlier than the
/// session's last event) continue the session without moving time backwards.
pub fn step(
    previous: Option<Session>,
    hit: Hit<'_>,
    now_ms: i64,
    config: &SessionConfig,
    new_id: u64,
) -> (Session, Transition) {
    match previous {
        Some(mut s) if s.is_live(now_ms, config) => {
            s.last_ms = s.last_ms.max(now_ms);
            record(&mut s, hit);
            (s, Transition::Continued)
        }
        ended => {
            let mut s = Session {
                id: new_id,
                started_ms: now_ms,
                last_ms: now_ms,
                entry_path: hit.path.to_string(),
                exit_path: hit.path.to_string(),
                pageviews: 0,
                events: 0,
                interactions: 0,
            };
            record(&mut s, hit);
            (s, Transition::Started { ended })
        }
    }
}

fn record(s: &mut Session, hit: Hit<'_>) {
    match hit.kind {
        Kind::Pageview => {
            s.pageviews = s.pageviews.saturating_add(1);
            if s.pageviews == 1 {
                // A session that began with a custom event enters on its
                // first pageview.
                s.entry_path = hit.path.to_string();
            }
            s.exit_path = hit.path.to_string();
        }
        Kind::Event => {
            s.events = s.events.saturating_add(1);
            if hit.interactive {
                s.interactions = s.interactions.saturating_add(1);
            }
        }
        // Never steps a visit (the collector attaches it to the live one);
        // counted as nothing if it ever did.
        Kind::Engagement => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn pv(path: &str) -> Hit<'_> {
        Hit {
            kind: Kind::Pageview,
            path,
            interactive: false,
        }
    }

    fn ev(interactive: bool) -> Hit<'static> {
        Hit {
            kind: Kind::Event,
            path: "/x",
            interactive,
        }
    }

    #[test]
    fn a_burst_is_one_session_with_entry_exit_and_duration() {
        let cfg = SessionConfig::default();
        let (s, t) = step(None, pv("/"), 0, &cfg, 1);
        assert_eq!(t, Transition::Started { ended: None });
        let (s, t) = step(Some(s), pv("/pricing"), 5 * MIN, &cfg, 2);
        assert_eq!(t, Transition::Continued);
        let (s, _) = step(Some(s), pv("/signup"), 34 * MIN, &cfg, 3);
        assert_eq!(s.id, 1);
        assert_eq!(
            (s.entry_path.as_str(), s.exit_path.as_str()),
            ("/", "/signup")
        );
        assert_eq!(s.pageviews, 3);
        assert_eq!(s.duration_ms(), 34 * MIN);
        assert!(!s.is_bounce());
    }

    #[test]
    fn thirty_minutes_of_inactivity_start_a_new_session() {
        let cfg = SessionConfig::default();
        let (s, _) = step(None, pv("/a"), 0, &cfg, 1);
        let (s, t) = step(Some(s), pv("/b"), 30 * MIN, &cfg, 2);
        assert_eq!(
            (s.id, t),
            (1, Transition::Continued),
            "exactly 30 min is still live"
        );
        let (s2, t) = step(Some(s.clone()), pv("/c"), 60 * MIN + 1, &cfg, 2);
        assert_eq!(s2.id, 2);
        assert_eq!(t, Transition::Started { ended: Some(s) });
        assert_eq!(s2.entry_path, "/c");
        let short = SessionConfig { timeout_ms: MIN };
        let (s, _) = step(None, pv("/a"), 0, &short, 1);
        assert_eq!(step(Some(s), pv("/a"), 2 * MIN, &short, 2).0.id, 2);
    }

    #[test]
    fn bounce_is_one_pageview_and_no_interaction() {
        let cfg = SessionConfig::default();
        let (s, _) = step(None, pv("/"), 0, &cfg, 1);
        assert!(s.is_bounce());
        let (quiet, _) = step(Some(s.clone()), ev(false), MIN, &cfg, 2);
        assert!(
            quiet.is_bounce(),
            "a non-interactive event keeps the bounce"
        );
        let (engaged, _) = step(Some(s), ev(true), MIN, &cfg, 2);
        assert!(!engaged.is_bounce());
        assert_eq!((engaged.events, engaged.interactions), (1, 1));
    }

    #[test]
    fn a_session_starting_with_an_event_enters_on_its_first_pageview() {
        let cfg = SessionConfig::default();
        let (s, _) = step(None, ev(true), 0, &cfg, 1);
        let (s, _) = step(Some(s), pv("/landing"), MIN, &cfg, 2);
        assert_eq!(s.entry_path, "/landing");
        assert_eq!(s.pageviews, 1);
    }

    #[test]
    fn late_events_do_not_move_time_backwards() {
        let cfg = SessionConfig::default();
        let (s, _) = step(None, pv("/"), 10 * MIN, &cfg, 1);
        let (s, t) = step(Some(s), pv("/late"), 9 * MIN, &cfg, 2);
        assert_eq!(t, Transition::Continued);
        assert_eq!(s.last_ms, 10 * MIN);
        assert_eq!(s.duration_ms(), 0);
    }

    proptest! {
        #[test]
        fn sessions_split_exactly_at_gaps_longer_than_the_timeout(
            gaps in proptest::collection::vec(0i64..(2 * DEFAULT_TIMEOUT_MS), 1..200)
        ) {
            let cfg = SessionConfig::default();
            let mut now = 0;
            let (mut s, _) = step(None, pv("/"), now, &cfg, 0);
            let mut sessions = 1u64;
            for gap in &gaps {
                now += gap;
                let (next, t) = step(Some(s), pv("/p"), now, &cfg, sessions);
                if matches!(t, Transition::Started { .. }) { sessions += 1; }
                s = next;
                prop_assert!(s.duration_ms() >= 0);
            }
            let want = 1 + gaps.iter().filter(|g| **g > cfg.timeout_ms).count() as u64;
            prop_assert_eq!(sessions, want);
        }
    }
}
