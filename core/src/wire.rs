//! The versioned beacon payload the SDK sends and the collector accepts.
//!
//! v1 is JSON. The SDK encodes it with [`PayloadV1::to_json`] (hand-written so
//! the WASM beacon carries no `serde_json`/`core::fmt`); the collector decodes
//! it with [`parse`] (serde). A test proves the two agree.

use serde::{Deserialize, Serialize};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted page URL or referrer.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest accepted site domain (DNS limit).
pub const MAX_SITE_BYTES: usize = 253;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pageview,
    Event,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Pageview => "pageview",
            Kind::Event => "event",
        }
    }
}

/// Payload version 1. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadV1 {
    pub kind: Kind,
    /// The site's domain, as registered with the collector.
    pub site: String,
    /// The full page URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

/// Why a payload was refused. Each message names the field and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("body: larger than {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("body: not a valid v1 payload: {0}")]
    Malformed(String),
    #[error("site: must not be empty")]
    SiteEmpty,
    #[error("site: longer than {MAX_SITE_BYTES} bytes")]
    SiteTooLong,
    #[error("url: must not be empty")]
    UrlEmpty,
    #[error("url: longer than {MAX_URL_BYTES} bytes")]
    UrlTooLong,
    #[error("url: must start with http:// or https://")]
    UrlScheme,
    #[error("referrer: longer than {MAX_URL_BYTES} bytes")]
    ReferrerTooLong,
}

impl PayloadV1 {
    /// Checks the limits that need no parsing. Cheapest checks first.
    pub fn check_limits(&self) -> Result<(), WireError> {
        if self.site.is_empty() {
            return Err(WireError::SiteEmpty);
        }
        if self.site.len() > MAX_SITE_BYTES {
            return Err(WireError::SiteTooLong);
        }
        if self.url.is_empty() {
            return Err(WireError::UrlEmpty);
        }
        if self.url.len() > MAX_URL_BYTES {
            return Err(WireError::UrlTooLong);
        }
        let lower = self.url.get(..8).unwrap_or(&self.url).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(WireError::UrlScheme);
        }
        if self
            .referrer
            .as_ref()
            .is_some_and(|r| r.len() > MAX_URL_BYTES)
        {
            return Err(WireError::ReferrerTooLong);
        }
        Ok(())
    }

    /// Encodes the payload as JSON. Hand-written (see the module docs).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.url.len() + self.site.len());
        out.push_str("{\"kind\":\"");
        out.push_str(self.kind.as_str());
        out.push_str("\",\"site\":");
        push_json_str(&mut out, &self.site);
        out.push_str(",\"url\":");
        push_json_str(&mut out, &self.url);
        if let Some(r) = &self.referrer {
            out.push_str(",\"referrer\":");
            push_json_str(&mut out, r);
        }
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses and checks a v1 payload from a request body.
#[cfg(feature = "server")]
pub fn parse(body: &[u8]) -> Result<PayloadV1, WireError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WireError::BodyTooLarge);
    }
    let payload: PayloadV1 =
        serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))?;
    payload.check_limits()?;
    Ok(payload)
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    fn pageview(url: &str) -> PayloadV1 {
        PayloadV1 {
            kind: Kind::Pageview,
            site: "example.com".into(),
            url: url.into(),
            referrer: None,
        }
    }

    #[test]
    fn to_json_round_trips_through_the_collector_parser() {
        let mut p = pageview("https://example.com/a?q=\"x\"\\\n\u{1}é");
        p.referrer = Some("https://search.example/?q=\t".into());
        let back = parse(p.to_json().as_bytes()).unwrap();
        assert_eq!(back, p);
        let plain = pageview("https://example.com/");
        assert_eq!(parse(plain.to_json().as_bytes()).unwrap(), plain);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body =
            br#"{"kind":"pageview","site":"example.com","url":"https://example.com/","future":1}"#;
        assert_eq!(parse(body).unwrap(), pageview("https://example.com/"));
    }

    #[test]
    fn each_violation_names_its_field() {
        let cases: [(&[u8], WireError); 5] = [
            (
                br#"{"kind":"pageview","site":"","url":"https://x/"}"#,
                WireError::SiteEmpty,
            ),
            (
                br#"{"kind":"pageview","site":"x","url":""}"#,
                WireError::UrlEmpty,
            ),
            (
                br#"{"kind":"pageview","site":"x","url":"ftp://x/"}"#,
                WireError::UrlScheme,
            ),
            (
                br#"{"kind":"pageview","site":"x","url":"javascript:alert(1)"}"#,
                WireError::UrlScheme,
            ),
            (&[b' '; MAX_BODY_BYTES + 1], WireError::BodyTooLarge),
        ];
        for (body, want) in cases {
            assert_eq!(parse(body).unwrap_err(), want);
        }
        let long = format!(
            r#"{{"kind":"pageview","site":"x","url":"https://x/{}"}}"#,
            "a".repeat(MAX_URL_BYTES)
        );
        let err = parse(long.as_bytes()).unwrap_err();
        assert_eq!(err, WireError::UrlTooLong);
        assert!(err.to_string().starts_with("url:"));
        assert!(matches!(
            parse(b"{\"kind\":\"click\"}"),
            Err(WireError::Malformed(_))
        ));
    }
}
