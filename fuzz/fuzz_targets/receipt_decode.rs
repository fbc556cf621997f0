//! Fuzz target: `SignedReceipt::decode` and `verify`: whatever decodes is canonical, bounded and verifies without panicking.
//! The properties are in `seedtab::fuzzing::receipt_decode` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::receipt_decode(data));
