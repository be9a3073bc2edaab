// Sound for the audio tests: a test tone to feed Chromium's fake microphone, and the
// robot's speaker file read back (the last samples of a 16-bit mono WAV, a Goertzel
// power at one frequency), so a test can tell which tone the robot played.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** The sample rate of every WAV here (the robot's speaker file is 48 kHz too). */
export const RATE = 48_000;

/** Writes a 48 kHz mono 16-bit WAV of a `hz` sine, `seconds` long, at half scale. */
export function sineWav(path, hz, seconds) {
  const n = RATE * seconds;
  const wav = Buffer.alloc(44 + n * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + n * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(RATE, 24);
  wav.writeUInt32LE(RATE * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i += 1) {
    wav.writeInt16LE(Math.round(16_000 * Math.sin((2 * Math.PI * hz * i) / RATE)), 44 + i * 2);
  }
  writeFileSync(path, wav);
}

/** The last `count` samples (-1..1) of a 16-bit mono WAV's data chunk, or null. */
export function lastSamples(path, count) {
  if (!existsSync(path)) return null;
  const wav = readFileSync(path);
  let at = 12;
  while (at + 8 <= wav.length) {
    const id = wav.toString('ascii', at, at + 4);
    if (id === 'data') {
      // The size in the header may lag the writer: read what is there.
      const end = wav.length - ((wav.length - at - 8) % 2);
      const samples = (end - at - 8) / 2;
      if (samples < count) return null;
      const out = new Float64Array(count);
      for (let i = 0; i < count; i += 1) out[i] = wav.readInt16LE(end - (count - i) * 2) / 32768;
      return out;
    }
    at += 8 + wav.readUInt32LE(at + 4);
  }
  return null;
}

/** Goertzel power of `samples` at `hz`, per sample. */
export function power(samples, hz) {
  const k = 2 * Math.cos((2 * Math.PI * hz) / RATE);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / samples.length;
}

/**
 * Throws unless the last second of the WAV at `path` is dominated by `hz`: its power
 * there is audible and 20 times that at each of `others` (the message says the powers).
 */
export function assertLastSecondIs(path, hz, others = [1000, 440]) {
  const samples = lastSamples(path, RATE);
  if (!samples) throw new Error(`no second of samples in ${path} yet`);
  const p = power(samples, hz);
  const rest = others.map((f) => [f, power(samples, f)]);
  const text = [[hz, p], ...rest].map(([f, v]) => `${f}: ${v.toExponential(2)}`).join(', ');
  if (p > 1e-4 && rest.every(([, v]) => p > 20 * v)) return true;
  throw new Error(`powers ${text}`);
}
