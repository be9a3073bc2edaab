//! `cargo +nightly fuzz run framer`: see `rtcbot::fuzzing::framer` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rtcbot::fuzzing::framer(data));
