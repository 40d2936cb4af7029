//! The Tallymark browser beacon.
//!
//! On start it sends one pageview, built from the core wire type, with
//! `navigator.sendBeacon` (a `text/plain` body: no CORS preflight), falling
//! back to `fetch(…, {keepalive: true})`. It never throws into the host page,
//! never sets a cookie and never writes client storage.

use tallymark_core::wire::PayloadV1;
use wasm_bindgen::prelude::*;

/// Starts the beacon for `site`, sending to `endpoint`: one pageview now.
#[wasm_bindgen]
pub fn start(site: &str, endpoint: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(url) = window.location().href() else {
        return;
    };
    let referrer = window
        .document()
        .map(|d| d.referrer())
        .filter(|r| !r.is_empty());
    let mut payload = PayloadV1::pageview(site, url);
    payload.referrer = referrer;
    if payload.check_limits().is_err() {
        return;
    }
    send(&window, endpoint, &payload.to_json());
}

/// Delivers one body: sendBeacon first, fetch keepalive when that is missing
/// or refuses. Every failure is swallowed.
fn send(window: &web_sys::Window, endpoint: &str, body: &str) {
    let navigator = window.navigator();
    if let Ok(true) = navigator.send_beacon_with_opt_str(endpoint, Some(body)) {
        return;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // `keepalive` and `priority` are not in web-sys's stable RequestInit.
    let _ = js_sys::Reflect::set(&init, &JsValue::from_str("keepalive"), &JsValue::TRUE);
    let _ = js_sys::Reflect::set(
        &init,
        &JsValue::from_str("priority"),
        &JsValue::from_str("low"),
    );
    let promise = window.fetch_with_str_and_init(endpoint, &init);
    IGNORE.with(|ignore| {
        let _ = promise.catch(ignore);
    });
}

thread_local! {
    /// One shared rejection handler, so a failed fetch is never an
    /// "uncaught (in promise)" error in the host page.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}
