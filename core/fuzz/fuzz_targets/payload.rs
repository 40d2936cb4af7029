//! Any body: parse (v1, or Plausible's format translated into v1), and on
//! success the later pure stages, must not panic; whatever parses must
//! re-encode to JSON that parses to the same payload, numbers kept to the
//! encoder's 15 significant digits (see `push_f64`), and re-encoding that is
//! stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallymark_core::intake::{self, Incoming};
use tallymark_core::wire::{PayloadV1, PropValue};
use tallymark_core::{validate, wire};

/// Equal up to 15 significant digits.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-14 * a.abs().max(b.abs()) + 1e-300
}

fn same(a: &PayloadV1, b: &PayloadV1) -> bool {
    let props = match (&a.props, &b.props) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|((ka, va), (kb, vb))| {
                    ka == kb
                        && match (va, vb) {
                            (PropValue::Number(m), PropValue::Number(n)) => close(*m, *n),
                            (m, n) => m == n,
                        }
                })
        }
        (x, y) => x == y,
    };
    let revenue = match (&a.revenue, &b.revenue) {
        (Some(x), Some(y)) => x.currency == y.currency && close(x.amount, y.amount),
        (x, y) => x == y,
    };
    props
        && revenue
        && a.kind == b.kind
        && a.site == b.site
        && a.url == b.url
        && a.referrer == b.referrer
        && a.screen_width == b.screen_width
        && a.name == b.name
        && a.event_id == b.event_id
}

fuzz_target!(|body: &[u8]| {
    if let Ok(Incoming::Event { payload, .. }) = intake::parse(body) {
        let encoded = payload.to_json();
        let again = wire::parse(encoded.as_bytes());
        assert!(
            again.as_ref().is_ok_and(|p| same(p, &payload)),
            "to_json/parse disagree: {encoded} → {again:?}"
        );
        if let Ok(again) = again {
            assert_eq!(again.to_json(), encoded, "re-encoding is not stable");
        }
        let _ = validate::validate(payload);
    }
});
