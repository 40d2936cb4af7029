//! Daily visitor ids and the salt schedule.
//!
//! A visitor id is SHA-256 over a secret random salt, the site, the client IP
//! and the User-Agent, truncated to 64 bits. Nothing else goes in (seed 003,
//! pitfall 1: more signals make a persistent fingerprint). The salt is
//! random, 32 bytes, one per site per *local* day, supplied by the caller and
//! deleted once its day (and the sessions crossing its midnight) are over, so
//! an id cannot be recomputed later and the same person gets a new id every
//! day: ids count **daily unique visitors**, not people (pitfall 6).
//!
//! Days start at the site's local midnight, in its IANA timezone, not at UTC
//! midnight (pitfall 3).

use std::fmt;
use std::net::IpAddr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// Domain separation: ids made for another purpose or version never collide
/// with these.
const DOMAIN: &[u8] = b"tallymark/visitor-id/v1";

/// A secret 32-byte daily salt. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; 32]);

impl Salt {
    /// Wraps bytes from a cryptographic random source (the caller's).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(<secret>)")
    }
}

/// A daily visitor id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId(pub u64);

impl VisitorId {
    /// As SQLite stores integers (the same 64 bits, signed).
    pub const fn as_i64(self) -> i64 {
        self.0 as i64
    }
}

/// The visitor id of `(site, ip, user_agent)` under `salt`.
///
/// Inputs are length-prefixed and domain-separated, so no two different
/// input tuples hash the same bytes.
pub fn visitor_id(salt: &Salt, site: &str, ip: IpAddr, user_agent: &str) -> VisitorId {
    let mut h = Sha256::new();
    field(&mut h, DOMAIN);
    field(&mut h, salt.as_bytes());
    field(&mut h, site.as_bytes());
    match ip {
        IpAddr::V4(v4) => {
            h.update([4u8]);
            field(&mut h, &v4.octets());
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                h.update([4u8]);
                field(&mut h, &v4.octets());
            }
            None => {
                h.update([6u8]);
                field(&mut h, &v6.octets());
            }
        },
    }
    field(&mut h, user_agent.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    VisitorId(u64::from_be_bytes(first))
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The local day `now` falls in, in the site's timezone: the day whose salt
/// identifies visitors now.
pub fn salt_day(now: Timestamp, tz: &TimeZone) -> Date {
    now.to_zoned_datetime(tz.clone()).date()
}

/// When the salt of `day` may be deleted: the end of that local day plus the
/// session timeout, so a session that crosses midnight can still be matched
/// to the visitor's id from before midnight.
pub fn salt_expiry(day: Date, tz: &TimeZone, session_timeout: SignedDuration) -> Timestamp {
    let end = day
        .tomorrow()
        .ok()
        .and_then(|next| next.to_zoned_datetime(tz.clone()).ok())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX);
    end.checked_add(session_timeout).unwrap_or(Timestamp::MAX)
}

/// The salt days in use at `now`: today's, and yesterday's while sessions
/// that crossed midnight may still be live. The collector looks a visitor's
/// live session up under both ids, yesterday's first.
pub fn salt_days_in_use(
    now: Timestamp,
    tz: &TimeZone,
    session_timeout: SignedDuration,
) -> (Date, Option<Date>) {
    let today = salt_day(now, tz);
    let yesterday = today
        .yesterday()
        .ok()
        .filter(|y| now < salt_expiry(*y, tz, session_timeout));
    (today, yesterday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

    fn salt(b: u8) -> Salt {
        Salt::from_bytes([b; 32])
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn known_answer() {
        // Pinned: changing the hash layout changes every visitor count, so it
        // must be a deliberate, versioned change (bump DOMAIN).
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(
            visitor_id(&salt(1), "example.com", ip, CHROME),
            VisitorId(KNOWN_ANSWER)
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
        assert_eq!(
            visitor_id(&salt(1), "example.com", mapped, CHROME),
            VisitorId(KNOWN_ANSWER),
            "an IPv4-mapped IPv6 address is the same client"
        );
    }
    /// Computed independently with Python's hashlib over the documented layout:
    /// each field as (u64 big-endian length, bytes); the IP preceded by a
    /// family byte (4 or 6); the first 8 digest bytes as a big-endian u64.
    const KNOWN_ANSWER: u64 = 17_699_423_529_450_815_347;

    #[test]
    fn salt_debug_hides_the_secret() {
        assert_eq!(format!("{:?}", salt(7)), "Salt(<secret>)");
    }

    #[test]
    fn days_turn_at_the_sites_local_midnight() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        // 23:30 UTC on 14 March is already the 15th in Berlin, still the 14th in LA.
        let t = ts("2026-03-14T23:30:00Z");
        assert_eq!(salt_day(t, &berlin).to_string(), "2026-03-15");
        assert_eq!(salt_day(t, &la).to_string(), "2026-03-14");
        assert_eq!(salt_day(t, &TimeZone::UTC).to_string(), "2026-03-14");
    }

    #[test]
    fn yesterdays_salt_lives_one_session_timeout_past_midnight() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let thirty = SignedDuration::from_mins(30);
        let day: Date = "2026-07-01".parse().unwrap();
        // Local midnight 2 July in summer time is 22:00 UTC on 1 July.
        assert_eq!(salt_expiry(day, &tz, thirty), ts("2026-07-01T22:30:00Z"));
        let (today, yesterday) = salt_days_in_use(ts("2026-07-01T22:10:00Z"), &tz, thirty);
        assert_eq!(today.to_string(), "2026-07-02");
        assert_eq!(
            yesterday.map(|d| d.to_string()).as_deref(),
            Some("2026-07-01")
        );
        let (_, yesterday) = salt_days_in_use(ts("2026-07-01T22:31:00Z"), &tz, thirty);
        assert_eq!(yesterday, None);
    }

    #[test]
    fn dst_days_are_23_and_25_hours_long() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let zero = SignedDuration::ZERO;
        let start =
            |d: &str| salt_expiry(d.parse::<Date>().unwrap().yesterday().unwrap(), &tz, zero);
        let spring = start("2026-03-30").duration_since(start("2026-03-29"));
        let autumn = start("2026-10-26").duration_since(start("2026-10-25"));
        assert_eq!(spring, SignedDuration::from_hours(23));
        assert_eq!(autumn, SignedDuration::from_hours(25));
    }

    proptest! {
        #[test]
        fn changing_any_input_changes_the_id(
            a in any::<[u8; 32]>(), b in any::<[u8; 32]>(),
            site_a in "[a-z.]{1,20}", site_b in "[a-z.]{1,20}",
            ip_a in any::<[u8; 16]>(), ip_b in any::<[u8; 16]>(),
            ua_a in "\\PC{0,40}", ua_b in "\\PC{0,40}",
        ) {
            let ip = |o: [u8; 16]| IpAddr::V6(Ipv6Addr::from(o));
            let canon = |o: [u8; 16]| match Ipv6Addr::from(o).to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => ip(o),
            };
            let base = visitor_id(&Salt(a), &site_a, ip(ip_a), &ua_a);
            prop_assert_eq!(base, visitor_id(&Salt(a), &site_a, ip(ip_a), &ua_a));
            if a != b { prop_assert_ne!(base, visitor_id(&Salt(b), &site_a, ip(ip_a), &ua_a)); }
            if site_a != site_b { prop_assert_ne!(base, visitor_id(&Salt(a), &site_b, ip(ip_a), &ua_a)); }
            if canon(ip_a) != canon(ip_b) {
                prop_assert_ne!(base, visitor_id(&Salt(a), &site_a, ip(ip_b), &ua_a));
            }
            if ua_a != ua_b { prop_assert_ne!(base, visitor_id(&Salt(a), &site_a, ip(ip_a), &ua_b)); }
        }

        #[test]
        fn field_boundaries_cannot_be_shifted(site in "[a-z]{1,10}", ua in "[a-z]{1,10}") {
            // "ab" + "c" must not hash like "a" + "bc".
            let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let moved = format!("{site}{}", &ua[..1]);
            prop_assert_ne!(
                visitor_id(&salt(0), &site, ip, &ua),
                visitor_id(&salt(0), &moved, ip, &ua[1..])
            );
        }
    }
}
