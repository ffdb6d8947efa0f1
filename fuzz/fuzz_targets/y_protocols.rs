#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| teleportal_core::fuzzing::y_protocols(data));
