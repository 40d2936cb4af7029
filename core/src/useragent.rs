//! Browser, browser major version, OS, OS version and device class from a
//! User-Agent.
//!
//! The base parser is [`woothee`]; its answer is mapped onto small closed
//! enums (never free-form strings) and corrected where it gets a common
//! modern case wrong:
//!
//! | UA | woothee says | we say |
//! |----|--------------|--------|
//! | `UCBrowser/13.4` | Chrome 78 | [`Browser::UcBrowser`] 13 |
//! | `YaBrowser/23.11` (not 4-part) | Chrome | [`Browser::Yandex`] 23 |
//! | Opera on iOS (`OPT/`, `OPiOS/`) | Safari | [`Browser::Opera`] |
//! | Android WebView (`; wv)` + `Chrome/`) | "Webview" 4.0 | [`Browser::Chrome`] with `Chrome/` major |
//! | iOS in-app WebView (no `Safari/`) | "Webview" | [`Browser::Safari`], major = iOS major |
//! | `Safari` outside Apple OSes (old Android stock, PS5, GNOME Web) | Safari | [`Browser::Other`] |
//! | iOS Safari-engine UA without `Version/` (Snapchat, Yandex app) | Safari, no version | [`Browser::Safari`], major = iOS major |
//! | The Google app on iOS (`GSA/`) | other | [`Browser::Safari`], major = iOS major |
//! | Opera Mini: `Opera Mini/` (Presto), `OPR/` in a WebView; Opera GX mobile `OPX/` | Opera 12 (tablet) / "Webview" / Chrome | [`Browser::Opera`] (Presto Mini is a phone) |
//! | Meta Quest (`OculusBrowser/`, also sends `SamsungBrowser/4.0`) | Samsung Internet | [`Browser::Other`] |
//! | iPad, Android without `Mobile` | "smartphone" | [`Device::Tablet`] |
//! | `CriOS/`, `FxiOS/`, `EdgiOS/`, … in a `Macintosh` UA | macOS desktop | [`Os::Ios`], tablet |
//! | Samsung Internet with `X11; Linux` (its desktop mode, the default on Galaxy Tabs) | Linux desktop | [`Os::Android`], tablet |
//! | Smart TVs and sticks (`SMART-TV`, `SmartTV`, Fire TV `AFT…`, `BRAVIA`, `CrKey`, …) | tablet / phone / desktop | [`Device::Unknown`] |
//! | KaiOS (`KAIOS/`) | Android or nothing | [`Os::Other`], mobile |
//! | HarmonyOS NEXT (`(Phone; OpenHarmony …)`, `(Tablet; …`) | nothing | [`Os::Other`], mobile / tablet |
//!
//! Indistinguishable by design, and left so: Brave (and most other Chromium
//! forks without a token) is Chrome; Windows 11 is Windows (it sends NT 10.0);
//! iPadOS 13+ in desktop mode sends a macOS Safari UA — the screen width
//! catches most of those (see [`parse`]); Chrome on large Android tablets asks
//! for desktop sites by default and then sends `X11; Linux x86_64`, so it is
//! Linux (the screen width still makes it a tablet or laptop); since iOS 26 the
//! UA's iOS version is frozen (`18_6`, `18_7`), so an in-app WebView without
//! `Version/` reports Safari 18. The Google app on iOS (`GSA/`) is
//! Safari, like every other in-app view on iOS (2.9% of a real-world corpus's
//! weight: it was [`Browser::Other`] before).
//!
//! Bots are not this module's business (see `bots`); a crawler UA yields
//! [`Browser::Other`] and unknown OS/device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest UA prefix looked at. Real UAs are a few hundred bytes; this
/// bounds the parsing cost of a hostile header.
pub const MAX_UA_BYTES: usize = 2048;

/// Screen widths (CSS px, `screen.width`) below this are [`Device::Mobile`].
pub const MOBILE_BELOW: u32 = 576;
/// Screen widths below this (and ≥ [`MOBILE_BELOW`]) are [`Device::Tablet`].
pub const TABLET_BELOW: u32 = 992;
/// Screen widths below this (and ≥ [`TABLET_BELOW`]) are [`Device::Laptop`];
/// wider is [`Device::Desktop`].
pub const LAPTOP_BELOW: u32 = 1440;
/// A macOS UA with a screen narrower than this is an iPad (or iPhone) in
/// desktop mode: iPads report at most 1032 px (13" iPad Pro, portrait), while
/// Macs default to 1280 px or more.
pub const IPAD_AS_MAC_BELOW: u32 = 1100;

/// A label that names no variant (see the `FromStr` impls).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} label {label:?}")]
pub struct UnknownLabel {
    /// Which enum: `browser`, `os` or `device`.
    pub kind: &'static str,
    /// The label given.
    pub label: String,
}

/// Declares a closed dimension enum with its stable labels.
macro_rules! dimension {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident => $label:literal, $title:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $label)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// Stable snake_case label, for storage and APIs (also the serde
            /// name and the `Display` form).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// Human-readable name, for dashboards.
            pub const fn title(self) -> &'static str {
                match self {
                    $($name::$variant => $title,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownLabel;

            /// The inverse of [`as_str`](Self::as_str).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownLabel { kind: $kind, label: s.to_owned() })
            }
        }
    };
}

dimension! {
    /// The browser. Chromium forks without their own token (Brave, Arc, …)
    /// are [`Browser::Chrome`].
    Browser, "browser" {
        Chrome => "chrome", "Chrome";
        Firefox => "firefox", "Firefox";
        Safari => "safari", "Safari";
        Edge => "edge", "Edge";
        Opera => "opera", "Opera";
        SamsungInternet => "samsung_internet", "Samsung Internet";
        InternetExplorer => "internet_explorer", "Internet Explorer";
        Yandex => "yandex", "Yandex Browser";
        UcBrowser => "uc_browser", "UC Browser";
        Vivaldi => "vivaldi", "Vivaldi";
        /// Recognised, but none of the above (including crawlers, and apps
        /// whose in-app view is not counted as its engine's browser).
        Other => "other", "Other";
        /// Nothing recognisable (empty UA, garbage).
        Unknown => "unknown", "Unknown";
    }
}

dimension! {
    /// The operating system. iPadOS is [`Os::Ios`].
    Os, "os" {
        Windows => "windows", "Windows";
        MacOs => "macos", "macOS";
        Ios => "ios", "iOS";
        Android => "android", "Android";
        Linux => "linux", "Linux";
        ChromeOs => "chromeos", "ChromeOS";
        /// Recognised, but none of the above (BSD, Windows Phone, consoles…).
        Other => "other", "Other";
        /// Nothing recognisable.
        Unknown => "unknown", "Unknown";
    }
}

dimension! {
    /// The device class. [`Device::Laptop`] is only known from the screen
    /// width; from the UA alone a computer is a [`Device::Desktop`].
    Device, "device" {
        Desktop => "desktop", "Desktop";
        Laptop => "laptop", "Laptop";
        Tablet => "tablet", "Tablet";
        Mobile => "mobile", "Mobile";
        /// Not known (crawlers, consoles, TVs, garbage) and no screen width.
        Unknown => "unknown", "Unknown";
    }
}

impl Device {
    /// The class of a screen `width` in CSS px (`screen.width`), as
    /// Plausible does: < 576 mobile, < 992 tablet, < 1440 laptop, else
    /// desktop.
    pub const fn from_screen_width(width: u32) -> Device {
        if width < MOBILE_BELOW {
            Device::Mobile
        } else if width < TABLET_BELOW {
            Device::Tablet
        } else if width < LAPTOP_BELOW {
            Device::Laptop
        } else {
            Device::Desktop
        }
    }
}

/// The dimensions whose values are these enums' labels, by name.
pub const CLOSED_DIMENSIONS: [&str; 3] = ["browser", "os", "device"];

/// The `(label, display name)` of every value of the closed dimension
/// `dimension` (`browser`, `os` or `device`; `None` for any other): what
/// APIs and dashboards show, and the labels filters take.
pub fn names(dimension: &str) -> Option<Vec<(&'static str, &'static str)>> {
    fn pairs<T: Copy>(
        all: &[T],
        label: fn(T) -> &'static str,
        title: fn(T) -> &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        all.iter().map(|v| (label(*v), title(*v))).collect()
    }
    match dimension {
        "browser" => Some(pairs(Browser::ALL, Browser::as_str, Browser::title)),
        "os" => Some(pairs(Os::ALL, Os::as_str, Os::title)),
        "device" => Some(pairs(Device::ALL, Device::as_str, Device::title)),
        _ => None,
    }
}

/// An OS version as the UA states it, in the OS's own numbering: Windows
/// `10`, `8.1`, `7`; macOS `10.15`, `14.2`; iOS `17.2`, `18.0`; Android
/// `14`, `8.1`. Shown as `major` or `major.minor` ([`fmt::Display`]), as
/// Plausible shows them.
///
/// What UAs freeze, and so what this can say:
/// - Windows 11 sends `Windows NT 10.0`: it is Windows `10`.
/// - Every current macOS browser sends `10_15_7` or `10.15`: macOS `10.15`
///   means 10.15 or later.
/// - Since iOS 26, the OS token says `18_6` or so; Safari's `Version/26.1`
///   then names the release (in-app views without it stay an iOS 18).
/// - Chrome on Android sends `Android 10; K` whatever the version (UA
///   reduction): no version, rather than a false `10`; so do recent
///   Samsung Internet and other Chromium browsers. Firefox and in-app
///   views send the real one.
/// - ChromeOS sends a frozen platform number: no version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OsVersion {
    pub major: u16,
    /// Shown when the UA states one (`8.1`, `18.0`).
    pub minor: Option<u16>,
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{minor}", self.major),
            None => write!(f, "{}", self.major),
        }
    }
}

impl FromStr for OsVersion {
    type Err = UnknownLabel;

    /// The inverse of `Display`: `17.2`, `10`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || UnknownLabel {
            kind: "os version",
            label: s.to_owned(),
        };
        let (major, minor) = match s.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let number = |n: &str| {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u16>().ok())
                .flatten()
        };
        let major = number(major).ok_or_else(bad)?;
        let minor = match minor {
            Some(m) => Some(number(m).ok_or_else(bad)?),
            None => None,
        };
        Ok(OsVersion { major, minor })
    }
}

impl OsVersion {
    const fn new(major: u16, minor: Option<u16>) -> OsVersion {
        OsVersion { major, minor }
    }

    /// `17.2.1`, `17_2`, `10.15.7` → major and minor (`None` when `s` does
    /// not start with a number).
    fn dotted(s: &str) -> Option<OsVersion> {
        let major = leading_u16(s)?;
        let rest = s.trim_start_matches(|c: char| c.is_ascii_digit());
        let minor = rest.strip_prefix(['.', '_']).and_then(leading_u16);
        Some(OsVersion::new(major, minor))
    }
}

/// What a User-Agent (plus screen width) says about the visitor's software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Agent {
    /// The browser.
    pub browser: Browser,
    /// The browser's major version, when the UA names one.
    pub browser_major: Option<u16>,
    /// The operating system.
    pub os: Os,
    /// The OS's version, when the UA states one that means something (see
    /// [`OsVersion`]).
    pub os_version: Option<OsVersion>,
    /// The device class.
    pub device: Device,
}

impl Agent {
    /// Nothing known.
    pub const UNKNOWN: Agent = Agent {
        browser: Browser::Unknown,
        browser_major: None,
        os: Os::Unknown,
        os_version: None,
        device: Device::Unknown,
    };
}

impl Default for Agent {
    fn default() -> Self {
        Agent::UNKNOWN
    }
}

/// Tokens that only iOS browsers send; in a `Macintosh` UA they mean an iPad
/// (or iPhone) asking for the desktop site.
const IOS_ONLY_TOKENS: &[&str] = &["CriOS/", "FxiOS/", "EdgiOS/", "OPiOS/", "OPT/", "GSA/"];

/// Browser tokens woothee misses or misreads, most specific first. The major
/// is the number after the token ([`Browser::Other`] gets none).
const BROWSER_OVERRIDES: &[(&str, Browser)] = &[
    ("UCBrowser/", Browser::UcBrowser),
    ("YaBrowser/", Browser::Yandex),
    // Meta Quest's browser also sends `SamsungBrowser/4.0`.
    ("OculusBrowser/", Browser::Other),
    // Opera Mini in its Presto mode: `Version/12.16` is Presto's.
    ("Opera Mini/", Browser::Opera),
    // Opera for Android, Opera Mini for Android in a WebView (`; wv)`, which
    // woothee calls "Webview"), and Opera for desktop.
    ("OPR/", Browser::Opera),
    // Opera GX for Android and iOS.
    ("OPX/", Browser::Opera),
    // Opera Touch and Opera Mini for iOS.
    ("OPT/", Browser::Opera),
    ("OPiOS/", Browser::Opera),
];

/// Every [`BROWSER_OVERRIDES`] token contains one of these: three scans rule
/// out most UAs before the table is tried token by token.
const OVERRIDE_HINTS: &[&str] = &["Browser/", "OP", "Opera Mini/"];

/// Tokens of smart TVs and TV sticks, whose device class is
/// [`Device::Unknown`] (woothee calls them Android phones or tablets, or Linux
/// desktops). `; AFT` is the Fire TV model (`AFTMM`, `AFTKA`, …); Fire
/// tablets are `KF…`.
const TV_TOKENS: &[&str] = &[
    "SMART-TV",
    "SmartTV",
    "; AFT",
    "BRAVIA",
    "Chromecast",
    "CrKey/",
    "GoogleTV",
    "Android TV",
    "HbbTV",
    "Web0S",
];

/// Parses a User-Agent. `screen_width` is the beacon's `screen.width` in CSS
/// px, if it sent one (0 counts as absent).
///
/// The device class comes from the screen width when there is one (see
/// [`Device::from_screen_width`]), from the UA otherwise, with two
/// corrections: a UA naming a phone/tablet OS is never a laptop or desktop
/// (a wide tablet stays a [`Device::Tablet`]); and a macOS UA on a screen
/// narrower than [`IPAD_AS_MAC_BELOW`] is an iPad or iPhone in desktop mode,
/// so [`Os::Ios`]. Only the first [`MAX_UA_BYTES`] bytes are read. Never
/// panics.
pub fn parse(user_agent: &str, screen_width: Option<u32>) -> Agent {
    let ua = truncate(user_agent.trim(), MAX_UA_BYTES);
    let Some(w) = woothee::parser::Parser::new().parse(ua) else {
        return with_width(Agent::UNKNOWN, screen_width);
    };

    let mut os = map_os(w.os);
    let mut device = match w.category {
        "pc" => Device::Desktop,
        "smartphone" if os == Os::Ios && (w.os == "iPad" || ua.contains("iPad")) => Device::Tablet,
        "smartphone"
            if os == Os::Android && !ua.contains("Mobile") && !ua.contains("Opera Mini/") =>
        {
            Device::Tablet
        }
        "smartphone" | "mobilephone" => Device::Mobile,
        _ => Device::Unknown,
    };
    if os == Os::MacOs && IOS_ONLY_TOKENS.iter().any(|t| ua.contains(t)) {
        os = Os::Ios;
        device = Device::Tablet;
    }
    if os == Os::Unknown {
        if let Some(harmony_device) = open_harmony_device(ua) {
            os = Os::Other;
            device = harmony_device;
        }
    }
    // Tizen TVs parse as no known OS, hence `Unknown` too.
    let tv = matches!(os, Os::Android | Os::Linux | Os::Unknown)
        && TV_TOKENS.iter().any(|t| ua.contains(t));
    if tv {
        device = Device::Unknown;
    }

    let overridden = if OVERRIDE_HINTS.iter().any(|hint| ua.contains(hint)) {
        BROWSER_OVERRIDES
            .iter()
            .find_map(|&(token, b)| token_major(ua, token).map(|major| (b, major)))
    } else {
        None
    };
    let (browser, browser_major) = match overridden {
        Some((Browser::Other, _)) => (Browser::Other, None),
        Some(found) => found,
        None => match w.name {
            "Chrome" => (Browser::Chrome, leading_u16(w.version)),
            "Firefox" => (Browser::Firefox, leading_u16(w.version)),
            // Without `Version/` (an in-app view that keeps `Safari/`), the
            // iOS major is the Safari major, as for "Webview" below.
            "Safari" if matches!(os, Os::MacOs | Os::Ios) => (
                Browser::Safari,
                leading_u16(w.version).or_else(|| {
                    (os == Os::Ios)
                        .then(|| leading_u16(&w.os_version))
                        .flatten()
                }),
            ),
            "Edge" => (Browser::Edge, leading_u16(w.version)),
            "Opera" => (Browser::Opera, leading_u16(w.version)),
            "SamsungBrowser" => (Browser::SamsungInternet, leading_u16(w.version)),
            "Internet Explorer" => (Browser::InternetExplorer, leading_u16(w.version)),
            "Yandex Browser" => (Browser::Yandex, leading_u16(w.version)),
            "Vivaldi" => (Browser::Vivaldi, leading_u16(w.version)),
            "Webview" => match token_major(ua, "Chrome/") {
                Some(major) => (Browser::Chrome, major),
                None if os == Os::Ios => (Browser::Safari, leading_u16(&w.os_version)),
                None => (Browser::Other, None),
            },
            // The Google app's in-app view on iOS is WebKit, as every other
            // in-app view there (Instagram, Snapchat): Safari, iOS major.
            _ if os == Os::Ios && ua.contains("GSA/") => {
                (Browser::Safari, leading_u16(&w.os_version))
            }
            woothee::woothee::VALUE_UNKNOWN => (Browser::Unknown, None),
            _ => (Browser::Other, None),
        },
    };
    if browser == Browser::Firefox && ua.contains("KAIOS") {
        os = Os::Other;
        device = Device::Mobile;
    }
    // Samsung Internet runs on Android only (and Tizen TVs, caught above); its
    // desktop mode, the default on Galaxy Tabs, sends `X11; Linux x86_64`.
    if browser == Browser::SamsungInternet && os == Os::Linux && !tv && ua.contains("X11;") {
        os = Os::Android;
        device = Device::Tablet;
    }

    let agent = Agent {
        browser,
        browser_major,
        os,
        os_version: os_version(os, &w, ua),
        device,
    };
    // A TV's screen says nothing about a phone, tablet or desktop: it stays
    // an unknown device whatever width it reports (960 px on a Fire TV).
    if tv {
        return agent;
    }
    with_width(agent, screen_width)
}

/// Applies the screen width to a UA-derived agent (see [`parse`]).
fn with_width(mut agent: Agent, screen_width: Option<u32>) -> Agent {
    let Some(width) = screen_width.filter(|&w| w > 0) else {
        return agent;
    };
    if agent.os == Os::MacOs && width < IPAD_AS_MAC_BELOW {
        agent.os = Os::Ios;
        // The macOS version an iPad sends in desktop mode is not its iOS's.
        agent.os_version = None;
        agent.device = Device::Tablet;
    }
    let by_width = Device::from_screen_width(width);
    let handheld = matches!(agent.device, Device::Mobile | Device::Tablet);
    agent.device = if handheld && matches!(by_width, Device::Laptop | Device::Desktop) {
        Device::Tablet
    } else {
        by_width
    };
    agent
}

/// The device class of a HarmonyOS NEXT UA (`Mozilla/5.0 (Phone; OpenHarmony
/// 5.0) …`, also `Tablet`, `PC`), which woothee does not know; `None` if `ua`
/// is not one.
fn open_harmony_device(ua: &str) -> Option<Device> {
    let (head, _) = ua.split_once("; OpenHarmony")?;
    Some(match head.rsplit('(').next() {
        Some("Phone") => Device::Mobile,
        Some("Tablet") => Device::Tablet,
        Some("PC") => Device::Desktop,
        _ => Device::Unknown,
    })
}

/// The version of `os` (as finally decided) that woothee's answer `w` and
/// the UA state; see [`OsVersion`] for what is left out and why.
fn os_version(os: Os, w: &woothee::parser::WootheeResult<'_>, ua: &str) -> Option<OsVersion> {
    match os {
        // woothee names the release; its version is the NT one.
        Os::Windows => match w.os {
            "Windows 10" => Some(OsVersion::new(10, None)),
            "Windows 8.1" => Some(OsVersion::new(8, Some(1))),
            "Windows 8" => Some(OsVersion::new(8, None)),
            "Windows 7" => Some(OsVersion::new(7, None)),
            _ => None,
        },
        // Not when an iPad's desktop-mode UA made it iOS: that version is
        // the frozen macOS one.
        // Read here: woothee reads only `10.x`.
        Os::MacOs => ua
            .split_once("Mac OS X ")
            .and_then(|(_, rest)| OsVersion::dotted(rest)),
        Os::Ios if !ua.contains("Macintosh") => {
            let stated = OsVersion::dotted(&w.os_version)?;
            // iOS 26 on: the OS token is frozen at 18; Safari's version is
            // the release's.
            let safari = ua
                .split_once("Version/")
                .and_then(|(_, rest)| OsVersion::dotted(rest))
                .filter(|v| stated.major == 18 && v.major >= 26);
            Some(safari.unwrap_or(stated))
        }
        // Chrome's reduced UA: the same `Android 10; K` on every version.
        Os::Android if ua.contains("Android 10; K)") => None,
        Os::Android => OsVersion::dotted(&w.os_version),
        _ => None,
    }
}

fn map_os(name: &str) -> Os {
    match name {
        "Windows Phone OS" | "Windows CE" => Os::Other,
        n if n.starts_with("Windows") => Os::Windows,
        "Mac OSX" | "Mac OS Classic" => Os::MacOs,
        "iPhone" | "iPad" | "iPod" | "iOS" => Os::Ios,
        "Android" => Os::Android,
        "Linux" => Os::Linux,
        "ChromeOS" => Os::ChromeOs,
        woothee::woothee::VALUE_UNKNOWN => Os::Unknown,
        _ => Os::Other,
    }
}

/// `Some(major)` when `token` occurs in `ua`; the major is the number right
/// after it, if any.
fn token_major(ua: &str, token: &str) -> Option<Option<u16>> {
    ua.split_once(token).map(|(_, rest)| leading_u16(rest))
}

/// The leading decimal digits of `s`, if they fit a `u16`.
fn leading_u16(s: &str) -> Option<u16> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use Browser as B;
    use Device as D;
    use Os as O;

    /// (UA, browser, major, OS, device from the UA alone)
    #[rustfmt::skip]
    const UAS: &[(&str, Browser, Option<u16>, Os, Device)] = &[
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            B::Chrome, Some(120), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            B::Edge, Some(120), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            B::Firefox, Some(121), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            B::Safari, Some(17), O::MacOs, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:121.0) Gecko/20100101 Firefox/121.0",
            B::Firefox, Some(121), O::MacOs, D::Desktop),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            B::Safari, Some(17), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            B::Safari, Some(17), O::Ios, D::Tablet),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            B::Chrome, Some(120), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
            B::Firefox, Some(121), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/120.2210.150 Mobile/15E148 Safari/605.1.15",
            B::Edge, Some(120), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 OPT/4.3.2 Mobile/15E148 Safari/604.1",
            B::Opera, Some(4), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) OPiOS/16.0.15.124050 Mobile/15E148 Safari/9537.53",
            B::Opera, Some(16), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 312.0.0.22.114 (iPhone14,5; iOS 17_1; en_US; en; scale=3.00; 1170x2532; 548339486)",
            B::Safari, Some(17), O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/297.0.595344536 Mobile/15E148 Safari/604.1",
            B::Safari, Some(17), O::Ios, D::Mobile),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Version/17.0 Safari/604.1",
            B::Chrome, Some(120), O::Ios, D::Tablet),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            B::Chrome, Some(120), O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            B::Chrome, Some(120), O::Android, D::Tablet),
        ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            B::SamsungInternet, Some(23), O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
            B::SamsungInternet, Some(23), O::Android, D::Tablet),
        ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
            B::Firefox, Some(121), O::Android, D::Mobile),
        ("Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
            B::Firefox, Some(121), O::Android, D::Tablet),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 OPR/79.1.4195.76488",
            B::Opera, Some(79), O::Android, D::Mobile),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
            B::Opera, Some(106), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
            B::Edge, Some(120), O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.0.110;]",
            B::Chrome, Some(120), O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2020 Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
            B::UcBrowser, Some(13), O::Android, D::Mobile),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36",
            B::Yandex, Some(23), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11 Safari/537.36",
            B::Yandex, Some(23), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5.3206.53",
            B::Vivaldi, Some(6), O::Windows, D::Desktop),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            B::Chrome, Some(120), O::ChromeOs, D::Desktop),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            B::Chrome, Some(120), O::Linux, D::Desktop),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            B::Firefox, Some(121), O::Linux, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
            B::InternetExplorer, Some(11), O::Windows, D::Desktop),
        ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
            B::InternetExplorer, Some(10), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
            B::Edge, Some(18), O::Windows, D::Desktop),
        ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.2.1 like Chrome/120.0.6099.230 Safari/537.36",
            B::Chrome, Some(120), O::Android, D::Tablet),
        ("Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
            B::Other, None, O::Android, D::Mobile),
        ("Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
            B::Other, None, O::Unknown, D::Unknown),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            B::Other, None, O::Unknown, D::Unknown),
        ("curl/8.4.0", B::Other, None, O::Unknown, D::Unknown),
        ("", B::Unknown, None, O::Unknown, D::Unknown),
        ("-", B::Unknown, None, O::Unknown, D::Unknown),
        ("\u{1F600} totally not a browser", B::Unknown, None, O::Unknown, D::Unknown),
    ];

    #[test]
    fn real_user_agents() {
        assert!(UAS.len() >= 15);
        for &(ua, browser, browser_major, os, device) in UAS {
            let got = parse(ua, None);
            let want = Agent {
                browser,
                browser_major,
                os,
                // Checked by `os_versions`.
                os_version: got.os_version,
                device,
            };
            assert_eq!(got, want, "{ua}");
        }
    }

    /// The golden files (see `core/tests/fixtures/useragent/README.md`).
    const GOLDEN: &[(&str, &str)] = &[(
        "current.tsv",
        include_str!("../tests/fixtures/useragent/current.tsv"),
    )];

    /// The UA lines of [`GOLDEN`]: (file, line number, the five fields).
    fn golden_lines() -> impl Iterator<Item = (&'static str, usize, Vec<&'static str>)> {
        GOLDEN.iter().flat_map(|&(file, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
                .map(move |(i, line)| (file, i + 1, line.split('\t').collect()))
        })
    }

    /// A TV reports its screen width like anything else (960 px on a Fire
    /// TV stick, 1920 on a set): it stays an unknown device.
    #[test]
    fn tvs_stay_unknown_devices_whatever_their_width() {
        let mut tvs = 0;
        for (file, line, fields) in golden_lines() {
            let [ua, .., device] = fields[..] else {
                continue;
            };
            if device != "unknown" || !TV_TOKENS.iter().any(|t| ua.contains(t)) {
                continue;
            }
            tvs += 1;
            for width in [960, 1920] {
                let got = parse(ua, Some(width)).device;
                assert_eq!(got, Device::Unknown, "{file}:{line} at {width} px: {ua}");
            }
        }
        assert!(tvs >= 5, "the golden file has TVs ({tvs})");
    }

    #[test]
    fn golden_fixtures() {
        let mut failures = Vec::new();
        let mut count = 0;
        for (file, line, fields) in golden_lines() {
            count += 1;
            let [ua, browser, major, os, device] = fields[..] else {
                panic!("{file}:{line}: want 5 tab-separated fields, got {fields:?}");
            };
            let got = parse(ua, None);
            let want = Agent {
                browser: browser.parse().expect(browser),
                browser_major: (major != "-").then(|| major.parse().expect(major)),
                os: os.parse().expect(os),
                // Checked by `os_versions_agree_with_the_golden_uas`.
                os_version: got.os_version,
                device: device.parse().expect(device),
            };
            if got != want {
                failures.push(format!(
                    "{file}:{line}: {ua}\n  want {want:?}\n  got  {got:?}"
                ));
            }
        }
        assert!(count >= 50, "golden files look truncated: {count}");
        assert!(
            failures.is_empty(),
            "{} of {count} golden UAs wrong:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn os_versions() {
        let shown = |ua: &str, width: Option<u32>| {
            let a = parse(ua, width);
            a.os_version.map(|v| format!("{} {v}", a.os))
        };
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            (WIN_CHROME, Some("windows 10")),
            ("Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", Some("windows 8.1")),
            ("Mozilla/5.0 (Windows NT 6.2; WOW64; rv:115.0) Gecko/20100101 Firefox/115.0", Some("windows 8")),
            ("Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0", Some("windows 7")),
            ("Mozilla/5.0 (Windows NT 5.1; rv:52.0) Gecko/20100101 Firefox/52.0", None),
            (MAC_SAFARI, Some("macos 10.15")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", Some("macos 10.15")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.2 Safari/605.1.15", Some("macos 10.13")),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15", Some("macos 14.2")),
            (IPAD, Some("ios 17.2")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", Some("ios 16.6")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1", Some("ios 18.0")),
            // iOS 26: the OS token frozen at 18_6, Safari's version the release's.
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1", Some("ios 26.1")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/22G86 Instagram 400.0.0.0.0", Some("ios 18.6")),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", Some("ios 17.2")),
            // An iPad in desktop mode: iOS, but the version sent is macOS's.
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Version/17.0 Safari/604.1", None),
            // Chrome's reduced UA says 10 on every Android.
            (ANDROID_PHONE, None),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", None),
            ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", Some("android 14")),
            ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", Some("android 13")),
            ("Mozilla/5.0 (Linux; Android 10; SM-G973F) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/21.0 Chrome/110.0.5481.154 Mobile Safari/537.36", Some("android 10")),
            ("Mozilla/5.0 (Linux; Android 8.1.0; Nexus 5X Build/OPM7.181205.001) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.99 Mobile Safari/537.36", Some("android 8.1")),
            ("Mozilla/5.0 (Linux; U; Android 4.4.2; en-us; SCH-I535 Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", Some("android 4.4")),
            ("Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.125 Mobile Safari/537.36", Some("android 7.0")),
            ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", None),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", None),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", None),
            ("", None),
        ];
        for &(ua, want) in cases {
            assert_eq!(shown(ua, None).as_deref(), want, "{ua}");
        }
        for v in ["10", "8.1", "18.0", "17.2", "65535.65535"] {
            assert_eq!(v.parse::<OsVersion>().unwrap().to_string(), v);
        }
        for v in ["", "8.", ".1", "8.1.2", "a", "-1", "65536", "1 "] {
            assert!(v.parse::<OsVersion>().is_err(), "{v}");
        }
        // iPadOS's desktop mode caught by the screen width: the macOS
        // version goes with macOS.
        assert_eq!(shown(MAC_SAFARI, Some(820)), None);
        assert_eq!(
            shown(MAC_SAFARI, Some(1440)).as_deref(),
            Some("macos 10.15")
        );
    }

    /// Every golden UA's version is the one its text states: the numbers
    /// after `OS `, `Mac OS X `, `Android ` or `Windows NT `.
    #[test]
    fn os_versions_agree_with_the_golden_uas() {
        let mut versions = std::collections::BTreeMap::new();
        for (file, line, fields) in golden_lines() {
            let ua = fields[0];
            let a = parse(ua, None);
            let Some(v) = a.os_version else { continue };
            let stated = match a.os {
                // From iOS 26 on, Safari's `Version/` names the release.
                Os::Ios if v.major >= 26 => ua.split_once("Version/").map(|(_, r)| r.to_string()),
                Os::Ios => [" OS ", "iOS "]
                    .iter()
                    .find_map(|t| ua.split_once(t))
                    .map(|(_, rest)| rest.replace('_', ".")),
                Os::MacOs => ua.split_once("Mac OS X ").map(|(_, r)| r.replace('_', ".")),
                Os::Android => ua.split_once("Android ").map(|(_, r)| r.to_string()),
                Os::Windows => ua.split_once("Windows NT ").map(|(_, r)| {
                    match r.get(..4) {
                        Some("10.0") => "10",
                        Some("6.3;" | "6.3)") => "8.1",
                        Some("6.2;" | "6.2)") => "8",
                        Some("6.1;" | "6.1)") => "7",
                        _ => "?",
                    }
                    .to_string()
                }),
                other => panic!("{file}:{line}: a version {v} for {other}"),
            };
            let stated = stated.unwrap_or_default();
            let shown = v.to_string();
            let next = stated[shown.len().min(stated.len())..].chars().next();
            assert!(
                stated.starts_with(&shown) && !next.is_some_and(|c| c.is_ascii_digit()),
                "{file}:{line}: {shown} for {ua}"
            );
            *versions.entry(a.os).or_insert(0) += 1;
        }
        // The corpus has versions of each OS that states one.
        for os in [Os::Windows, Os::MacOs, Os::Ios, Os::Android] {
            assert!(
                versions.get(&os).copied().unwrap_or(0) >= 3,
                "{os}: {versions:?}"
            );
        }
    }

    const MAC_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15";
    const WIN_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";

    #[test]
    fn screen_width_refines_device() {
        let cases = [
            (WIN_CHROME, Some(1920), O::Windows, D::Desktop),
            (WIN_CHROME, Some(1440), O::Windows, D::Desktop),
            (WIN_CHROME, Some(1366), O::Windows, D::Laptop),
            (WIN_CHROME, Some(800), O::Windows, D::Tablet),
            (WIN_CHROME, Some(0), O::Windows, D::Desktop),
            (ANDROID_PHONE, Some(412), O::Android, D::Mobile),
            (ANDROID_PHONE, Some(915), O::Android, D::Tablet),
            (ANDROID_PHONE, Some(2000), O::Android, D::Tablet),
            (IPAD, Some(1024), O::Ios, D::Tablet),
            (IPAD, None, O::Ios, D::Tablet),
            // iPadOS desktop mode: a macOS UA on an iPad-sized screen.
            (MAC_SAFARI, Some(820), O::Ios, D::Tablet),
            (MAC_SAFARI, Some(1024), O::Ios, D::Tablet),
            (MAC_SAFARI, Some(390), O::Ios, D::Mobile),
            (MAC_SAFARI, Some(1280), O::MacOs, D::Laptop),
            (MAC_SAFARI, Some(2560), O::MacOs, D::Desktop),
            (MAC_SAFARI, None, O::MacOs, D::Desktop),
            ("", Some(390), O::Unknown, D::Mobile),
        ];
        for (ua, width, os, device) in cases {
            let got = parse(ua, width);
            assert_eq!((got.os, got.device), (os, device), "{width:?} {ua}");
        }
        assert_eq!(Device::from_screen_width(575), D::Mobile);
        assert_eq!(Device::from_screen_width(576), D::Tablet);
        assert_eq!(Device::from_screen_width(991), D::Tablet);
        assert_eq!(Device::from_screen_width(992), D::Laptop);
        assert_eq!(Device::from_screen_width(1439), D::Laptop);
        assert_eq!(Device::from_screen_width(u32::MAX), D::Desktop);
    }

    #[test]
    fn labels_are_stable_and_round_trip() {
        fn check<T>(all: &[T], kind: &str)
        where
            T: Copy
                + fmt::Debug
                + PartialEq
                + fmt::Display
                + FromStr<Err = UnknownLabel>
                + Serialize,
        {
            let mut seen = std::collections::HashSet::new();
            for &v in all {
                let label = v.to_string();
                assert!(seen.insert(label.clone()), "duplicate {label}");
                assert!(
                    label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{label}"
                );
                assert_eq!(label.parse::<T>(), Ok(v));
                assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{label}\""));
            }
            let err = "Nope".parse::<T>().unwrap_err();
            assert_eq!(err.kind, kind);
        }
        check(Browser::ALL, "browser");
        check(Os::ALL, "os");
        check(Device::ALL, "device");
        assert_eq!(Browser::ALL.len(), 12);
        assert_eq!(Browser::SamsungInternet.title(), "Samsung Internet");
        assert_eq!(Os::MacOs.as_str(), "macos");
        assert_eq!(Os::MacOs.title(), "macOS");
        assert_eq!(Device::Laptop.title(), "Laptop");
        assert_eq!(Agent::default(), Agent::UNKNOWN);
    }

    #[test]
    fn every_override_token_has_a_hint() {
        for (token, _) in BROWSER_OVERRIDES {
            assert!(
                OVERRIDE_HINTS.iter().any(|hint| token.contains(hint)),
                "{token}"
            );
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(leading_u16("120.0"), Some(120));
        assert_eq!(leading_u16("99999"), None);
        assert_eq!(leading_u16("x1"), None);
        assert_eq!(leading_u16(""), None);
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        let long = format!("{WIN_CHROME}{}", " x".repeat(MAX_UA_BYTES));
        assert_eq!(parse(&long, None).browser, B::Chrome);
    }

    const TOKENS: &[&str] = &[
        "Mozilla/5.0 ",
        "(",
        ")",
        "; ",
        "Windows NT 10.0",
        "Macintosh",
        "Mac OS X 10_15_7",
        "iPhone",
        "iPad",
        "CPU OS 17_2 like Mac OS X",
        "Linux",
        "Android 14",
        "Mobile",
        "wv",
        "Chrome/",
        "CriOS/",
        "FxiOS/",
        "Edg/",
        "OPR/",
        "OPT/",
        "Safari/",
        "Version/",
        "Firefox/",
        "SamsungBrowser/",
        "YaBrowser/",
        "UCBrowser/",
        "Trident/",
        "MSIE ",
        "rv:",
        "X11; CrOS ",
        "120.0",
        "99999999",
        ".",
        "/",
        " ",
        "é",
        "\u{1F600}",
    ];

    proptest! {
        #[test]
        fn never_panics_on_anything(ua in ".*", width in proptest::option::of(any::<u32>())) {
            let agent = parse(&ua, width);
            if width.is_some_and(|w| w > 0) {
                prop_assert_ne!(agent.device, D::Unknown);
            }
        }

        #[test]
        fn never_panics_on_ua_like_soup(
            parts in proptest::collection::vec(proptest::sample::select(TOKENS), 0..40),
            width in proptest::option::of(0u32..4000),
        ) {
            let ua = parts.concat();
            let agent = parse(&ua, width);
            prop_assert!(Browser::ALL.contains(&agent.browser));
        }
    }
}
