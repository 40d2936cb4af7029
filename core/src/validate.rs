//! Validation beyond the wire limits: the page URL must parse, be http(s),
//! and belong to the payload's site; the path is normalised for reporting.
//!
//! The output, [`Valid`], is what later stages work on. It carries no
//! timestamp: the collector's clock stamps events, never the client's.

use url::Url;

use crate::wire::{Kind, PayloadV1, Props, Revenue};

/// A payload that passed every check, with its URL parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub kind: Kind,
    /// The site's domain, normalised by [`normalize_site`].
    pub site: String,
    /// The page URL as parsed (query kept for attribution).
    pub url: Url,
    /// The page's host, lower case, `www.` removed.
    pub hostname: String,
    /// The page path for reports, see [`normalize_path`].
    pub path: String,
    pub referrer: Option<String>,
    pub screen_width: Option<u32>,
    /// Set for custom events only.
    pub name: Option<String>,
    pub props: Props,
    pub revenue: Option<Revenue>,
    pub event_id: Option<String>,
    /// A custom event that counts as interaction (not a bounce); pageviews
    /// never do.
    pub interactive: bool,
    /// Engagement events: the engaged milliseconds and the scroll depth
    /// (percent); 0 and `None` for any other kind.
    pub engaged_ms: u32,
    pub scroll_depth: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("url: not a valid URL ({0})")]
    UrlInvalid(String),
    #[error("url: must be http or https")]
    UrlScheme,
    #[error("url: has no host")]
    UrlNoHost,
    #[error("url: host {host} does not belong to site {site}")]
    HostNotSite { host: String, site: String },
    #[error("site: not a domain name")]
    SiteInvalid,
}

/// Checks `payload` (which already passed [`PayloadV1::check_limits`]) and
/// parses its URL.
pub fn validate(payload: PayloadV1) -> Result<Valid, ValidationError> {
    let site = normalize_site(&payload.site).ok_or(ValidationError::SiteInvalid)?;
    let url = Url::parse(&payload.url).map_err(|e| ValidationError::UrlInvalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::UrlScheme);
    }
    // The url crate lower-cases (and punycodes) hosts of http(s) URLs.
    let hostname = hostname(&url).ok_or(ValidationError::UrlNoHost)?;
    if !host_belongs_to_site(&hostname, &site) {
        return Err(ValidationError::HostNotSite {
            host: hostname,
            site,
        });
    }
    let path = normalize_path(&url);
    let name = match payload.kind {
        Kind::Event => payload.name.map(|n| n.trim().to_string()),
        // A pageview's (or an engagement's) name means nothing; it is
        // dropped, not refused.
        Kind::Pageview | Kind::Engagement => None,
    };
    let engaged = payload.kind == Kind::Engagement;
    Ok(Valid {
        kind: payload.kind,
        site,
        url,
        hostname,
        path,
        referrer: payload.referrer.filter(|r| !r.trim().is_empty()),
        screen_width: payload.screen_width,
        name,
        props: payload.props.unwrap_or_default(),
        revenue: payload.revenue,
        event_id: payload.event_id,
        interactive: payload.kind == Kind::Event && payload.interactive != Some(false),
        engaged_ms: if engaged {
            payload.engaged_ms.unwrap_or(0)
        } else {
            0
        },
        scroll_depth: payload.scroll_depth.filter(|_| engaged),
    })
}

/// Lower case, no trailing dot, no `www.`, an international name in its
/// ASCII form (`bücher.de` → `xn--bcher-kva.de`, as URLs carry it): `None`
/// when that is not a plausible host name (a scheme, port or path is
/// refused; `localhost` is one).
pub fn normalize_site(site: &str) -> Option<String> {
    let trimmed = site.trim().trim_end_matches('.');
    let ascii;
    let trimmed = if trimmed.is_ascii() {
        trimmed
    } else {
        ascii = match url::Host::parse(trimmed).ok()? {
            url::Host::Domain(domain) => domain,
            _ => return None,
        };
        ascii.as_str()
    };
    let s = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        strip_www(&trimmed.to_ascii_lowercase()).to_string()
    } else {
        strip_www(trimmed).to_string()
    };
    let plausible = !s.is_empty()
        && s.len() <= crate::wire::MAX_SITE_BYTES
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    plausible.then_some(s)
}

pub(crate) fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// A page's host as reports show it: no trailing dot, no `www.` (the url
/// crate lower-cases and punycodes hosts of http(s) URLs). `None` without a
/// host.
pub fn hostname(url: &Url) -> Option<String> {
    url.host_str()
        .map(|host| strip_www(host.trim_end_matches('.')).to_string())
}

/// The site itself, or any subdomain of it. Both sides are normalised.
pub fn host_belongs_to_site(hostname: &str, site: &str) -> bool {
    hostname == site
        || hostname
            .strip_suffix(site)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// The path reports group by: percent-decoded where that yields UTF-8,
/// without a trailing slash (except the root), without query. A fragment is
/// kept only when it is a client-side route (`#/…` or `#!/…`), so hash-routed
/// apps report their pages while in-page anchors (`#top`) do not split them;
/// a route's own query (`#/reset?token=…`) is dropped like the page's.
pub fn normalize_path(url: &Url) -> String {
    let raw = url.path();
    let mut path = if raw.contains('%') {
        percent_decode(raw).unwrap_or_else(|| raw.to_string())
    } else {
        raw.to_string()
    };
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(fragment) = url.fragment()
        && (fragment.starts_with('/') || fragment.starts_with("!/"))
    {
        let route = fragment.split('?').next().unwrap_or(fragment);
        path.push('#');
        path.push_str(route);
    }
    path
}

/// Percent-decodes `s`; `None` if the result is not UTF-8 or a `%` is not
/// followed by two hex digits.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            let byte = (hi * 16 + lo) as u8;
            // Kept escaped: what would change the path's meaning (`/`, `?`,
            // `#`: `/search%3Femail=…` must not read as a query) or store a
            // control character (`%00`, `%0A`).
            if matches!(byte, b'/' | b'?' | b'#' | b'%') || byte < 0x20 || byte == 0x7f {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(byte);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(site: &str, url: &str) -> Result<Valid, ValidationError> {
        validate(PayloadV1::pageview(site, url))
    }

    #[test]
    fn international_site_names_are_their_ascii_form() {
        assert_eq!(
            normalize_site("bücher.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(
            normalize_site("www.Bücher.DE.").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(
            normalize_site("xn--bcher-kva.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(normalize_site("https://bücher.de/"), None);
        assert!(check("bücher.de", "https://www.bücher.de/preise").is_ok());
    }

    #[test]
    fn host_must_belong_to_the_site() {
        for (site, url) in [
            ("example.com", "https://example.com/"),
            ("example.com", "https://www.example.com/"),
            ("www.example.com", "https://example.com/"),
            ("Example.COM", "https://EXAMPLE.com./x"),
            ("example.com", "https://blog.example.com/"),
            ("example.com", "http://example.com:8080/"),
            ("localhost", "http://localhost:8080/demo"),
        ] {
            assert!(check(site, url).is_ok(), "{site} {url}");
        }
        for (site, url) in [
            ("example.com", "https://notexample.com/"),
            ("example.com", "https://example.com.evil.net/"),
            ("example.com", "https://evil.net/?example.com"),
            ("blog.example.com", "https://example.com/"),
        ] {
            assert!(
                matches!(check(site, url), Err(ValidationError::HostNotSite { .. })),
                "{site} {url}"
            );
        }
    }

    #[test]
    fn bad_urls_and_sites_name_their_field() {
        assert!(matches!(
            check("example.com", "https://"),
            Err(ValidationError::UrlInvalid(_))
        ));
        assert!(matches!(
            check("https://example.com/", "https://example.com/"),
            Err(ValidationError::SiteInvalid)
        ));
        assert_eq!(
            check("a b", "https://a/").unwrap_err().to_string(),
            "site: not a domain name"
        );
    }

    #[test]
    fn paths_are_normalised_for_reports() {
        let cases = [
            ("https://example.com", "/"),
            ("https://example.com/", "/"),
            ("https://example.com/blog/", "/blog"),
            ("https://example.com/blog//", "/blog"),
            ("https://example.com/a/../b?x=1#top", "/b"),
            ("https://example.com/caf%C3%A9", "/café"),
            ("https://example.com/bad%FF", "/bad%FF"),
            (
                "https://example.com/app#/settings/profile",
                "/app#/settings/profile",
            ),
            ("https://example.com/#!/inbox", "/#!/inbox"),
            ("https://example.com/doc#section-2", "/doc"),
            ("https://example.com/r#/reset?token=S&e=a%40b", "/r#/reset"),
            (
                "https://example.com/search%3Femail=a@b",
                "/search%3Femail=a@b",
            ),
            ("https://example.com/a%2Fb", "/a%2Fb"),
            ("https://example.com/x%00y%0A", "/x%00y%0A"),
            ("https://example.com/100%25", "/100%25"),
        ];
        for (url, want) in cases {
            assert_eq!(check("example.com", url).unwrap().path, want, "{url}");
        }
    }

    #[test]
    fn pageview_names_are_dropped_and_blank_referrers_are_none() {
        let mut p = PayloadV1::pageview("example.com", "https://example.com/");
        p.name = Some("ignored".into());
        p.referrer = Some("  ".into());
        let v = validate(p).unwrap();
        assert_eq!(v.name, None);
        assert_eq!(v.referrer, None);
        assert_eq!(v.hostname, "example.com");
    }

    proptest! {
        #[test]
        fn validate_never_panics(site in "\\PC{0,30}", url in "\\PC{0,80}") {
            let _ = validate(PayloadV1::pageview(site, url));
        }

        #[test]
        fn any_subdomain_of_a_valid_site_is_accepted(sub in "[a-z0-9]{1,10}", site in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let url = format!("https://{sub}.{site}/p");
            prop_assert!(check(&site, &url).is_ok());
        }
    }
}
