// The npm package in Node 20: it installs from the packed tarball and imports with
// --experimental-wasm-modules (the `node` entry is wasm-bindgen's bundler build,
// which imports the .wasm as an ES module). Node has no WebRTC: the protocol helpers
// and Queue work, the browser-only classes refuse with a clear error.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { installPackage, run } from '../lib/harness.mjs';

let project;
before(async () => { project = await installPackage('rtcbot-node-'); });
after(() => { if (project) rmSync(project, { recursive: true, force: true }); });

const node = (code) => run(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', code], { cwd: project });

test('Node imports the package and the protocol helpers work', async () => {
  const { code, stdout, stderr } = await node(`
    import * as rtcbot from 'rtcbot-rs';
    const out = {};
    out.exports = Object.keys(rtcbot).sort();
    out.drive = rtcbot.driveMessage(0.5, -0.25, 7);
    out.stats = rtcbot.parseTelemetry('{"type":"stats","viewers":1,"frames_encoded":10,"fps":30,"bitrate_kbps":500,"width":640,"height":480,"encoder":"test"}');
    out.text = rtcbot.parseTelemetry('hello');
    out.json = rtcbot.parseTelemetry('{"data":"pong"}');
    const q = new rtcbot.Queue();
    const waiting = q.get();
    const put = q.put_nowait;  // bound, like rtcbot.js
    put('a'); put({ b: 2 }); put('c');
    out.queue = [await waiting, await q.get(), q.qsize(), await q.get(), q.empty()];
    const errors = {};
    for (const [name, f] of Object.entries({
      rtc: () => new rtcbot.RTCConnection(),
      keyboard: () => new rtcbot.Keyboard(),
      gamepad: () => new rtcbot.Gamepad(),
      range: () => rtcbot.driveMessage(2, 0),
      nan: () => rtcbot.driveMessage(NaN, 0),
      seq: () => rtcbot.driveMessage(0, 0, -1),
      malformed: () => rtcbot.parseTelemetry('{"type":"stats","fps":"fast"}'),
      notText: () => rtcbot.parseTelemetry(42),
      rate: () => rtcbot.setGamepadRate(0),
    })) {
      try { f(); errors[name] = 'no error'; } catch (e) { errors[name] = e instanceof Error ? e.message : String(e); }
    }
    out.errors = errors;
    console.log(JSON.stringify(out));
  `);
  assert.equal(code, 0, `node failed:\n${stderr}`);
  const out = JSON.parse(stdout.trim().split('\n').pop());
  for (const name of ['RTCConnection', 'Keyboard', 'Gamepad', 'setGamepadRate', 'Queue', 'DriveSender', 'driveMessage', 'parseTelemetry']) {
    assert.ok(out.exports.includes(name), `missing export ${name} in ${out.exports}`);
  }
  assert.deepEqual(JSON.parse(out.drive), { type: 'drive', forward: 0.5, turn: -0.25, seq: 7 });
  assert.deepEqual(out.stats, { type: 'stats', viewers: 1, frames_encoded: 10, fps: 30, frames_skipped: 0, max_gap_ms: 0, bitrate_kbps: 500, width: 640, height: 480, encoder: 'test' });
  assert.equal(out.text, null);
  assert.equal(out.json, null);
  assert.deepEqual(out.queue, ['a', { b: 2 }, 1, 'c', true]);
  const e = out.errors;
  assert.match(e.rtc, /RTCConnection: this environment has no WebRTC/);
  assert.match(e.keyboard, /Keyboard needs a browser window/);
  assert.match(e.gamepad, /Gamepad needs a browser window/);
  assert.match(e.range, /driveMessage: .*forward/);
  assert.match(e.nan, /driveMessage: forward must be a finite number/);
  assert.match(e.seq, /driveMessage: seq must be a non-negative integer/);
  assert.match(e.malformed, /parseTelemetry: /);
  assert.match(e.notText, /parseTelemetry expects the text of a message, got a number \(42\)/);
  assert.match(e.rate, /setGamepadRate expects a positive number of Hz, got a number \(0\)/);
});

test('the README example for Node prints the drive message', async () => {
  const { code, stdout, stderr } = await node(`
    import { driveMessage } from 'rtcbot-rs';
    console.log(driveMessage(0.5, -0.25, 7));
  `);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim(), '{"forward":0.5,"seq":7,"turn":-0.25,"type":"drive"}');
});
