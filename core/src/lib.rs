//! Tallymark's domain, shared by the browser SDK and the collector.
//!
//! Nothing here does I/O: the clock, salts, configuration and randomness are
//! arguments. Everything here builds for `wasm32-unknown-unknown`; parts only
//! the collector needs sit behind the `server` feature.
#![forbid(unsafe_code)]

pub mod wire;
