//! Fuzz target: `bencode::decode_with` under tight and default limits: canonical up to key order, limits respected, prefixes and `raw_dict_value` consistent.
//! The properties are in `seedtab::fuzzing::bencode` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::bencode(data));
