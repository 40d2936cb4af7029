//! The client's address, from the socket peer plus forwarding headers.
//!
//! Forwarding headers are written by whoever sent the request, so they are
//! believed **only** when the socket peer is one of the operator's
//! [`TrustedProxies`]. From any other peer the answer is the peer itself,
//! whatever the headers say: spoofing a header changes nothing.
//!
//! # Precedence (trusted peer only)
//!
//! 1. `CF-Connecting-IP`, when it holds one valid address (Cloudflare sets it
//!    to the address that connected to its edge, overwriting any sent by the
//!    client).
//! 2. `Forwarded` (RFC 7239), walking its `for=` chain.
//! 3. `X-Forwarded-For`, walking its chain.
//! 4. `X-Real-IP`, when it holds one valid address.
//! 5. The peer.
//!
//! A source that yields no valid address is passed over for the next one.
//!
//! # Walking a chain
//!
//! Every proxy appends the address it received the request from, so the
//! entries nearest the right were written by our own proxies and the ones to
//! the left may be anything the client chose. The client is therefore the
//! **rightmost entry that is not a trusted proxy**; if every entry is trusted
//! (a request from inside the proxy network), it is the leftmost valid entry.
//! Entries that are not an address — garbage, empty, `unknown`, RFC 7239
//! obfuscated identifiers such as `_hidden` — are skipped, not fatal. (A proxy
//! that deliberately writes `unknown` for its client thus lets the walk reach
//! the client-chosen entries to its left; for analytics that is the lesser
//! evil compared with attributing the hit to the proxy.)
//!
//! # Addresses
//!
//! Entries may carry a port (`1.2.3.4:80`, `[2001:db8::1]:4711`), brackets on
//! IPv6, or RFC 7239 quoting. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is
//! normalised to IPv4 everywhere — the peer, header values and trusted CIDRs —
//! before any comparison. The unspecified addresses `0.0.0.0` and `::` are
//! never a client and are skipped.
//!
//! Nothing here can fail or panic: any input yields an address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// The proxies whose forwarding headers are believed: a list of CIDRs.
///
/// The default trusts nobody, so headers are ignored and the client is always
/// the socket peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxies: {entry:?} is neither an IP address nor a CIDR")]
pub struct TrustedProxiesError {
    /// The offending entry, trimmed.
    pub entry: String,
}

impl TrustedProxies {
    /// Trusts nobody (same as [`Default`]).
    pub const fn none() -> Self {
        Self { nets: Vec::new() }
    }

    /// Parses each entry as a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare
    /// address (`127.0.0.1`, `::1`). Surrounding whitespace is ignored, and
    /// so are empty entries. The first bad entry is the error.
    pub fn try_from_entries<I, S>(entries: I) -> Result<Self, TrustedProxiesError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            nets.push(parse_net(entry).ok_or_else(|| TrustedProxiesError {
                entry: entry.to_owned(),
            })?);
        }
        Ok(Self { nets })
    }

    /// Trusts the given networks. IPv4-mapped IPv6 networks
    /// (`::ffff:10.0.0.0/104`) are stored as the IPv4 networks they denote.
    pub fn from_nets<I: IntoIterator<Item = IpNet>>(nets: I) -> Self {
        Self {
            nets: nets.into_iter().map(normalize_net).collect(),
        }
    }

    /// Whether `ip` (mapped IPv6 normalised to IPv4 first) lies in a trusted
    /// network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether nobody is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The trusted networks, normalised and truncated to their prefix.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;

    /// Parses a comma-separated list, e.g. `"127.0.0.1, 10.0.0.0/8, ::1"`.
    /// The empty string trusts nobody.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from_entries(s.split(','))
    }
}

impl FromIterator<IpNet> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::from_nets(iter)
    }
}

/// A CIDR, or a bare address taken as a host network (/32, /128).
fn parse_net(entry: &str) -> Option<IpNet> {
    let net = match IpNet::from_str(entry) {
        Ok(net) => net,
        Err(_) => IpNet::from(IpAddr::from_str(entry).ok()?),
    };
    Some(normalize_net(net))
}

/// Truncates to the prefix and turns `::ffff:a.b.c.d/96+n` into `a.b.c.d/n`,
/// since addresses are compared in their canonical (IPv4) form.
fn normalize_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (
            v6.network().to_ipv4_mapped(),
            v6.prefix_len().checked_sub(96),
        ) {
            if let Ok(v4net) = Ipv4Net::new(v4, len) {
                return IpNet::V4(v4net.trunc());
            }
        }
    }
    net
}

/// The forwarding headers of one request, borrowed from it.
///
/// Values are the raw header values. A header sent several times is given
/// once per occurrence, in the order received; the chain headers are then
/// read as one list (RFC 9110 §5.3 — same as joining them with commas).
/// For the single-address headers give the last occurrence, the one written
/// nearest to us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding<'a> {
    /// `Forwarded` (RFC 7239) values.
    pub forwarded: Vec<&'a str>,
    /// `X-Forwarded-For` values.
    pub x_forwarded_for: Vec<&'a str>,
    /// `X-Real-IP`, if present.
    pub x_real_ip: Option<&'a str>,
    /// `CF-Connecting-IP`, if present.
    pub cf_connecting_ip: Option<&'a str>,
}

impl<'a> Forwarding<'a> {
    /// Picks the forwarding headers out of `(name, value)` pairs, names
    /// matched case-insensitively, in the order given; for the
    /// single-address headers the last occurrence wins.
    pub fn from_headers<I>(headers: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut out = Self::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("forwarded") {
                out.forwarded.push(value);
            } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                out.x_forwarded_for.push(value);
            } else if name.eq_ignore_ascii_case("x-real-ip") {
                out.x_real_ip = Some(value);
            } else if name.eq_ignore_ascii_case("cf-connecting-ip") {
                out.cf_connecting_ip = Some(value);
            }
        }
        out
    }
}

/// Where the client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The socket peer: untrusted, or no header held a usable address.
    Peer,
    /// The `Forwarded` header.
    Forwarded,
    /// The `X-Forwarded-For` header.
    XForwardedFor,
    /// The `X-Real-IP` header.
    XRealIp,
    /// The `CF-Connecting-IP` header.
    CfConnectingIp,
}

impl Source {
    /// Every source, in the order they are consulted (the peer last).
    pub const ALL: [Source; 5] = [
        Source::CfConnectingIp,
        Source::Forwarded,
        Source::XForwardedFor,
        Source::XRealIp,
        Source::Peer,
    ];

    /// A stable snake_case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Peer => "peer",
            Source::Forwarded => "forwarded",
            Source::XForwardedFor => "x_forwarded_for",
            Source::XRealIp => "x_real_ip",
            Source::CfConnectingIp => "cf_connecting_ip",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client address and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp {
    /// The client address, IPv4-mapped IPv6 normalised to IPv4.
    pub ip: IpAddr,
    /// Which source gave it.
    pub via: Source,
}

/// The client address: see the [module docs](self) for the rules.
pub fn client_ip(peer: IpAddr, headers: &Forwarding<'_>, trusted: &TrustedProxies) -> IpAddr {
    resolve(peer, headers, trusted).ip
}

/// Like [`client_ip`], also saying which source was used.
pub fn resolve(peer: IpAddr, headers: &Forwarding<'_>, trusted: &TrustedProxies) -> ClientIp {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return ClientIp {
            ip: peer,
            via: Source::Peer,
        };
    }
    let via = |via: Source| move |ip: IpAddr| ClientIp { ip, via };
    let forwarded = || headers.forwarded.iter().flat_map(|v| forwarded_for(v));
    let x_forwarded_for = || {
        let entries = headers.x_forwarded_for.iter().flat_map(|v| v.split(','));
        entries.map(parse_node)
    };
    headers
        .cf_connecting_ip
        .and_then(parse_node)
        .map(via(Source::CfConnectingIp))
        .or_else(|| walk(forwarded(), trusted).map(via(Source::Forwarded)))
        .or_else(|| walk(x_forwarded_for(), trusted).map(via(Source::XForwardedFor)))
        .or_else(|| {
            headers
                .x_real_ip
                .and_then(parse_node)
                .map(via(Source::XRealIp))
        })
        .unwrap_or(ClientIp {
            ip: peer,
            via: Source::Peer,
        })
}

/// The rightmost untrusted address of a chain (left to right, `None` for
/// entries that are not an address), else its leftmost address, else `None`.
fn walk<I>(chain: I, trusted: &TrustedProxies) -> Option<IpAddr>
where
    I: Iterator<Item = Option<IpAddr>>,
{
    let valid: Vec<IpAddr> = chain.flatten().collect();
    valid
        .iter()
        .rev()
        .find(|ip| !trusted.contains(**ip))
        .or_else(|| valid.first())
        .copied()
}

/// The `for=` node of each element of one `Forwarded` value, in order;
/// `None` for elements without a usable one.
fn forwarded_for(value: &str) -> impl Iterator<Item = Option<IpAddr>> + '_ {
    split_unquoted(value, ',').map(|element| {
        split_unquoted(element, ';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
            .and_then(|(_, node)| parse_node(&unquote(node.trim())))
    })
}

/// Splits `s` at `sep` outside RFC 7230 quoted-strings (where `\` escapes
/// the next character).
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == sep && !quoted {
                rest = Some(&s[i + c.len_utf8()..]);
                return Some(&s[..i]);
            }
        }
        rest = None;
        Some(s)
    })
}

/// The content of a quoted-string (escapes removed), or `s` unchanged.
fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    match s
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if c == '\\' && !escaped {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out.into()
        }
        Some(inner) => inner.into(),
        None => s.into(),
    }
}

/// One node: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, optionally surrounded by whitespace or double quotes.
/// Canonical (mapped IPv6 → IPv4); `None` for anything else, including
/// obfuscated identifiers and the unspecified addresses.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .map_or(s, str::trim);
    let ip = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        IpAddr::V6(inner.parse().ok()?)
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = s.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    }
    .to_canonical();
    (!ip.is_unspecified()).then_some(ip)
}

/// A decimal port, or an RFC 7239 obfuscated port (`_abc`).
fn is_port(s: &str) -> bool {
    match s.strip_prefix('_') {
        Some(obf) => {
            !obf.is_empty()
                && obf
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        }
        None => s.parse::<u16>().is_ok() && s.bytes().all(|b| b.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv6Net;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    /// (name, peer, trusted, forwarded, xff, x-real-ip, cf, expected ip, via)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        Source,
    );

    const LB: &str = "10.0.0.0/8, 127.0.0.1, ::1, 2001:db8:ffff::/48";

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        ("no headers, untrusted", "203.0.113.9", "", &[], &[], None, None, "203.0.113.9", Source::Peer),
        ("no headers, trusted peer", "10.0.0.2", LB, &[], &[], None, None, "10.0.0.2", Source::Peer),
        ("spoofed XFF from untrusted peer ignored", "203.0.113.9", LB, &[], &["1.1.1.1"], None, None, "203.0.113.9", Source::Peer),
        ("spoofed headers with empty trust list", "203.0.113.9", "", &["for=1.1.1.1"], &["1.1.1.1"], Some("1.1.1.1"), Some("1.1.1.1"), "203.0.113.9", Source::Peer),
        ("CF header from untrusted peer ignored", "198.51.100.1", LB, &[], &[], None, Some("1.1.1.1"), "198.51.100.1", Source::Peer),
        ("XFF single from trusted peer", "10.0.0.2", LB, &[], &["198.51.100.7"], None, None, "198.51.100.7", Source::XForwardedFor),
        ("XFF chain: rightmost untrusted wins over client-chosen left", "10.0.0.2", LB, &[], &["6.6.6.6, 198.51.100.7, 10.0.0.5"], None, None, "198.51.100.7", Source::XForwardedFor),
        ("multiple XFF headers concatenated", "10.0.0.2", LB, &[], &["6.6.6.6, 198.51.100.7", "10.1.1.1"], None, None, "198.51.100.7", Source::XForwardedFor),
        ("garbage entries skipped", "10.0.0.2", LB, &[], &["unknown, , 999.1.1.1, 1.2.3.4"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("trailing garbage skipped", "10.0.0.2", LB, &[], &["1.2.3.4, nonsense,, 01.2.3.4"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("IPv4 with port", "10.0.0.2", LB, &[], &["1.2.3.4:80"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("IPv6 bare", "10.0.0.2", LB, &[], &["2001:db8::7"], None, None, "2001:db8::7", Source::XForwardedFor),
        ("IPv6 with brackets and port", "10.0.0.2", LB, &[], &["[2001:db8::7]:4711"], None, None, "2001:db8::7", Source::XForwardedFor),
        ("IPv6 with brackets, no port", "::1", LB, &[], &[" [2001:db8::7] "], None, None, "2001:db8::7", Source::XForwardedFor),
        ("bad port rejected", "10.0.0.2", LB, &[], &["5.5.5.5, 1.2.3.4:99999"], None, None, "5.5.5.5", Source::XForwardedFor),
        ("all entries trusted: leftmost valid", "10.0.0.2", LB, &[], &["junk, 10.9.9.9, 10.0.0.1"], None, None, "10.9.9.9", Source::XForwardedFor),
        ("only garbage: falls to peer", "10.0.0.2", LB, &[], &["unknown, _hidden, "], None, None, "10.0.0.2", Source::Peer),
        ("Forwarded simple", "10.0.0.2", LB, &["for=192.0.2.60;proto=http;by=203.0.113.43"], &[], None, None, "192.0.2.60", Source::Forwarded),
        ("Forwarded quoted IPv6 with port", "10.0.0.2", LB, &["For=\"[2001:db8:cafe::17]:4711\""], &[], None, None, "2001:db8:cafe::17", Source::Forwarded),
        ("Forwarded obfuscated nodes skipped", "10.0.0.2", LB, &["for=192.0.2.43, for=_hidden, for=unknown;proto=https"], &[], None, None, "192.0.2.43", Source::Forwarded),
        ("Forwarded chain, several headers, trusted hops", "10.0.0.2", LB, &["for=6.6.6.6, for=198.51.100.2", "for=\"10.0.0.9:_gw\";by=_lb"], &[], None, None, "198.51.100.2", Source::Forwarded),
        ("Forwarded quoted comma does not split", "10.0.0.2", LB, &["for=198.51.100.2, for=\"_a,b\""], &[], None, None, "198.51.100.2", Source::Forwarded),
        ("Forwarded beats XFF", "10.0.0.2", LB, &["for=192.0.2.60"], &["1.2.3.4"], None, None, "192.0.2.60", Source::Forwarded),
        ("unusable Forwarded falls back to XFF", "10.0.0.2", LB, &["for=unknown"], &["1.2.3.4"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("CF beats everything when trusted", "10.0.0.2", LB, &["for=192.0.2.60"], &["1.2.3.4"], Some("5.6.7.8"), Some("198.51.100.77"), "198.51.100.77", Source::CfConnectingIp),
        ("invalid CF falls back", "10.0.0.2", LB, &[], &["1.2.3.4"], None, Some("not-an-ip"), "1.2.3.4", Source::XForwardedFor),
        ("X-Real-IP last resort", "10.0.0.2", LB, &[], &["garbage"], Some("5.6.7.8"), None, "5.6.7.8", Source::XRealIp),
        ("X-Real-IP from untrusted ignored", "8.8.8.8", LB, &[], &[], Some("5.6.7.8"), None, "8.8.8.8", Source::Peer),
        ("mapped IPv6 peer normalised, then trusted", "::ffff:10.0.0.2", LB, &[], &["1.2.3.4"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("mapped IPv6 peer normalised, untrusted", "::ffff:203.0.113.9", LB, &[], &["1.2.3.4"], None, None, "203.0.113.9", Source::Peer),
        ("mapped IPv6 header value normalised and trusted", "10.0.0.2", LB, &[], &["1.2.3.4, ::ffff:10.0.0.3"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("mapped IPv6 client normalised", "10.0.0.2", LB, &[], &["[::ffff:1.2.3.4]:80"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("trusted IPv6 proxy net", "2001:db8:ffff::1", LB, &[], &["2001:db8::5, 2001:db8:ffff::2"], None, None, "2001:db8::5", Source::XForwardedFor),
        ("unspecified skipped", "10.0.0.2", LB, &[], &["1.2.3.4, 0.0.0.0"], None, None, "1.2.3.4", Source::XForwardedFor),
        ("quoted XFF entry", "10.0.0.2", LB, &[], &["\"1.2.3.4\""], None, None, "1.2.3.4", Source::XForwardedFor),
    ];

    #[test]
    fn table() {
        assert!(CASES.len() >= 20);
        for &(name, peer, trusted, fwd, xff, real, cf, want, via) in CASES {
            let headers = Forwarding {
                forwarded: fwd.to_vec(),
                x_forwarded_for: xff.to_vec(),
                x_real_ip: real,
                cf_connecting_ip: cf,
            };
            let got = resolve(ip(peer), &headers, &proxies(trusted));
            assert_eq!(got, ClientIp { ip: ip(want), via }, "{name}");
            assert_eq!(
                client_ip(ip(peer), &headers, &proxies(trusted)),
                ip(want),
                "{name}"
            );
        }
    }

    #[test]
    fn trusted_proxies_parse() {
        let t = proxies(" 10.0.0.0/8 ,127.0.0.1,, ::1, ::ffff:192.168.0.0/112 ");
        assert_eq!(t.nets().len(), 4);
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("::1")));
        assert!(
            t.contains(ip("::ffff:10.1.1.1")),
            "mapped address checked as IPv4"
        );
        assert!(t.contains(ip("192.168.3.4")), "mapped CIDR stored as IPv4");
        assert!(!t.is_empty());
        assert!(proxies("").is_empty());
        assert!(TrustedProxies::default().is_empty());
        assert_eq!(TrustedProxies::none(), TrustedProxies::default());
        let err = "10.0.0.0/8, nope/3".parse::<TrustedProxies>().unwrap_err();
        assert_eq!(err.entry, "nope/3");
        assert!(err.to_string().contains("nope/3"));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        let from_iter = TrustedProxies::try_from_entries(["10.0.0.0/8", "::1"]).unwrap();
        assert_eq!(from_iter, proxies("10.0.0.0/8,::1"));
        let collected: TrustedProxies = ["10.0.0.1/8".parse::<IpNet>().unwrap()]
            .into_iter()
            .collect();
        assert_eq!(collected.nets()[0].to_string(), "10.0.0.0/8");
        let v6: Ipv6Net = "::ffff:0.0.0.0/96".parse().unwrap();
        assert_eq!(
            TrustedProxies::from_nets([IpNet::V6(v6)]).nets()[0].to_string(),
            "0.0.0.0/0"
        );
    }

    #[test]
    fn nodes() {
        for (s, want) in [
            ("1.2.3.4", Some("1.2.3.4")),
            ("1.2.3.4:_port", Some("1.2.3.4")),
            ("1.2.3.4:", None),
            ("1.2.3.4:+80", None),
            ("[::1]:", None),
            ("[::1]x", None),
            ("[1.2.3.4]", None),
            ("::1:80", Some("::1:80")),
            ("fe80::1%eth0", None),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("::", None),
        ] {
            assert_eq!(parse_node(s), want.map(ip), "{s:?}");
        }
    }

    #[test]
    fn from_headers() {
        let h = Forwarding::from_headers([
            ("Host", "example.com"),
            ("X-Forwarded-For", "1.1.1.1"),
            ("forwarded", "for=2.2.2.2"),
            ("x-forwarded-for", "3.3.3.3"),
            ("X-Real-IP", "4.4.4.4"),
            ("X-Real-Ip", "5.5.5.5"),
            ("CF-Connecting-IP", "6.6.6.6"),
        ]);
        assert_eq!(
            h,
            Forwarding {
                forwarded: vec!["for=2.2.2.2"],
                x_forwarded_for: vec!["1.1.1.1", "3.3.3.3"],
                x_real_ip: Some("5.5.5.5"),
                cf_connecting_ip: Some("6.6.6.6"),
            }
        );
        assert_eq!(Forwarding::from_headers([]), Forwarding::default());
    }

    #[test]
    fn sources_have_labels() {
        for s in Source::ALL {
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
            any::<u32>().prop_map(|n| IpAddr::V6(Ipv4Addr::from(n).to_ipv6_mapped())),
            (0u32..256).prop_map(|n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8))),
        ]
    }

    /// A chain entry: an address in some notation, or junk.
    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            any_ip().prop_map(|a| a.to_string()),
            (any_ip(), any::<u16>()).prop_map(|(a, p)| match a {
                IpAddr::V4(v4) => format!("{v4}:{p}"),
                IpAddr::V6(v6) => format!("[{v6}]:{p}"),
            }),
            any_ip().prop_map(|a| format!("for=\"{a}\"")),
            any_ip().prop_map(|a| format!("for={a};proto=https")),
            Just("unknown".to_owned()),
            Just("_hidden".to_owned()),
            Just(String::new()),
            ".{0,12}",
        ]
    }

    fn header() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(entry(), 0..6).prop_map(|v| v.join(", ")),
            ".*",
        ]
    }

    fn trust() -> impl Strategy<Value = TrustedProxies> {
        prop_oneof![
            Just(TrustedProxies::none()),
            Just(proxies(LB)),
            Just(proxies("0.0.0.0/0, ::/0")),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_and_only_returns_seen_addresses(
            peer in any_ip(),
            fwd in prop::collection::vec(header(), 0..3),
            xff in prop::collection::vec(header(), 0..3),
            real in prop::option::of(header()),
            cf in prop::option::of(header()),
            trusted in trust(),
        ) {
            let headers = Forwarding {
                forwarded: fwd.iter().map(String::as_str).collect(),
                x_forwarded_for: xff.iter().map(String::as_str).collect(),
                x_real_ip: real.as_deref(),
                cf_connecting_ip: cf.as_deref(),
            };
            let got = resolve(peer, &headers, &trusted);
            prop_assert_eq!(got.ip, client_ip(peer, &headers, &trusted));
            if got.via == Source::Peer {
                prop_assert_eq!(got.ip, peer.to_canonical());
            } else {
                prop_assert!(trusted.contains(peer));
                let text = got.ip.to_string();
                let seen = fwd.iter().chain(&xff).chain(&real).chain(&cf)
                    .any(|h| h.contains(&text));
                prop_assert!(seen, "{} not in headers", text);
            }
            if trusted.is_empty() {
                prop_assert_eq!(got, ClientIp { ip: peer.to_canonical(), via: Source::Peer });
            }
        }
    }
}
