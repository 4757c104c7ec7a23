//! libFuzzer entry for atlasflow_fuzz::h5ad_reader (the body is shared with tests/fuzz_smoke.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| atlasflow_fuzz::h5ad_reader(data));
