//! `cargo +nightly fuzz run control`: see `rtcbot::fuzzing::control` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rtcbot::fuzzing::control(data));
