//! Fuzz target: `MetadataMsg::decode` round trip, and a `MetadataAssembler` fed lying sizes and pieces, checked against a model.
//! The properties are in `seedtab::fuzzing::ut_metadata` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::ut_metadata(data));
