//! Where the client is, looked up from its IP before the IP is dropped:
//! the country, and with a city database the region and the city.
//!
//! Reads MaxMind-format databases (`--geoip PATH[,PATH]`): GeoLite2/GeoIP2
//! Country or City and DB-IP's (nested records: `country.iso_code`,
//! `subdivisions[0].names.en`, `city.names.en`), and ip-location-db's files
//! (flat records: `country_code`, `state1`, `city`), which come as one file
//! for IPv4 and one for IPv6. The country comes from the first database
//! that knows the address, the region and city from the first that places
//! it in that country ([`Geo::locate`]). Without a database, the country is only known from a trusted
//! proxy's `CF-IPCountry`. Only English names are kept.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

pub struct Geo {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

/// What a database knows of an address. `region` and `city` are English
/// names (`Bavaria`, `Munich`), never without the country they are in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
}

/// Both record shapes: MaxMind's nested one and ip-location-db's flat one.
/// (`city` is a map in the first and a string in the second.)
#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    country: Option<Country>,
    #[serde(default)]
    subdivisions: Option<Vec<Subdivision>>,
    #[serde(default)]
    state1: Option<String>,
    #[serde(default)]
    city: Option<City>,
}

#[derive(Deserialize)]
struct Country {
    #[serde(default)]
    iso_code: Option<String>,
}

/// A subdivision: its English name and code (`BY`, without the country).
/// Only the fields read: a field of another integer width than expected
/// would fail the whole record (the decoder reads widths strictly).
#[derive(Deserialize)]
struct Subdivision {
    #[serde(default)]
    names: Option<Names>,
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct Names {
    #[serde(default)]
    en: Option<String>,
}

/// A city: a name (ip-location-db) or a record (MaxMind, DB-IP). Read
/// through serde's buffering (untagged), so its GeoNames id may be stored
/// in any integer width.
#[derive(Deserialize)]
#[serde(untagged)]
enum City {
    Name(String),
    Record {
        #[serde(default)]
        names: Option<Names>,
        #[serde(default)]
        geoname_id: Option<u64>,
    },
}

impl City {
    /// The English name, and the GeoNames id when there is one.
    fn parts(self) -> (Option<String>, Option<u64>) {
        match self {
            City::Name(name) => (Some(name), None),
            City::Record { names, geoname_id } => (names.and_then(|n| n.en), geoname_id),
        }
    }
}

/// English names by code, read from every record of the databases: ISO
/// 3166-2 regions (`DE-BY` → `Bavaria`) and GeoNames cities (`2867714` →
/// `Munich` in `Bavaria`), as other tools' exports name them (Plausible's).
/// Empty for databases without codes (ip-location-db's).
#[derive(Debug, Default)]
pub struct PlaceNames {
    pub regions: HashMap<String, String>,
    /// A city's name and the name of the region it is in.
    pub cities: HashMap<u64, (String, Option<String>)>,
}

/// The longest place name kept, in characters (the longest in GeoLite2 are
/// under 60).
const MAX_NAME: usize = 100;

/// A place name as stored: trimmed, at most [`MAX_NAME`] characters, no
/// control characters; `None` when nothing is left.
pub(crate) fn place_name(name: Option<String>) -> Option<String> {
    let name = name?;
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    (!name.is_empty()).then_some(name)
}

#[derive(Debug, thiserror::Error)]
#[error("reading the GeoIP database {path}: {source}")]
pub struct GeoError {
    path: String,
    source: maxminddb::MaxMindDbError,
}

impl Geo {
    pub fn none() -> Self {
        Self {
            readers: Vec::new(),
        }
    }

    /// Opens each database, in the order they are asked in.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<Self, GeoError> {
        let mut readers = Vec::with_capacity(paths.len());
        for path in paths {
            let path = path.as_ref();
            readers.push(
                maxminddb::Reader::open_readfile(path).map_err(|source| GeoError {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        }
        Ok(Self { readers })
    }

    pub fn is_enabled(&self) -> bool {
        !self.readers.is_empty()
    }

    /// Every region and city the databases name, by code (a walk over all
    /// their networks, each distinct record decoded once: seconds for
    /// GeoLite2-City).
    pub fn place_names(&self) -> PlaceNames {
        let mut out = PlaceNames::default();
        for reader in &self.readers {
            let Ok(networks) = reader.networks(maxminddb::WithinOptions::default()) else {
                continue;
            };
            let mut seen = HashSet::new();
            for found in networks.flatten() {
                if !found.offset().is_some_and(|at| seen.insert(at)) {
                    continue;
                }
                let Ok(Some(record)) = found.decode::<Record>() else {
                    continue;
                };
                let Some(country) = record
                    .country
                    .and_then(|c| c.iso_code)
                    .as_deref()
                    .and_then(country_code)
                else {
                    continue;
                };
                let mut region = None;
                if let Some(first) = record.subdivisions.and_then(|s| s.into_iter().next()) {
                    region = place_name(first.names.and_then(|n| n.en));
                    if let (Some(code), Some(name)) = (first.iso_code, &region) {
                        out.regions
                            .entry(format!("{country}-{}", code.to_ascii_uppercase()))
                            .or_insert_with(|| name.clone());
                    }
                }
                let (name, id) = record.city.map(City::parts).unwrap_or_default();
                if let (Some(id), Some(name)) = (id, place_name(name)) {
                    out.cities.entry(id).or_insert((name, region));
                }
            }
        }
        out
    }

    /// The country (ISO 3166-1 alpha-2, upper case), region and city of
    /// `ip`. The country is a trusted proxy's (`CF-IPCountry`) when given,
    /// else the first database's that has one for it; the region and city
    /// come together from the first database that places the address in
    /// that country (so a country database listed before a city database
    /// still leaves the city database its regions and cities, and a region
    /// or city is never of another country than the one stored).
    pub fn locate(&self, ip: IpAddr, proxy_country: Option<String>) -> Location {
        let mut found = Location {
            country: proxy_country,
            ..Location::default()
        };
        for reader in &self.readers {
            let Some(here) = lookup(reader, ip) else {
                continue;
            };
            if found.country.is_none() {
                found.country = here.country.clone();
            }
            if found.country == here.country && (here.region.is_some() || here.city.is_some()) {
                found.region = here.region;
                found.city = here.city;
                break;
            }
        }
        found
    }
}

/// What one database knows of `ip`: nothing without a country.
fn lookup(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<Location> {
    let record: Record = reader.lookup(ip).ok()?.decode().ok()??;
    let country = record
        .country_code
        .as_deref()
        .or(record.country.as_ref().and_then(|c| c.iso_code.as_deref()))
        .and_then(country_code)?;
    let region = place_name(record.state1.or_else(|| {
        record
            .subdivisions
            .and_then(|s| s.into_iter().next())
            .and_then(|s| s.names)
            .and_then(|n| n.en)
    }));
    let city = place_name(record.city.and_then(|c| c.parts().0));
    Some(Location {
        country: Some(country),
        region,
        city,
    })
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
