//! `cargo +nightly fuzz run y4m`: see `rtcbot::fuzzing::y4m` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rtcbot::fuzzing::y4m(data));
