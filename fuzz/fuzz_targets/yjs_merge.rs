#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| teleportal_core::fuzzing::yjs_merge(data));
