#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| teleportal_core::fuzzing::yjs_update_v2(data));
