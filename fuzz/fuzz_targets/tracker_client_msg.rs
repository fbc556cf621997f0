//! Fuzz target: `parse_client_message` (what the tracker reads, incl. the SDP field checks): limits respected, client encoders round-trip, failures readable by clients.
//! The properties are in `seedtab::fuzzing::tracker_client_msg` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::tracker_client_msg(data));
