//! The classify stage: should this (valid) event be counted at all?
//!
//! Returns an explicit [`Outcome`]: `Accept` or `Drop(reason)`. Cheapest
//! checks first: bot rules on the User-Agent and path, then the referrer
//! against the spam list.

use crate::bots::{self, BotReason, BotRules, Classification};
use crate::source;
use crate::validate::Valid;

/// What a pure pipeline stage decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Accept(T),
    Drop(DropReason),
}

/// Why an event was deliberately not stored. The collector counts each and
/// answers `202` with `x-tallymark-dropped: <label>`, so clients never retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A bot rule fired (includes monitoring/skip paths).
    Bot(BotReason),
    /// The referrer is on the referrer-spam list.
    ReferrerSpam,
    /// The event's `event_id` was already stored for this site.
    Duplicate,
    /// An engagement event (time on page, scroll depth) with no live visit
    /// of its visitor to belong to (it never starts one).
    Engagement,
    /// Umami's `identify` call: data about a person, never kept.
    Identify,
}

impl DropReason {
    /// Every reason, for pre-registering metrics.
    pub fn all() -> impl Iterator<Item = DropReason> {
        BotReason::ALL.iter().map(|r| DropReason::Bot(*r)).chain([
            DropReason::ReferrerSpam,
            DropReason::Duplicate,
            DropReason::Engagement,
            DropReason::Identify,
        ])
    }

    /// A stable label: bot reasons as `bot_<reason>`, except the skip path,
    /// which is no bot: `skip_path`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Bot(BotReason::SkipPath) => "skip_path",
            DropReason::Bot(BotReason::EmptyUserAgent) => "bot_empty_user_agent",
            DropReason::Bot(BotReason::ShortUserAgent) => "bot_short_user_agent",
            DropReason::Bot(BotReason::Monitoring) => "bot_monitoring",
            DropReason::Bot(BotReason::Crawler) => "bot_crawler",
            DropReason::Bot(BotReason::Automation) => "bot_automation",
            DropReason::Bot(BotReason::KnownList) => "bot_known_list",
            DropReason::ReferrerSpam => "referrer_spam",
            DropReason::Duplicate => "duplicate",
            DropReason::Engagement => "engagement",
            DropReason::Identify => "identify",
        }
    }
}

/// Bot rules first (no allocation), then the referrer-spam list.
pub fn classify(rules: &BotRules, user_agent: &str, event: &Valid) -> Outcome<()> {
    if let Classification::Bot(reason) = bots::classify(rules, user_agent, &event.path) {
        return Outcome::Drop(DropReason::Bot(reason));
    }
    let spam = event
        .referrer
        .as_deref()
        .and_then(source::referrer_host)
        .is_some_and(|host| source::is_referrer_spam(&host));
    if spam {
        return Outcome::Drop(DropReason::ReferrerSpam);
    }
    Outcome::Accept(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;
    use crate::wire::PayloadV1;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

    fn event(path: &str, referrer: Option<&str>) -> Valid {
        let mut p = PayloadV1::pageview("example.com", format!("https://example.com{path}"));
        p.referrer = referrer.map(str::to_string);
        validate(p).unwrap()
    }

    #[test]
    fn humans_pass_bots_spam_and_skip_paths_drop_with_their_reason() {
        let rules = BotRules::default();
        let ok = event("/pricing", Some("https://www.google.com/"));
        assert_eq!(classify(&rules, FIREFOX, &ok), Outcome::Accept(()));
        let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(
            classify(&rules, bot, &ok),
            Outcome::Drop(DropReason::Bot(BotReason::Crawler))
        );
        assert_eq!(
            classify(&rules, FIREFOX, &event("/robots.txt", None)),
            Outcome::Drop(DropReason::Bot(BotReason::SkipPath))
        );
        let spam = event("/", Some("https://www.semalt.com/page"));
        assert_eq!(
            classify(&rules, FIREFOX, &spam),
            Outcome::Drop(DropReason::ReferrerSpam)
        );
        assert_eq!(
            classify(&rules, "", &spam),
            Outcome::Drop(DropReason::Bot(BotReason::EmptyUserAgent)),
            "cheapest check first"
        );
    }

    #[test]
    fn labels_are_unique() {
        let labels: std::collections::HashSet<_> =
            DropReason::all().map(DropReason::as_str).collect();
        assert_eq!(labels.len(), DropReason::all().count());
    }
}
