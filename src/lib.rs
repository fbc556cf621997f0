//! seedtab: a BitTorrent peer for browser tabs, with a sans-IO core.
//!
//! Everything outside `web` and `native` is plain Rust that never touches a socket, a clock or a
//! random source: time and randomness come in as arguments, bytes and events go out as values.
//! `web` (wasm32 only) and `native` (feature `native`) are the drivers that do the I/O.

pub mod bencode;
pub mod bitfield;
pub mod create;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod ledger;
pub mod magnet;
pub mod metainfo;
pub mod receipt;
pub mod rng;
pub mod signal;
pub mod store;
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub mod testdir;
pub mod wire;

#[cfg(feature = "native")]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod web;
