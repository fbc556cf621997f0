//! Fuzz target: the tracker's WebSocket frame `Decoder` fed at a fuzzer-chosen split point: same messages and verdict however split, limits hold, frames built from the input read back intact.
//! The properties are in `seedtab::fuzzing::ws_frame` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::ws_frame(data));
