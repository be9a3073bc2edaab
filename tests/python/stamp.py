"""rtcbot-rs's frame stamp (shared-protocol/src/stamp.rs) in numpy, and the tests'
events on stdout.

The stamp is a frame number and capture time painted into the top-left corner of a
picture as four rows of 32 black or white blocks (frame, capture time high and low
words, check word); it survives H.264. The Python robot paints it into its frames (the
Rust test reads it back with `Stamp::read`); the Python client reads it from what our
robot sends.
"""

import json
import os
import time

import numpy as np

BITS = 32
ROWS = 4
CHECK_SALT = 0x5A5AA5A5
WHITE = 235
BLACK = 16


def block_size(width):
    return max(4, min(16, width // 40)) & ~1


def paint(frame, number):
    """Paints frame `number` and the time now into a BGR picture (numpy, h x w x 3)."""
    capture_us = time.time_ns() // 1000
    hi, lo = capture_us >> 32, capture_us & 0xFFFFFFFF
    b = block_size(frame.shape[1])
    for row, word in enumerate([number, hi, lo, number ^ hi ^ lo ^ CHECK_SALT]):
        for bit in range(BITS):
            on = (word >> (BITS - 1 - bit)) & 1
            frame[row * b : (row + 1) * b, bit * b : (bit + 1) * b] = WHITE if on else BLACK


def read(frame):
    """The (frame number, capture time in µs) painted into a BGR picture, else None."""
    height, width = frame.shape[:2]
    b = block_size(width)
    if BITS * b > width or ROWS * b > height:
        return None
    # Luma, as the Rust reader sees it after decoding.
    luma = frame[..., 2] * 0.299 + frame[..., 1] * 0.587 + frame[..., 0] * 0.114
    words = []
    for row in range(ROWS):
        word = 0
        for bit in range(BITS):
            x, y = bit * b + b // 2, row * b + b // 2
            word = (word << 1) | int(luma[y - 1 : y + 1, x - 1 : x + 1].mean() >= 128)
        words.append(word)
    number, hi, lo, check = words
    if number ^ hi ^ lo ^ CHECK_SALT != check:
        return None
    return number, (hi << 32) | lo


def event(name, **fields):
    """One event for the Rust test: a JSON line on stdout."""
    print(json.dumps({"event": name, **fields}), flush=True)


def fail_on_error(what):
    """A callback for RTCBot's onError: says what failed and exits."""

    def callback(err):
        event("error", what=what, error=repr(err))
        os._exit(1)

    return callback
