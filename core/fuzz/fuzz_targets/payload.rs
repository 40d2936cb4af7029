//! Any body: parse, and on success the later pure stages, must not panic;
//! whatever parses must re-encode to JSON that parses to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallymark_core::{validate, wire};

fuzz_target!(|body: &[u8]| {
    if let Ok(payload) = wire::parse(body) {
        let encoded = payload.to_json();
        let again = wire::parse(encoded.as_bytes());
        assert_eq!(again.as_ref(), Ok(&payload), "to_json/parse disagree: {encoded}");
        let _ = validate::validate(payload);
    }
});
