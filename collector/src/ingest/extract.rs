//! Stage 1, extract: what the rest of the pipeline needs from the raw HTTP
//! request — the body (checked content type and size), the client IP
//! (through trusted proxies only), the User-Agent and a proxy-set country.

use std::net::IpAddr;

use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, header};
use tallymark_core::client_ip::{self, Forwarding, TrustedProxies};
use tallymark_core::wire::MAX_BODY_BYTES;

use crate::config::ClientIpHeader;
use crate::error::ApiError;
use crate::geo::country_code;

pub struct Extracted {
    pub body: Bytes,
    pub client: Client,
}

/// Who sent a request.
pub struct Client {
    /// The client's address: used for the visitor id and the country
    /// lookup, then dropped. Never stored or logged.
    pub client_ip: IpAddr,
    pub user_agent: String,
    /// `CF-IPCountry` from a trusted proxy.
    pub proxy_country: Option<String>,
}

pub async fn extract(
    headers: &HeaderMap,
    peer: IpAddr,
    body: Body,
    trusted: &TrustedProxies,
    only: ClientIpHeader,
) -> Result<Extracted, ApiError> {
    check_content_type(headers)?;
    let body = to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        if over_limit(&e) {
            ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            }
        } else {
            ApiError::BodyIncomplete
        }
    })?;
    Ok(Extracted {
        body,
        client: client(headers, peer, trusted, only),
    })
}

/// The client of a request, with or without a body (GoatCounter's `GET
/// /count` has none).
pub fn client(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: &TrustedProxies,
    only: ClientIpHeader,
) -> Client {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let all = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    // With one header configured, the others are not even read.
    let wants = |h: ClientIpHeader| only == ClientIpHeader::Any || only == h;
    let forwarding = Forwarding {
        forwarded: if wants(ClientIpHeader::Forwarded) {
            all("forwarded")
        } else {
            Vec::new()
        },
        x_forwarded_for: if wants(ClientIpHeader::XForwardedFor) {
            all("x-forwarded-for")
        } else {
            Vec::new()
        },
        x_real_ip: text("x-real-ip").filter(|_| wants(ClientIpHeader::XRealIp)),
        cf_connecting_ip: text("cf-connecting-ip")
            .filter(|_| wants(ClientIpHeader::CfConnectingIp)),
    };
    let client_ip = client_ip::client_ip(peer, &forwarding, trusted);
    let proxy_country = if trusted.contains(peer.to_canonical()) && only.trusts_cf_country() {
        text("cf-ipcountry").and_then(country_code)
    } else {
        None
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    Client {
        client_ip,
        user_agent,
        proxy_country,
    }
}

/// `application/json` or `text/plain` (what `sendBeacon` sends with a string
/// body, with no CORS preflight). A missing content type is read as JSON. A
/// compressed body is refused by name: beacons are a few hundred bytes.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding: String = String::from_utf8_lossy(encoding.as_bytes())
            .chars()
            .take(64)
            .collect();
        if !encoding.trim().eq_ignore_ascii_case("identity") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content-encoding: {encoding} is not read; send the body uncompressed"
            )));
        }
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = String::from_utf8_lossy(value.as_bytes())
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/plain" => Ok(()),
        // curl's default for --data (and so for Plausible's documented
        // curl line): say how to fix it.
        "application/x-www-form-urlencoded" => Err(ApiError::UnsupportedMediaType(
            "content-type: expected application/json or text/plain, got \
             application/x-www-form-urlencoded (curl's default for --data: add \
             -H 'Content-Type: application/json')"
                .into(),
        )),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "content-type: expected application/json or text/plain, got {:?}",
            other.chars().take(100).collect::<String>()
        ))),
    }
}

/// Whether reading the body failed because it was larger than the limit
/// (anything else is a body that stopped short: a client gone, or the read
/// deadline).
fn over_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}
