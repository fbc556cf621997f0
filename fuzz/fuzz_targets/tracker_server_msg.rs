//! Fuzz target: `parse_tracker_events` (what clients read): event shape, SDP limit, tracker encoders round-trip.
//! The properties are in `seedtab::fuzzing::tracker_server_msg` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::tracker_server_msg(data));
