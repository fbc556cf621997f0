//! Fuzz target: `signal::server::Tracker` driven by a script of frames from four connections with a virtual clock: no panic, every frame readable by clients, peers and swarms bounded and consistent.
//! The properties are in `seedtab::fuzzing::tracker_state` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::tracker_state(data));
