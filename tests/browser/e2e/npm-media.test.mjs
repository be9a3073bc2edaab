// The npm package's RTCConnection sending a microphone after it connected: the track
// put with `conn.audio.putSubscription(track)` once the session is up is renegotiated
// over the data channel, and the robot plays it (Chromium's fake microphone playing a
// 660 Hz WAV made here; the robot's speaker is a WAV file, playing everyone's audio).
// The package is the packed tarball installed by npm, loaded through an import map.
// And RTCBot's own tutorial order: the microphone put before connecting goes in the
// first offer, on the m-line the robot's own sound (its test tone) comes back on.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertLastSecondIs, sineWav } from '../lib/audio.mjs';
import { eventually, installPackage, launchBrowser, startRobotServing } from '../lib/harness.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><title>npm media</title>
<script type="importmap">{ "imports": { "rtcbot-rs": "/node_modules/rtcbot-rs/web/index.js" } }</script>
<script type="module">import * as rtcbot from "rtcbot-rs"; window.rtcbot = rtcbot;</script>`;

let project;
let dir;
let robot;
let browser;

before(async () => {
  project = await installPackage('rtcbot-npm-media-');
  writeFileSync(join(project, 'index.html'), PAGE);
  dir = mkdtempSync(join(tmpdir(), 'rtcbot-npm-media-'));
  const wav = join(dir, 'mic-660hz.wav');
  sineWav(wav, 660, 4);
  robot = await startRobotServing(project, {
    args: ['--audio', 'tone', '--speaker', `file:${join(dir, 'heard.wav')}`, '--play-audio-from', 'everyone'],
  });
  browser = await launchBrowser({
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
  });
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  for (const d of [project, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

test('RTCConnection: a microphone put after connecting is renegotiated and the robot plays it', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) errors.push(msg.text());
  });
  await page.goto(`${robot.url}/index.html`);
  await eventually('the package to load', () => page.evaluate(() => Boolean(window.rtcbot)));

  // Connected first, with nothing to send: the offer has no microphone in it.
  await page.evaluate(async () => {
    window.conn = new window.rtcbot.RTCConnection(true, { iceServers: [] });
    await window.conn.connect('/connect');
  });
  await eventually('the connection to be up', () =>
    page.evaluate(() => window.conn.peerConnection.connectionState === 'connected'));
  const health = () => robot.health();
  const before = (await health()).peer_media?.[0];
  assert.ok(before, 'the robot lists the page among its peers');
  const decodedBefore = (await health()).audio.decoded_blocks;

  await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    window.conn.audio.putSubscription(stream.getAudioTracks()[0]);
  });

  await eventually('the robot to count a renegotiation', async () => {
    const m = (await health()).peer_media?.[0];
    if (m?.renegotiations >= before.renegotiations + 1) return true;
    const page_count = await page.evaluate(() => window.conn.renegotiations);
    throw new Error(`robot: ${JSON.stringify(m)}, page: ${page_count}; errors: ${errors.join(' | ')}`);
  });
  await eventually('the page to count the renegotiation', () => page.evaluate(() => window.conn.renegotiations >= 1));
  await eventually('the robot to decode the microphone', async () => {
    const decoded = (await health()).audio.decoded_blocks;
    if (decoded > decodedBefore + 10) return true;
    throw new Error(`${decoded} blocks decoded (${decodedBefore} before)`);
  });
  const heard = join(dir, 'heard.wav');
  await eventually('660 Hz in the last second of the robot\'s speaker file', () => assertLastSecondIs(heard, 660));
  assert.equal(await page.evaluate(() => window.conn.peerConnection.connectionState), 'connected', 'the same session');
  assert.deepEqual(errors, []);
  await page.evaluate(() => window.conn.close());
  await page.close();
});

test('RTCConnection: a microphone put before connecting shares its m-line with the robot\'s sound', async () => {
  const page = await browser.newPage();
  await page.goto(`${robot.url}/index.html`);
  await eventually('the package to load', () => page.evaluate(() => Boolean(window.rtcbot)));
  const health = () => robot.health();
  const decodedBefore = (await health()).audio.decoded_blocks;
  await page.evaluate(async () => {
    window.conn = new window.rtcbot.RTCConnection(true, { iceServers: [] });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    window.conn.audio.putSubscription(stream.getAudioTracks()[0]);
    window.robotSound = null;
    window.conn.audio.subscribe((s) => { window.robotSound = s; });
    await window.conn.connect('/connect');
  });
  await eventually('the connection to be up', () =>
    page.evaluate(() => window.conn.peerConnection.connectionState === 'connected'));
  await eventually('the robot to send its sound and hear the microphone', async () => {
    const h = await health();
    const m = h.peer_media?.find((p) => p.audio_in);
    if (m?.audio_out && h.audio.decoded_blocks > decodedBefore + 10) return true;
    throw new Error(`peer_media ${JSON.stringify(h.peer_media)}, ${h.audio.decoded_blocks} blocks decoded (${decodedBefore} before)`);
  });
  await eventually('the page to get the robot\'s sound', () =>
    page.evaluate(() => window.robotSound?.getAudioTracks().length === 1));
  await page.evaluate(() => window.conn.close());
  await page.close();
});
