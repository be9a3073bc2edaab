//! `cargo +nightly fuzz run structs`: see `rtcbot::fuzzing::structs` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rtcbot::fuzzing::structs(data));
