//! What the `rtcbot-client` binary's tests share: where the binary is, and the test
//! pattern's colour bars as a screen or a PNG shows them.

use std::path::PathBuf;

/// `target/<profile>/rtcbot-client` (`cargo test --workspace` builds it; alone:
/// `cargo build -p rtcbot-native --bin rtcbot-client`).
pub fn client_exe() -> PathBuf {
    // The tests run from target/<profile>/deps/.
    let exe = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target folder")
        .join("rtcbot-client");
    assert!(
        exe.is_file(),
        "{} is missing: build it with `cargo build -p rtcbot-native --bin rtcbot-client`",
        exe.display()
    );
    exe
}

/// The test pattern's 75% bars in RGB, left to right (its Y'CbCr values converted).
pub const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

/// The bars that differ from [`BARS`] by more than H.264 does, in a 640-wide RGB
/// picture at row `y` (each bar's middle): `(bar, x, found)`; empty when all match.
pub fn wrong_bars(rgb: &[u8], y: usize) -> Vec<(usize, usize, [u8; 3])> {
    BARS.iter()
        .enumerate()
        .filter_map(|(i, want)| {
            let x = i * 640 / 7 + 640 / 14;
            let px: [u8; 3] = rgb.get((y * 640 + x) * 3..)?.get(..3)?.try_into().ok()?;
            let close = px.iter().zip(want).all(|(g, w)| g.abs_diff(*w) <= 24);
            (!close).then_some((i, x, px))
        })
        .collect()
}
