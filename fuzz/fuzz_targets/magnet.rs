//! Fuzz target: `Magnet::parse`: `to_uri` parses back to the same value and is a fixed point.
//! The properties are in `seedtab::fuzzing::magnet` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::magnet(data));
