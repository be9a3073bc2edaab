//! `cargo +nightly fuzz run h264`: see `rtcbot::fuzzing::h264` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rtcbot::fuzzing::h264(data));
