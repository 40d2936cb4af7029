//! IP anonymisation: keep the network, drop the host.
//!
//! IPv4 keeps its /24 (the last octet becomes 0), IPv6 its /48 (the site
//! prefix; everything after the third group becomes 0). IPv4-mapped IPv6
//! (`::ffff:1.2.3.4`) is treated as the IPv4 address it carries, so the
//! result is IPv4. The result is the network address of the input's prefix,
//! so anonymising twice changes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Prefix kept of an IPv4 address.
pub const IPV4_PREFIX: u8 = 24;
/// Prefix kept of an IPv6 address.
pub const IPV6_PREFIX: u8 = 48;

/// The address with its host part zeroed: IPv4 → /24, IPv6 → /48, mapped
/// IPv6 → IPv4 /24.
pub fn anonymize(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(anonymize_v4(v4)),
        IpAddr::V6(v6) => IpAddr::V6(anonymize_v6(v6)),
    }
}

/// `a.b.c.d` → `a.b.c.0`.
pub fn anonymize_v4(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from_bits(ip.to_bits() & (u32::MAX << (32 - IPV4_PREFIX)))
}

/// Keeps the first 48 bits (three groups) of the address. Mapped addresses
/// are *not* converted here; use [`anonymize`] for that.
pub fn anonymize_v6(ip: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from_bits(ip.to_bits() & (u128::MAX << (128 - IPV6_PREFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn examples() {
        for (input, want) in [
            ("203.0.113.42", "203.0.113.0"),
            ("203.0.113.0", "203.0.113.0"),
            ("255.255.255.255", "255.255.255.0"),
            ("0.0.0.7", "0.0.0.0"),
            ("2001:db8:abcd:ef01::1", "2001:db8:abcd::"),
            ("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", "2001:db8:abcd::"),
            ("::1", "::"),
            ("::ffff:203.0.113.42", "203.0.113.0"),
            ("::ffff:10.1.2.3", "10.1.2.0"),
        ] {
            assert_eq!(anonymize(ip(input)), ip(want), "{input}");
        }
    }

    fn v4_in_same_24() -> impl Strategy<Value = (Ipv4Addr, Ipv4Addr)> {
        (any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(net, a, b)| {
            let net = net & 0xffff_ff00;
            (
                Ipv4Addr::from_bits(net | u32::from(a)),
                Ipv4Addr::from_bits(net | u32::from(b)),
            )
        })
    }

    proptest! {
        #[test]
        fn same_v4_24_same_output((a, b) in v4_in_same_24()) {
            prop_assert_eq!(anonymize(IpAddr::V4(a)), anonymize(IpAddr::V4(b)));
            prop_assert_eq!(
                anonymize(IpAddr::V6(a.to_ipv6_mapped())),
                anonymize(IpAddr::V4(b))
            );
        }

        #[test]
        fn same_v6_48_same_output(net in any::<u128>(), a in any::<u128>(), b in any::<u128>()) {
            let host = (1u128 << 80) - 1;
            let net = net & !host;
            let (a, b) = (Ipv6Addr::from_bits(net | (a & host)), Ipv6Addr::from_bits(net | (b & host)));
            // A mapped input becomes IPv4; both are in ::ffff:0:0/96, but only
            // compare the pure IPv6 case here.
            prop_assume!(a.to_ipv4_mapped().is_none() && b.to_ipv4_mapped().is_none());
            prop_assert_eq!(anonymize(IpAddr::V6(a)), anonymize(IpAddr::V6(b)));
        }

        #[test]
        fn idempotent_and_within_prefix(bits in any::<u128>(), v4 in any::<u32>()) {
            for input in [IpAddr::V6(Ipv6Addr::from_bits(bits)), IpAddr::V4(Ipv4Addr::from_bits(v4))] {
                let once = anonymize(input);
                prop_assert_eq!(anonymize(once), once);
                let input = input.to_canonical();
                match (input, once) {
                    (IpAddr::V4(i), IpAddr::V4(o)) => prop_assert_eq!(&i.octets()[..3], &o.octets()[..3]),
                    (IpAddr::V6(i), IpAddr::V6(o)) => prop_assert_eq!(&i.segments()[..3], &o.segments()[..3]),
                    _ => prop_assert!(false, "family changed: {input} -> {once}"),
                }
            }
        }
    }
}
