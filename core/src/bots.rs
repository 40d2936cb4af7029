//! Bot, crawler and non-page traffic classification.
//!
//! The ingest path calls [`classify`] after validation and before visitor
//! identification. A [`Classification::Bot`] event is meant to be counted
//! under its [`BotReason`] (see [`BotReason::as_str`] for the stable labels)
//! rather than stored.
//!
//! # Order of the checks
//!
//! Checks run cheapest first; the first one that fires names the reason, so a
//! user agent that would match several rules is reported under the earliest:
//!
//! 1. [`BotReason::EmptyUserAgent`]: nothing but whitespace.
//! 2. [`BotReason::ShortUserAgent`]: shorter than [`MIN_USER_AGENT_LEN`]
//!    bytes, or no `/` at all. `curl/8.4.0` is reported here, not as
//!    [`BotReason::Automation`].
//! 3. [`BotReason::SkipPath`]: the page path is one of [`BotRules`]' skip
//!    paths (whatever the user agent).
//! 4. The hand-written categories, in this order: [`BotReason::Monitoring`],
//!    [`BotReason::Crawler`], [`BotReason::Automation`]. Monitoring comes first
//!    because many monitors call themselves "bot" (`UptimeRobot`,
//!    `Pingdom.com_bot`).
//! 5. [`BotReason::KnownList`]: the public pattern list of the npm package
//!    `isbot`, embedded from `core/data/bots/` (see the README there).
//!
//! # Matching
//!
//! The user agent is trimmed, then matched as bytes against one
//! case-insensitive, ASCII-only alternation per category (`\w`, `\d`, `\s`
//! and `\b` are ASCII, as in JavaScript regexes without the `u` flag, which is
//! the dialect of the public list). The four alternations form one
//! [`RegexSet`](regex::bytes::RegexSet), compiled once on first use or by
//! [`warm_up`]: a human user agent costs a single pass of a lazy DFA and no
//! allocation; a bot takes a second pass to learn which categories matched.

use std::fmt;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// A user agent (after trimming) shorter than this many bytes is
/// [`BotReason::ShortUserAgent`]. Every browser's user agent is several
/// times longer; tools such as `Wget/1.21.4` or `Go-http-client/1.1` are not.
pub const MIN_USER_AGENT_LEN: usize = 20;

/// The outcome of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// No rule matched: count the event.
    Human,
    /// Some rule matched: drop the event and count it under the reason.
    Bot(BotReason),
}

impl Classification {
    /// Whether this is [`Classification::Bot`].
    #[must_use]
    pub const fn is_bot(self) -> bool {
        matches!(self, Self::Bot(_))
    }

    /// Whether this is [`Classification::Human`].
    #[must_use]
    pub const fn is_human(self) -> bool {
        matches!(self, Self::Human)
    }

    /// The reason, if this is a bot.
    #[must_use]
    pub const fn reason(self) -> Option<BotReason> {
        match self {
            Self::Human => None,
            Self::Bot(reason) => Some(reason),
        }
    }
}

/// Why an event was classified as a bot: the first check that fired, in the
/// order of [`BotReason::ALL`].
///
/// The labels of [`BotReason::as_str`] are stable: they are used as
/// Prometheus label values and HTTP header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotReason {
    /// The user agent is missing, empty or only whitespace. Every browser
    /// sends one.
    EmptyUserAgent,
    /// The user agent is implausibly short: fewer than
    /// [`MIN_USER_AGENT_LEN`] bytes after trimming, or it has no `/` at all
    /// (every browser's user agent has a `product/version` token such as
    /// `Mozilla/5.0`). Catches most hand-rolled scripts and short tool names
    /// before any regex runs.
    ShortUserAgent,
    /// The page path is a monitoring or non-page path configured in
    /// [`BotRules`] (`/health`, `/robots.txt`, …), whatever the user agent.
    SkipPath,
    /// Uptime, health-check and synthetic or performance monitoring:
    /// UptimeRobot, Pingdom, StatusCake, New Relic, Datadog, Site24x7,
    /// load-balancer and Kubernetes probes, Lighthouse/PageSpeed, WebPageTest…
    Monitoring,
    /// Search-engine, social-preview, SEO and AI crawlers: any name ending
    /// in "bot" (Googlebot, Bingbot, GPTBot… but not the "Cubot" phone
    /// brand), "crawl", "spider", "slurp", facebookexternalhit, and named
    /// fetchers that say neither.
    Crawler,
    /// Scripted HTTP clients and browser automation: curl, Wget,
    /// python-requests, Go-http-client, okhttp, HeadlessChrome, PhantomJS,
    /// Puppeteer, Playwright, Selenium…
    Automation,
    /// Matched only by the public pattern list (isbot), none of the
    /// hand-written categories.
    KnownList,
}

impl BotReason {
    /// Every reason, in the order the checks run.
    pub const ALL: &'static [BotReason] = &[
        Self::EmptyUserAgent,
        Self::ShortUserAgent,
        Self::SkipPath,
        Self::Monitoring,
        Self::Crawler,
        Self::Automation,
        Self::KnownList,
    ];

    /// The stable snake_case label, for metrics labels and HTTP headers.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EmptyUserAgent => "empty_user_agent",
            Self::ShortUserAgent => "short_user_agent",
            Self::SkipPath => "skip_path",
            Self::Monitoring => "monitoring",
            Self::Crawler => "crawler",
            Self::Automation => "automation",
            Self::KnownList => "known_list",
        }
    }
}

impl fmt::Display for BotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Configuration of [`classify`]: the skip paths.
///
/// A page path is skipped when, ignoring ASCII case and anything from the
/// first `?` or `#`, it equals a skip path or starts with one followed by
/// `/`: with `/health`, the paths `/health`, `/HEALTH/`, `/health/db` and
/// `/health?full=1` are skipped, `/healthy` is not.
///
/// Skip paths are normalised when added: surrounding whitespace, any query
/// or fragment and trailing `/` are removed, a leading `/` is added if
/// missing, and ASCII letters are lowercased. An entry that normalises to
/// nothing (`""`, `"/"`) is ignored, so the site root can never be skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRules {
    /// Normalised, deduplicated, in insertion order.
    skip_paths: Vec<String>,
}

impl BotRules {
    /// The skip paths of [`BotRules::default`]: health checks and probes,
    /// status pages, and files that are fetched but never viewed as pages.
    pub const DEFAULT_SKIP_PATHS: &'static [&'static str] = &[
        "/healthcheck",
        "/health",
        "/healthz",
        "/livez",
        "/readyz",
        "/status",
        "/robots.txt",
        "/favicon.ico",
        "/.well-known",
    ];

    /// Rules whose skip paths are exactly `paths`: the defaults are
    /// **replaced**, not extended (use [`BotRules::extend_skip_paths`] on
    /// [`BotRules::default`] for that). An empty iterator turns skip paths
    /// off.
    #[must_use]
    pub fn with_skip_paths<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            skip_paths: Vec::new(),
        }
        .extend_skip_paths(paths)
    }

    /// These rules plus `paths` (normalised, duplicates ignored).
    #[must_use]
    pub fn extend_skip_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for path in paths {
            if let Some(normalised) = normalise_skip_path(path.as_ref()) {
                if !self.skip_paths.contains(&normalised) {
                    self.skip_paths.push(normalised);
                }
            }
        }
        self
    }

    /// The skip paths, normalised (see [`BotRules`]).
    #[must_use]
    pub fn skip_paths(&self) -> &[String] {
        &self.skip_paths
    }

    /// Whether `path` is skipped: equal to a skip path, or below one, ignoring
    /// ASCII case and any query string or fragment.
    #[must_use]
    pub fn is_skip_path(&self, path: &str) -> bool {
        let path = strip_query(path).as_bytes();
        self.skip_paths.iter().any(|skip| {
            let skip = skip.as_bytes();
            path.get(..skip.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(skip))
                && matches!(path.get(skip.len()), None | Some(b'/'))
        })
    }
}

impl Default for BotRules {
    /// Rules with [`BotRules::DEFAULT_SKIP_PATHS`].
    fn default() -> Self {
        Self::with_skip_paths(Self::DEFAULT_SKIP_PATHS)
    }
}

/// `path` up to its first `?` or `#`.
fn strip_query(path: &str) -> &str {
    path.find(['?', '#']).map_or(path, |end| &path[..end])
}

fn normalise_skip_path(path: &str) -> Option<String> {
    let path = strip_query(path.trim()).trim_end_matches('/');
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return None;
    }
    Some(format!("/{}", path.to_ascii_lowercase()))
}

/// Classifies one event by its user agent and page path (a query string or
/// fragment on the path is ignored). See the [module docs](self) for the
/// order of the checks.
#[must_use]
pub fn classify(rules: &BotRules, user_agent: &str, path: &str) -> Classification {
    let user_agent = user_agent.trim();
    if user_agent.is_empty() {
        return Classification::Bot(BotReason::EmptyUserAgent);
    }
    if user_agent.len() < MIN_USER_AGENT_LEN || !user_agent.contains('/') {
        return Classification::Bot(BotReason::ShortUserAgent);
    }
    if rules.is_skip_path(path) {
        return Classification::Bot(BotReason::SkipPath);
    }
    MATCHERS
        .as_ref()
        .and_then(|matchers| matchers.first_match(user_agent.as_bytes()))
        .map_or(Classification::Human, Classification::Bot)
}

/// Compiles every pattern now rather than on the first [`classify`] that
/// needs them (a few milliseconds). Call it at start-up so the first request
/// doesn't pay for it.
pub fn warm_up() {
    LazyLock::force(&MATCHERS);
}

/// Uptime, health-check and synthetic/performance monitors.
const MONITORING_PATTERNS: &[&str] = &[
    "uptime", // UptimeRobot, Uptime-Kuma, Uptime.com, BetterUptime, Uptimebot
    "pingdom",
    "statuscake",
    "newrelic",
    "new relic",
    "datadog",
    "site24x7",
    "better ?stack",
    "freshping",
    "hetrixtools",
    "nodeping",
    r"updown\.io",
    "oh ?dear",
    "checkly",
    "catchpoint",
    "ruxitsynthetic",
    "dynatrace",
    "appdynamics",
    "sematext",
    "monitis",
    "alertsite",
    "host-tracker",
    "panopta",
    "zabbix",
    "nagios",
    "icinga",
    "check_http",
    "monitoring-plugins",
    "prometheus",
    "blackbox[ -]exporter",
    "kube-probe",
    "googlehc/",
    "stackdriver",
    "route ?53-health",
    "health-?check", // ELB-HealthChecker, Cloudflare-Healthchecks, Consul Health Check
    "gtmetrix",
    "webpagetest",
    r"\bptst/", // WebPageTest agents
    "speedcurve",
    "calibreapp",
    "lighthouse",
    "pagespeed",
    "synthetic", // Datadog Synthetics, Sematext Synthetics, …
    "monitor",
];

/// Search-engine, social-preview, SEO and AI crawlers.
const CRAWLER_PATTERNS: &[&str] = &[
    // A word ending in "bot" or "bots" (Googlebot, bingbot, AhrefsBot, GPTBot,
    // Slackbot-LinkExpanding, +http://…/robot/), except after "cu": "CUBOT"
    // is a phone brand ("Android 10; CUBOT_X30").
    "(?:^|[^u]|(?:^|[^c])u)bots?(?:[^a-z]|$)",
    "crawl",
    "spider",
    "slurp",
    "scrapy",
    "archiver",
    "heritrix",
    "nutch",
    "facebookexternalhit",
    "facebookcatalog",
    "meta-external(?:agent|fetcher)",
    "mediapartners-google",
    "apis-google",
    "feedfetcher-google",
    "duplexweb-google",
    "google-inspectiontool",
    "googleother",
    "google-read-aloud",
    "google-site-verification",
    "google-pagerenderer",
    "google-safety",
    "google-extended",
    "google favicon",
    "google web preview",
    "bingpreview",
    "chatgpt-user",
    "claude-(?:web|user)",
    "anthropic-ai",
    "perplexity-user",
    "cohere-ai",
    "mistralai-user",
    "omgili",
    "img2dataset",
    "ahrefs",
    "semrush",
    "dataforseo",
    "serpstat",
    "screaming frog",
    "sitebulb",
    "barkrowler",
    "megaindex",
    "qwantify",
    "mojeek",
    r"\byeti/", // Naver
    "skypeuripreview",
    "embedly",
    "iframely",
    "quora link preview",
    "vkshare",
    "outbrain",
    "slack-imgproxy",
    "flipboardproxy",
];

/// Scripted HTTP clients, libraries and browser automation.
const AUTOMATION_PATTERNS: &[&str] = &[
    "headless", // HeadlessChrome
    "phantomjs",
    // DOM implementations for Node that run a page's scripts; their default
    // UAs (`… jsdom/22.1.0`, `… HappyDOM/0.0.0`) look like a browser's.
    r"\bjsdom/",
    "happy-?dom/",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "slimerjs",
    "htmlunit",
    "nightmare",
    "cypress",
    r"zombie\.js",
    r"\bcurl/",
    "libcurl",
    "wget",
    "python",
    "aiohttp",
    "httpx",
    "urllib",
    "httplib2",
    "mechanize",
    "go-http-client",
    "go-resty",
    "okhttp",
    "apache-httpclient",
    r"\bjava/",
    "libwww-perl",
    "lwp::",
    r"\bphp/",
    "guzzlehttp",
    r"\bruby/",
    "faraday",
    "rest-client",
    "httparty",
    "typhoeus",
    r"\baxios/",
    "node-fetch",
    "undici",
    r"^got \(",
    "superagent",
    r"node\.js",
    r"\bdeno/",
    r"\bbun/",
    "reqwest",
    r"\bhyper/",
    "powershell",
    "winhttp",
    "postmanruntime",
    "insomnia",
    "httpie",
    "restsharp",
    "dart:io",
    "aria2",
    "zgrab",
    "masscan",
    "nmap",
    "nikto",
    "sqlmap",
    "nuclei",
    "wpscan",
];

/// The public list: npm `isbot`, one JavaScript regex source per line,
/// verbatim (see `core/data/bots/README.md`).
const ISBOT_PATTERNS: &str = include_str!("../data/bots/isbot-patterns.txt");

/// Upstream patterns the `regex` crate can't compile, with equivalent
/// rewrites (same set of matched user agents). Look-around is expanded into
/// explicit alternatives; a rewrite may consume a character or two around the
/// match, which `is_match` doesn't care about.
const ISBOT_REWRITES: &[(&str, &str)] = &[
    (
        r"(?:^|[^g])news(?!sapphire)",
        "(?:^|[^g])news(?:$|[^s]|s(?:$|[^a]|a(?:$|[^p]|p(?:$|[^p]|p(?:$|[^h]|h(?:$|[^i]|i(?:$|[^r]|r(?:$|[^e]))))))))",
    ),
    (
        r"(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))",
        concat!(
            // not preceded by " channel/" or "google/"
            "(?:^|[^/]|(?:^|[^le])/",
            "|(?:^|[^e])l/|(?:^|[^n])el/|(?:^|[^n])nel/|(?:^|[^a])nnel/",
            "|(?:^|[^h])annel/|(?:^|[^c])hannel/|(?:^|[^ ])channel/",
            "|(?:^|[^l])e/|(?:^|[^g])le/|(?:^|[^o])gle/|(?:^|[^o])ogle/|(?:^|[^g])oogle/)",
            "google",
            // not followed by "wv", "app", "/google" or " pixel"
            "(?:$|[^wa/ ]|w(?:$|[^v])|a(?:$|[^p]|p(?:$|[^p]))",
            "|/(?:$|[^g]|g(?:$|[^o]|o(?:$|[^o]|o(?:$|[^g]|g(?:$|[^l]|l(?:$|[^e]))))))",
            "| (?:$|[^p]|p(?:$|[^i]|i(?:$|[^x]|x(?:$|[^e]|e(?:$|[^l]))))))",
        ),
    ),
    (
        r"(?<! cu)bots?(?:\b|_)",
        r"(?:^|[^u]|(?:^|[^c])u|(?:^|[^ ])cu)bots?(?:\b|_)",
    ),
    (r"(?<!cam)scan", "(?:^|[^m]|(?:^|[^a])m|(?:^|[^c])am)scan"),
    (r"(?<!lib)http", "(?:^|[^b]|(?:^|[^i])b|(?:^|[^l])ib)http"),
    (r"java(?!;)", "java(?:$|[^;])"),
    // JavaScript reads `\d-.` in a class as `\d`, `-`, `.`; `regex` rejects it.
    (
        r"^mozilla/\d\.\d\s\((?:compatible;)?(?:\s?[\w\d-.]+[\s/]\d+\.\d+)?\)$",
        r"^mozilla/\d\.\d\s\((?:compatible;)?(?:\s?[\w\d.\-]+[\s/]\d+\.\d+)?\)$",
    ),
];

/// Upstream patterns deliberately left out (none at present); listed in the
/// README with the reason.
const ISBOT_DROPPED: &[&str] = &[];

/// The public list's patterns in `regex` syntax: upstream lines, rewritten
/// where [`ISBOT_REWRITES`] says, without [`ISBOT_DROPPED`].
fn public_list_sources() -> impl Iterator<Item = &'static str> {
    ISBOT_PATTERNS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !ISBOT_DROPPED.contains(line))
        .map(|line| {
            ISBOT_REWRITES
                .iter()
                .find(|(upstream, _)| *upstream == line)
                .map_or(line, |(_, rewrite)| *rewrite)
        })
}

/// `sources` as one alternation.
fn alternation<'a>(sources: impl IntoIterator<Item = &'a str>) -> String {
    let mut combined = String::new();
    for source in sources {
        if !combined.is_empty() {
            combined.push('|');
        }
        combined.push_str("(?:");
        combined.push_str(source);
        combined.push(')');
    }
    combined
}

/// One case-insensitive, ASCII-only bytes regex matching any of `sources`.
fn compile<'a>(sources: impl IntoIterator<Item = &'a str>) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&alternation(sources))
        .case_insensitive(true)
        .unicode(false)
        .build()
}

/// The alternation of `sources` if it compiles; otherwise (a bad pattern
/// slipped into the data) the alternation of those that compile on their
/// own, rather than giving up the whole category. The tests make sure the
/// fallback is never needed.
fn lenient_alternation(sources: &[&str]) -> Option<String> {
    if compile(sources.iter().copied()).is_ok() {
        return Some(alternation(sources.iter().copied()));
    }
    let good: Vec<&str> = sources
        .iter()
        .copied()
        .filter(|source| compile([*source]).is_ok())
        .collect();
    (!good.is_empty()).then(|| alternation(good))
}

/// The hand-written categories and the public list, as one set.
struct Matchers {
    /// One alternation per category, in check order.
    set: RegexSet,
    /// The reason of each of `set`'s patterns.
    reasons: Vec<BotReason>,
}

impl Matchers {
    fn compile() -> Option<Self> {
        let public_list: Vec<&str> = public_list_sources().collect();
        let categories = [
            (MONITORING_PATTERNS, BotReason::Monitoring),
            (CRAWLER_PATTERNS, BotReason::Crawler),
            (AUTOMATION_PATTERNS, BotReason::Automation),
            (public_list.as_slice(), BotReason::KnownList),
        ];
        let mut sources = Vec::new();
        let mut reasons = Vec::new();
        for (patterns, reason) in categories {
            if let Some(source) = lenient_alternation(patterns) {
                sources.push(source);
                reasons.push(reason);
            }
        }
        let set = RegexSetBuilder::new(sources)
            .case_insensitive(true)
            .unicode(false)
            .build()
            .ok()?;
        Some(Self { set, reasons })
    }

    /// The reason of the first category that matches `user_agent`.
    fn first_match(&self, user_agent: &[u8]) -> Option<BotReason> {
        if !self.set.is_match(user_agent) {
            return None;
        }
        let first = self.set.matches(user_agent).iter().next()?;
        self.reasons.get(first).copied()
    }
}

static MATCHERS: LazyLock<Option<Matchers>> = LazyLock::new(Matchers::compile);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn check(ua: &str) -> Classification {
        classify(&BotRules::default(), ua, "/")
    }

    /// Real bot user agents and the reason each must get.
    const BOTS: &[(&str, BotReason)] = &[
        ("", BotReason::EmptyUserAgent),
        ("   \t ", BotReason::EmptyUserAgent),
        ("curl/8.4.0", BotReason::ShortUserAgent),
        ("Wget/1.21.4", BotReason::ShortUserAgent),
        ("Go-http-client/1.1", BotReason::ShortUserAgent),
        ("Mozilla/5.0", BotReason::ShortUserAgent),
        ("Googlebot", BotReason::ShortUserAgent),
        (
            "Links (2.1pre23; Linux 3.5.0 i686; 237x63)",
            BotReason::ShortUserAgent,
        ),
        (GOOGLEBOT, BotReason::Crawler),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
            BotReason::Crawler,
        ),
        (
            "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            BotReason::Crawler,
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            BotReason::Crawler,
        ),
        ("Twitterbot/1.0", BotReason::ShortUserAgent),
        (
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            BotReason::Crawler,
        ),
        (
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            BotReason::Monitoring,
        ),
        (
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            BotReason::Monitoring,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36 StatusCake",
            BotReason::Monitoring,
        ),
        ("NewRelicPinger/1.0 (2104827)", BotReason::Monitoring),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 DatadogSynthetics",
            BotReason::Monitoring,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Site24x7",
            BotReason::Monitoring,
        ),
        ("ELB-HealthChecker/2.0", BotReason::Monitoring),
        ("kube-probe/1.28", BotReason::ShortUserAgent),
        (
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            BotReason::Monitoring,
        ),
        ("Uptime-Kuma/1.23.11", BotReason::ShortUserAgent),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36",
            BotReason::Automation,
        ),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
            BotReason::Automation,
        ),
        (
            "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/22.1.0",
            BotReason::Automation,
        ),
        (
            "Mozilla/5.0 (X11; Linux x64) AppleWebKit/537.36 (KHTML, like Gecko) HappyDOM/0.0.0",
            BotReason::Automation,
        ),
        // Crawlers and tools that render pages, so run the beacon.
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/141.0.7390.122 Safari/537.36",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.7390.122 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GoogleOther) Chrome/141.0.7390.122 Safari/537.36",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; +http://www.google.com/mobile/adsbot.html)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Linux; Android 8.0; Pixel 2 Build/OPD3.170816.012; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.7390.122 Mobile Safari/537.36",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) Version/7.0 Mobile/11A465 Safari/9537.53 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1 (compatible; Baiduspider-render/2.0; +http://www.baidu.com/search/spider.html)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Chrome-Lighthouse",
            BotReason::Monitoring,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/142.0.0.0 Safari/537.36",
            BotReason::Automation,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36",
            BotReason::Automation,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36 Prerender (+https://github.com/prerender/prerender)",
            BotReason::KnownList,
        ),
        // Link previews: they fetch the HTML but run no script, so a beacon
        // with their UA is not a person either.
        ("TelegramBot (like TwitterBot)", BotReason::ShortUserAgent),
        ("python-requests/2.31.0", BotReason::Automation),
        ("Python/3.11 aiohttp/3.9.1", BotReason::Automation),
        (
            "Apache-HttpClient/4.5.14 (Java/17.0.9)",
            BotReason::Automation,
        ),
        (
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            BotReason::Automation,
        ),
        ("PostmanRuntime/7.36.0", BotReason::Automation),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) WindowsPowerShell/5.1.19041.3570",
            BotReason::Automation,
        ),
        ("Scrapy/2.11.0 (+https://scrapy.org)", BotReason::Crawler),
        (
            "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (compatible; Qwantify/Bleriot/1.1; +https://help.qwant.com/bot)",
            BotReason::Crawler,
        ),
        (
            "Mozilla/5.0 (Windows NT 6.1; rv:6.0) Gecko/20110814 Firefox/6.0 Google favicon",
            BotReason::Crawler,
        ),
        (
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 16 subscribers; like FeedFetcher-Google)",
            BotReason::Crawler,
        ),
        // Only the public list knows these.
        ("WhatsApp/2.23.20.0 A", BotReason::KnownList),
        ("Xenu Link Sleuth/1.3.8", BotReason::KnownList),
        (
            "Mozilla/5.0 (compatible; Dataprovider.com)",
            BotReason::KnownList,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 SiteAuditor",
            BotReason::KnownList,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0 newspaper/0.9",
            BotReason::KnownList,
        ),
    ];

    /// Real browser user agents: all must be [`Classification::Human`].
    const HUMANS: &[&str] = &[
        // Chrome: Windows, macOS, Linux, Android, iOS.
        CHROME,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        // Edge.
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
        // Firefox: desktop, Android, iOS.
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        // Safari: macOS, iPhone, iPad.
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
        // Samsung Internet, Opera, Opera Mini.
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
        // In-app WebViews: Facebook, Messenger, Instagram, Android WebView.
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.36.106;FBBV/620129488;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/622263870]",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/127.0.6533.103 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/477.0.0.49.74;]",
        "[FBAN/FB4A;FBAV/567.1.0.52.74;FBBV/1003893689;FBDM/{density=3.0,width=1080,height=2340};FBLC/nl_NL;FBRV/1012267334;FBCR/NL KPN;FBMF/samsung;FBBD/samsung;FBPN/com.facebook.katana;FBDV/SM-S921B;FBSV/16;FBOP/1;FBCA/arm64-v8a:;]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 621367473)",
        "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Instagram 312.1.0.34.111 Android (33/13; 480dpi; 1080x2115; samsung; SM-S918B; dm3q; qcom; en_GB; 548323757)",
        "Mozilla/5.0 (Linux; Android 12; M2101K6G Build/SKQ1.210908.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36",
        // Google app on iOS, Android Google app WebView.
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/339.0.686111475 Mobile/15E148 Safari/604.1",
        // Cubot phones: "bot" inside a device name.
        "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 6.0; CUBOT DINOSAUR Build/MRA58K; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/44.0.2403.119 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 11; KINGKONG 5 Pro; CUBOT) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
        // Yandex Browser, Vivaldi-like Chromium, Brave, DuckDuckGo.
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.6.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 DuckDuckGo/5",
    ];

    #[test]
    fn bots_get_their_reason() {
        for (ua, reason) in BOTS {
            assert_eq!(check(ua), Classification::Bot(*reason), "{ua:?}");
        }
        assert!(BOTS.len() >= 25);
    }

    #[test]
    fn browsers_are_human() {
        for ua in HUMANS {
            assert_eq!(check(ua), Classification::Human, "{ua:?}");
        }
        assert!(HUMANS.len() >= 15);
    }

    /// Every UA of the User-Agent golden files is a person's browser (see
    /// `core/tests/fixtures/useragent/README.md`).
    #[test]
    fn useragent_golden_files_are_human() {
        let golden = include_str!("../tests/fixtures/useragent/current.tsv");
        let mut count = 0;
        for line in golden
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let ua = line.split('\t').next().unwrap_or_default();
            count += 1;
            assert_eq!(check(ua), Classification::Human, "{ua:?}");
        }
        assert!(count >= 50, "{count}");
    }

    /// isbot's own test corpus (`core/tests/fixtures/bots/`): its browsers
    /// stay human unless too short to be real, its crawlers are all bots.
    #[test]
    fn isbot_fixtures() {
        // isbot files these under browsers; for analytics they aren't people.
        let flagged_on_purpose = [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/117.0.0.0 Safari/537.36 GTmetrix",
            "Mozilla/5.0 (compatible; Yahoo! Slurp)",
        ];
        let browsers = include_str!("../tests/fixtures/bots/isbot-browsers.txt");
        let mut count = 0;
        for ua in browsers.lines().filter(|ua| !ua.is_empty()) {
            count += 1;
            let class = check(ua);
            if flagged_on_purpose.contains(&ua) {
                assert!(class.is_bot(), "{ua:?}");
            } else {
                assert!(
                    matches!(
                        class,
                        Classification::Human | Classification::Bot(BotReason::ShortUserAgent)
                    ),
                    "{ua:?} is {class:?}"
                );
            }
        }
        assert!(count > 500, "{count}");

        let crawlers = include_str!("../tests/fixtures/bots/isbot-crawlers.txt");
        let mut count = 0;
        for ua in crawlers.lines().filter(|ua| !ua.is_empty()) {
            count += 1;
            assert!(check(ua).is_bot(), "{ua:?}");
        }
        assert!(count > 500, "{count}");
    }

    #[test]
    fn cubot_is_not_a_crawler_but_a_cubot_crawler_name_is() {
        let cubot = "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
        assert_eq!(check(cubot), Classification::Human);
        let bot = "Mozilla/5.0 (compatible; ExampleBot/1.0; +https://example.com/bot)";
        assert_eq!(check(bot), Classification::Bot(BotReason::Crawler));
        // Other words containing "bot" are not crawlers by themselves.
        let robotic = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Bottle/2";
        assert_eq!(check(robotic), Classification::Human);
    }

    #[test]
    fn empty_and_short_user_agents() {
        assert_eq!(check(""), Classification::Bot(BotReason::EmptyUserAgent));
        assert_eq!(
            check("\r\n "),
            Classification::Bot(BotReason::EmptyUserAgent)
        );
        // 19 bytes with a slash: short. 20 bytes: long enough.
        assert_eq!(
            check("Abcdefghijklmnopq/1"),
            Classification::Bot(BotReason::ShortUserAgent)
        );
        assert_ne!(
            check("Abcdefghijklmnopqr/1"),
            Classification::Bot(BotReason::ShortUserAgent)
        );
        // Long but no slash at all.
        assert_eq!(
            check("Some Long Agent Without Any Product Version"),
            Classification::Bot(BotReason::ShortUserAgent)
        );
        // Surrounding whitespace doesn't count.
        assert_eq!(
            check("   curl/8.4.0                   "),
            Classification::Bot(BotReason::ShortUserAgent)
        );
    }

    #[test]
    fn skip_paths() {
        let rules = BotRules::default();
        let chrome = CHROME;
        let skipped = [
            "/healthcheck",
            "/health",
            "/HEALTH",
            "/health/",
            "/health/db",
            "/health?verbose=1",
            "/health#x",
            "/status",
            "/Status/page",
            "/robots.txt",
            "/favicon.ico",
            "/.well-known/security.txt",
            "/healthz",
        ];
        for path in skipped {
            assert!(rules.is_skip_path(path), "{path}");
            assert_eq!(
                classify(&rules, chrome, path),
                Classification::Bot(BotReason::SkipPath),
                "{path}"
            );
        }
        let kept = [
            "/",
            "",
            "/healthy",
            "/statuses",
            "/blog/health",
            "/robots.txt2",
            "/?/health",
            "health",
            "/hélth",
        ];
        for path in kept {
            assert!(!rules.is_skip_path(path), "{path}");
            assert_eq!(
                classify(&rules, chrome, path),
                Classification::Human,
                "{path}"
            );
        }
    }

    #[test]
    fn skip_path_comes_after_short_and_before_categories() {
        let rules = BotRules::default();
        assert_eq!(
            classify(&rules, "", "/health"),
            Classification::Bot(BotReason::EmptyUserAgent)
        );
        assert_eq!(
            classify(&rules, "curl/8.4.0", "/health"),
            Classification::Bot(BotReason::ShortUserAgent)
        );
        assert_eq!(
            classify(&rules, GOOGLEBOT, "/health"),
            Classification::Bot(BotReason::SkipPath)
        );
    }

    #[test]
    fn configuring_skip_paths() {
        let replaced =
            BotRules::with_skip_paths(["admin/", " /Preview?x=1 ", "/", "", "//admin//"]);
        assert_eq!(replaced.skip_paths(), ["/admin", "/preview"]);
        assert!(replaced.is_skip_path("/Admin/users"));
        assert!(replaced.is_skip_path("/preview"));
        assert!(!replaced.is_skip_path("/health"));
        assert!(!replaced.is_skip_path("/"));

        let none = BotRules::with_skip_paths(Vec::<String>::new());
        assert!(none.skip_paths().is_empty());
        assert_eq!(classify(&none, CHROME, "/health"), Classification::Human);

        let extended = BotRules::default().extend_skip_paths(["/internal", "/HEALTH"]);
        assert!(extended.is_skip_path("/internal/x"));
        assert!(extended.is_skip_path("/health"));
        assert_eq!(
            extended.skip_paths().len(),
            BotRules::DEFAULT_SKIP_PATHS.len() + 1
        );
        assert_eq!(
            BotRules::default().skip_paths().len(),
            BotRules::DEFAULT_SKIP_PATHS.len()
        );
    }

    #[test]
    fn labels_are_stable_and_distinct() {
        let labels: Vec<&str> = BotReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "empty_user_agent",
                "short_user_agent",
                "skip_path",
                "monitoring",
                "crawler",
                "automation",
                "known_list"
            ]
        );
        for reason in BotReason::ALL {
            assert_eq!(reason.to_string(), reason.as_str());
            assert!(
                reason
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
        let c = Classification::Bot(BotReason::Crawler);
        assert!(c.is_bot() && !c.is_human());
        assert_eq!(c.reason(), Some(BotReason::Crawler));
        assert_eq!(Classification::Human.reason(), None);
    }

    #[test]
    fn every_pattern_compiles_on_its_own_and_together() {
        for set in [MONITORING_PATTERNS, CRAWLER_PATTERNS, AUTOMATION_PATTERNS] {
            for source in set {
                assert!(compile([*source]).is_ok(), "{source}");
            }
            assert!(compile(set.iter().copied()).is_ok());
        }
        let mut count = 0;
        for source in public_list_sources() {
            count += 1;
            assert!(compile([source]).is_ok(), "isbot pattern {source:?}");
        }
        assert!(count > 150, "isbot list looks truncated: {count}");
        assert!(compile(public_list_sources()).is_ok());
        let reasons = MATCHERS.as_ref().map(|m| m.reasons.as_slice());
        assert_eq!(
            reasons,
            Some(&BotReason::ALL[3..]),
            "every category compiled"
        );
    }

    #[test]
    fn rewrites_and_drops_refer_to_upstream_lines() {
        let upstream: Vec<&str> = ISBOT_PATTERNS.lines().map(str::trim).collect();
        for (from, _) in ISBOT_REWRITES {
            assert!(upstream.contains(from), "stale rewrite {from:?}");
        }
        for dropped in ISBOT_DROPPED {
            assert!(upstream.contains(dropped), "stale drop {dropped:?}");
        }
    }

    /// Each rewrite against the upstream look-around semantics, on inputs
    /// chosen around the look-around (expected values from JavaScript).
    #[test]
    fn rewrites_keep_upstream_meaning() {
        let rewrite = |upstream: &str| {
            ISBOT_REWRITES
                .iter()
                .find(|(from, _)| *from == upstream)
                .and_then(|(_, source)| compile([*source]).ok())
        };
        let cases: &[(&str, &[(&str, bool)])] = &[
            (
                r"(?<! cu)bots?(?:\b|_)",
                &[
                    ("bot", true),
                    ("a bot", true),
                    ("Googlebot/2.1", true),
                    ("cubot", true),
                    ("Cubot_x", true),
                    (" cubot", false),
                    (" CUBOT_X30", false),
                    ("x cubots ubot", true),
                    ("bottle", false),
                    ("ro bot_", true),
                ],
            ),
            (
                r"(?<!cam)scan",
                &[
                    ("scan", true),
                    ("camscanner", false),
                    ("CamScanner", false),
                    ("amscan", true),
                    ("camscan scan", true),
                ],
            ),
            (
                r"(?<!lib)http",
                &[
                    ("http", true),
                    ("libhttp", false),
                    ("LibHTTP", false),
                    ("ibhttp", true),
                    ("libhttp http", true),
                ],
            ),
            (
                r"java(?!;)",
                &[
                    ("java", true),
                    ("java;", false),
                    ("Java/1.8", true),
                    ("java;java", true),
                ],
            ),
            (
                r"(?:^|[^g])news(?!sapphire)",
                &[
                    ("news", true),
                    ("gnews", false),
                    ("newssapphire", false),
                    ("newssapphir", true),
                    (" NewsSapphire", false),
                    (" news sapphire", true),
                    ("newsapphire", true),
                ],
            ),
            (
                r"(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))",
                &[
                    ("google", true),
                    ("Google/", true),
                    ("googlewv", false),
                    ("googleapp", false),
                    ("google/google", false),
                    ("google pixel", false),
                    ("google pixe", true),
                    ("googleap", true),
                    (" channel/google", false),
                    ("channel/google", true),
                    ("x google/googlex", false),
                    ("oogle/google", true),
                    ("GSA/1 Google", true),
                ],
            ),
        ];
        for (upstream, inputs) in cases {
            let regex = rewrite(upstream);
            assert!(regex.is_some(), "no rewrite for {upstream:?}");
            for (input, expected) in *inputs {
                let matched = regex.as_ref().is_some_and(|r| r.is_match(input.as_bytes()));
                assert_eq!(matched, *expected, "{upstream:?} on {input:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn classify_is_total_and_deterministic(ua in any::<String>(), path in any::<String>()) {
            let rules = BotRules::default();
            let first = classify(&rules, &ua, &path);
            prop_assert_eq!(first, classify(&rules, &ua, &path));
            if let Classification::Bot(reason) = first {
                prop_assert!(BotReason::ALL.contains(&reason));
            }
        }

        #[test]
        fn user_agent_like_strings(
            ua in "[ -~]{0,40}(Mozilla/5\\.0 \\([ -~]{0,60}\\) [ -~]{0,80})?",
            path in "/[a-zA-Z./?#_-]{0,30}",
        ) {
            let rules = BotRules::default();
            let first = classify(&rules, &ua, &path);
            prop_assert_eq!(first, classify(&rules, &ua, &path));
            // A skip path wins over everything but the user-agent checks.
            if rules.is_skip_path(&path) {
                let trimmed = ua.trim();
                prop_assert!(
                    first == Classification::Bot(BotReason::SkipPath)
                        || trimmed.len() < MIN_USER_AGENT_LEN
                        || !trimmed.contains('/')
                );
            }
        }
    }

    /// Rough timing; run with
    /// `cargo test -p tallymark-core --release bots::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn timing() {
        use std::hint::black_box;
        use std::time::Instant;

        let start = Instant::now();
        warm_up();
        println!("compile: {:?}", start.elapsed());
        let rules = BotRules::default();
        let known_list = BOTS
            .iter()
            .find(|(_, reason)| *reason == BotReason::KnownList)
            .map_or("", |(ua, _)| *ua);
        let longest_human = HUMANS
            .iter()
            .copied()
            .max_by_key(|ua| ua.len())
            .unwrap_or("");
        for (name, ua) in [
            ("chrome (human)", CHROME),
            ("longest human", longest_human),
            ("googlebot (crawler)", GOOGLEBOT),
            ("known_list", known_list),
        ] {
            let rounds: u32 = 200_000;
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(classify(&rules, black_box(ua), black_box("/blog/post?x=1")));
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            println!("{name}: {ns} ns/classify ({:?})", classify(&rules, ua, "/"));
        }
    }
}
