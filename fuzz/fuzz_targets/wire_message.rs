//! Fuzz target: `Message::decode` and `Handshake::decode`: what decodes re-encodes to the input; extension payloads routed on.
//! The properties are in `seedtab::fuzzing::wire_message` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::wire_message(data));
