//! Tallymark's domain, shared by the browser SDK and the collector.
//!
//! Nothing here does I/O: the clock, salts, configuration and randomness are
//! arguments. Everything here builds for `wasm32-unknown-unknown`; parts only
//! the collector needs sit behind the `server` feature.
//!
//! The collector's ingest path calls the pure stages in this order, cheapest
//! first: [`intake`] ([`wire`]'s v1 parse + limits, or Plausible's format
//! translated into v1) → [`validate`] → [`classify`] (with
//! [`bots`] and the referrer-spam list of [`source`]) → [`visitor`] →
//! [`session`]; [`client_ip`], [`anonymize`], [`source`] and [`useragent`]
//! derive the event's dimensions.
#![forbid(unsafe_code)]
// Without `server` (the browser SDK's build) only `wire` is compiled, and it
// needs no more than `alloc`: no_std lets the SDK keep std's panic machinery,
// and with it `core::fmt`, out of the wasm.
#![cfg_attr(not(feature = "server"), no_std)]

extern crate alloc;

pub mod wire;

#[cfg(feature = "server")]
pub mod anonymize;
#[cfg(feature = "server")]
pub mod bots;
#[cfg(feature = "server")]
pub mod classify;
#[cfg(feature = "server")]
pub mod client_ip;
#[cfg(feature = "server")]
pub mod intake;
#[cfg(feature = "server")]
pub mod session;
#[cfg(feature = "server")]
pub mod source;
#[cfg(feature = "server")]
pub mod useragent;
#[cfg(feature = "server")]
pub mod validate;
#[cfg(feature = "server")]
pub mod visitor;
