//! libFuzzer entry for atlasflow_fuzz::spec_yaml (the body is shared with tests/fuzz_smoke.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| atlasflow_fuzz::spec_yaml(data));
