//! Fuzz target: the incremental wire `Decoder` fed at fuzzer-chosen split points: same frames however split, bounded buffering, frames re-encode to the input.
//! The properties are in `seedtab::fuzzing::wire_decoder` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::wire_decoder(data));
