//! A 3x5 bitmap font, enough for the window's overlay: digits, letters (upper case),
//! and a little punctuation, drawn into a `0RGB` pixel buffer.

/// Five rows of three bits (high bit on the left), or `None` for an unknown character.
pub fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 3, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        '/' => [1, 1, 2, 4, 4],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        '%' => [5, 1, 2, 4, 5],
        '=' => [0, 7, 0, 7, 0],
        '?' => [7, 1, 3, 0, 2],
        '\'' => [2, 2, 0, 0, 0],
        '_' => [0, 0, 0, 0, 7],
        _ => return None,
    })
}

/// Width of one character cell at `scale`, with its one-pixel gap.
pub fn advance(scale: usize) -> usize {
    4 * scale
}

/// Draws `text` at (`x`, `y`) in a `width`-pixel-wide buffer, each font pixel a
/// `scale`-sized square of `color`, on a dark box so it reads over any picture;
/// unknown characters draw as `?`, and what falls outside is clipped.
pub fn draw_text(
    buffer: &mut [u32],
    width: usize,
    (x, y): (usize, usize),
    scale: usize,
    text: &str,
    color: u32,
) {
    let height = buffer.len() / width.max(1);
    let mut put = |px: usize, py: usize, c: u32| {
        if px < width && py < height {
            buffer[py * width + px] = c;
        }
    };
    let chars = text.chars().count();
    // The box: a cell's margin around the text.
    for by in y.saturating_sub(scale)..y + 6 * scale {
        for bx in x.saturating_sub(scale)..x + chars * advance(scale) {
            put(bx, by, 0x0010_1010);
        }
    }
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c).or_else(|| glyph('?')).unwrap_or_default();
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(
                            x + i * advance(scale) + col * scale + dx,
                            y + row * scale + dy,
                            color,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_character_the_overlay_uses_has_a_glyph() {
        for c in "0123456789 abcdefghijklmnopqrstuvwxyz.,:-+/()%=?'_".chars() {
            assert!(glyph(c).is_some(), "no glyph for {c:?}");
        }
        assert!(glyph('#').is_none());
    }

    #[test]
    fn text_draws_its_pixels_and_clips_at_the_edge() {
        let (w, h) = (16, 8);
        let mut buf = vec![0u32; w * h];
        draw_text(&mut buf, w, (1, 1), 1, "1", 0xffffff);
        // "1": row 0 is .#. at x 1..4.
        assert_eq!(&buf[w + 1..w + 4], &[0x101010, 0xffffff, 0x101010]);
        // The bottom row of "1" is ###.
        assert_eq!(&buf[5 * w + 1..5 * w + 4], &[0xffffff; 3]);
        // Far off the buffer: nothing drawn, nothing panics.
        draw_text(&mut buf, w, (100, 100), 2, "unknown #", 0xff);
        draw_text(&mut [], 0, (0, 0), 1, "x", 0xff);
    }
}
