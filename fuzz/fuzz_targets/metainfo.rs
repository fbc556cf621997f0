//! Fuzz target: `Metainfo::from_torrent_bytes` and `from_info_bytes`: consistent pieces, files and info-hash; `to_torrent_bytes` round-trips.
//! The properties are in `seedtab::fuzzing::metainfo` (src/fuzzing.rs), shared with the stable
//! replay test tests/fuzz_seeds.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seedtab::fuzzing::metainfo(data));
