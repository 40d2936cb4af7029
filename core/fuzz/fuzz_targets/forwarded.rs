//! Any forwarding headers from a trusted or untrusted peer: never a panic,
//! and the answer is the peer unless the peer is trusted.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use tallymark_core::client_ip::{Forwarding, TrustedProxies, client_ip};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let headers = Forwarding {
        forwarded: parts.next().into_iter().collect(),
        x_forwarded_for: parts.next().into_iter().collect(),
        x_real_ip: parts.next(),
        cf_connecting_ip: parts.next(),
    };
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let trusted: TrustedProxies = "10.0.0.0/8,2001:db8::/32".parse().unwrap_or_default();
    let _ = client_ip(peer, &headers, &trusted);
    let untrusted = TrustedProxies::default();
    assert_eq!(client_ip(peer, &headers, &untrusted), peer);
    if let Some(list) = parts.next() {
        let _ = list.parse::<TrustedProxies>();
    }
});
