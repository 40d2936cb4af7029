//! Country from the client IP, looked up before the IP is dropped.
//!
//! Reads a MaxMind-format database (`--geoip PATH`): GeoLite2/GeoIP2
//! Country or City (`country.iso_code`) and ip-location-db's country files
//! (`country_code`). Without a database, country is only known from a
//! trusted proxy's `CF-IPCountry`.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

pub struct Geo {
    reader: Option<maxminddb::Reader<Vec<u8>>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading the GeoIP database {path}: {source}")]
pub struct GeoError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

impl Geo {
    pub fn none() -> Self {
        Self { reader: None }
    }

    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|source| GeoError {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            reader: Some(reader),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.is_some()
    }

    /// ISO 3166-1 alpha-2 code, upper case, if known.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let reader = self.reader.as_ref()?;
        let found = reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        let code = record
            .country_code
            .or_else(|| record.country.and_then(|c| c.iso_code))?;
        country_code(code)
    }
}

/// A two-letter country code, upper-cased; `None` for anything else
/// (including Cloudflare's `XX` unknown and `T1` Tor markers).
pub fn country_code(code: &str) -> Option<String> {
    let code = code.trim();
    let valid = code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic());
    let upper = code.to_ascii_uppercase();
    // XX and ZZ: unknown (Cloudflare, CLDR); EU and AP: regions, not
    // countries (legacy GeoIP); T1 (Tor) fails the letters check.
    (valid && !matches!(upper.as_str(), "XX" | "ZZ" | "EU" | "AP")).then_some(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_letter_codes_pass() {
        assert_eq!(country_code("de").as_deref(), Some("DE"));
        assert_eq!(country_code(" US ").as_deref(), Some("US"));
        assert_eq!(country_code("XX"), None);
        assert_eq!(country_code("zz"), None);
        assert_eq!(country_code("EU"), None);
        assert_eq!(country_code("T1"), None);
        assert_eq!(country_code("DEU"), None);
        assert_eq!(country_code(""), None);
    }
}
