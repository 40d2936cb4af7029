//! Static files the collector serves: the SDK's script-tag bundle (embedded at
//! build time by `build.rs`) and the demo page.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;

/// An SDK file as built, and its gzip and brotli copies (empty when the
/// SDK was not built into this binary).
struct Asset {
    identity: &'static [u8],
    gzip: &'static [u8],
    brotli: &'static [u8],
}

macro_rules! asset {
    ($name:literal) => {
        Asset {
            identity: include_bytes!(concat!(env!("OUT_DIR"), "/", $name)),
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".gz")),
            brotli: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".br")),
        }
    };
}

static SCRIPT_JS: Asset = asset!("tallymark.js");
static SCRIPT_WASM: Asset = asset!("tallymark.wasm");
static DEMO_HTML: &str = include_str!("../assets/demo.html");

/// The script's own URL never changes (site owners paste it once), so it is
/// cached for a day and revalidated in the background for a week after.
const SCRIPT_CACHE: &str = "public, max-age=86400, stale-while-revalidate=604800";
/// The script asks for `tallymark.wasm?v=<hash of its bytes>` (xtask bakes the
/// hash in), so a versioned wasm URL names exactly one content: cached for a
/// year, immutable.
const VERSIONED_CACHE: &str = "public, max-age=31536000, immutable";
/// A `v=` that is not this build's (an old or newer script during a deploy
/// or rollback): served, but never cached under a URL it does not name.
const MISMATCH_CACHE: &str = "no-cache";

/// The wasm version the embedded script asks for (`tallymark.wasm?v=…`).
static WASM_VERSION: std::sync::LazyLock<Option<&'static str>> = std::sync::LazyLock::new(|| {
    let script = std::str::from_utf8(SCRIPT_JS.identity).ok()?;
    let (_, rest) = script.split_once("tallymark.wasm?v=")?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    rest.get(..end).filter(|v| !v.is_empty())
});

/// `GET /js/{file}`: the script-tag bundle, brotli- or gzip-encoded when the
/// client accepts it (what every browser sends: half the bytes on the wire).
pub async fn sdk_file(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (asset, mime, cache) = match file.as_str() {
        "tallymark.js" => (&SCRIPT_JS, "text/javascript; charset=utf-8", SCRIPT_CACHE),
        "tallymark.wasm" => {
            let asked = query.as_deref().and_then(|q| q.strip_prefix("v="));
            let cache = match asked {
                None => SCRIPT_CACHE,
                Some(v) if Some(v) == *WASM_VERSION => VERSIONED_CACHE,
                Some(_) => MISMATCH_CACHE,
            };
            (&SCRIPT_WASM, "application/wasm", cache)
        }
        _ => return Err(ApiError::NotFound("no such SDK file")),
    };
    if asset.identity.is_empty() {
        return Err(ApiError::NotFound(
            "the SDK was not built into this binary; build it with `cargo xtask run`",
        ));
    }
    // Repeated header lines are one comma-separated list (RFC 9110 §5.3).
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let available = [
        (Encoding::Brotli, asset.brotli),
        (Encoding::Gzip, asset.gzip),
    ];
    let (encoding, bytes) = match negotiate(&accept, &available) {
        Some((encoding, bytes)) => (Some(encoding), bytes),
        None => (None, asset.identity),
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Some(encoding) = encoding {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    // Caches must key the response on the encoding asked for.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Sites load the script and its wasm from the collector's origin.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// A content coding the collector has pre-compressed SDK files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The copy to send for an `Accept-Encoding` value (RFC 9110 §12.5.3): the
/// available coding with the highest q-value above 0 (`*` stands for any
/// coding not named), ties going to the first in `available` (the smaller);
/// `None` means the file as built. Empty copies (not built) are skipped. By
/// hand: a dozen lines, where tower-http's negotiation is private to its
/// compression layer.
fn negotiate<'a>(accept: &str, available: &[(Encoding, &'a [u8])]) -> Option<(Encoding, &'a [u8])> {
    let q_of = |coding: &str| -> f32 {
        let mut star = 0.0;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            // Parameter names are case-insensitive (`Q=0`).
            let q = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, q)| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case(coding) {
                return q;
            }
            if name == "*" {
                star = q;
            }
        }
        star
    };
    let mut best: Option<(Encoding, &'a [u8], f32)> = None;
    for &(encoding, bytes) in available {
        let q = q_of(encoding.token());
        if !bytes.is_empty() && q > 0.0 && best.is_none_or(|(_, _, b)| q > b) {
            best = Some((encoding, bytes, q));
        }
    }
    best.map(|(encoding, bytes, _)| (encoding, bytes))
}

/// `GET /demo`: a page that loads the SDK with a script tag and sends a
/// page view on load, one per in-page navigation and a custom event per
/// button click.
pub async fn demo() -> Html<&'static str> {
    Html(DEMO_HTML)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BR: &[u8] = b"br";
    const GZ: &[u8] = b"gz";
    const BOTH: [(Encoding, &[u8]); 2] = [(Encoding::Brotli, BR), (Encoding::Gzip, GZ)];

    fn pick(accept: &str) -> Option<Encoding> {
        negotiate(accept, &BOTH).map(|(e, _)| e)
    }

    #[test]
    fn accept_encoding_picks_the_best_acceptable_copy() {
        // What browsers send.
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Encoding::Brotli));
        assert_eq!(pick("gzip, deflate"), Some(Encoding::Gzip));
        assert_eq!(pick(""), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("BR"), Some(Encoding::Brotli));
        // q-values: 0 refuses, a higher one wins over the smaller copy.
        assert_eq!(pick("br;q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;Q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=1.0"), Some(Encoding::Gzip));
        assert_eq!(pick("br ; q=0 , gzip ; q=0"), None);
        assert_eq!(pick("*"), Some(Encoding::Brotli));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("br;q=0, *"), Some(Encoding::Gzip));
        // Garbage is no preference, never an error.
        assert_eq!(pick("br;q=x"), Some(Encoding::Brotli));
        assert_eq!(pick(",,;;"), None);
        // A copy that was not built is never chosen.
        let only_gzip = [(Encoding::Brotli, &b""[..]), (Encoding::Gzip, GZ)];
        assert_eq!(
            negotiate("br, gzip", &only_gzip).map(|(e, _)| e),
            Some(Encoding::Gzip)
        );
    }
}
