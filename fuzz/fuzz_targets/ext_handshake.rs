//! Fuzz target: `ExtendedHandshake::decode` (incl. the receipt extension's key and session fields): round trip, usable ids, trailing bytes ignored.
//! The properties are in `seedtab::fuzzing::ext_handshake` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::ext_handshake(data));
