// Audio both ways and media renegotiated over the data channel, in one session:
// the robot's tone (`--audio tone`: 1000 Hz bursts) reaches the page's meter after a
// tap on Listen; the page's microphone (Chromium's fake device playing a 660 Hz WAV
// made here) reaches the robot's speaker file; the page's camera reaches the robot's
// decoder; and switching the microphone off and on three times renegotiates each
// time without the robot's video stopping or the data channel closing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertLastSecondIs, sineWav } from '../lib/audio.mjs';
import { ARTIFACTS, RECORD_DATA_CHANNELS, eventually, launchBrowser, startRobot } from '../lib/harness.mjs';

let dir;
let robot;
let browser;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rtcbot-audio-'));
  const wav = join(dir, 'mic-660hz.wav');
  sineWav(wav, 660, 4);
  robot = await startRobot({ args: ['--audio', 'tone', '--speaker', `file:${join(dir, 'heard.wav')}`] });
  browser = await launchBrowser({
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
  });
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('audio both ways, the camera to the robot, and media toggles renegotiated in one session', async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.addInitScript(RECORD_DATA_CHANNELS);
  await page.goto(robot.url);
  const attr = (name) => page.locator('#app').getAttribute(`data-${name}`);
  const num = async (name) => Number(await attr(name));
  await eventually('the page to be live', async () => (await attr('conn')) === 'live');
  await eventually('the robot\'s video to play', async () => (await num('frames')) > 5);

  /** The page's session is the first one, every data channel still open. */
  const sameSession = async (when) => {
    assert.equal(await attr('sessions'), '1', `one session ${when}`);
    assert.equal(await attr('conn'), 'live', `live ${when}`);
    const states = await page.evaluate(() => window.__channels.map((dc) => dc.readyState));
    assert.ok(states.length >= 1 && states.every((s) => s === 'open'), `data channels ${states} ${when}`);
  };
  /** The robot's video goes on: the page presents new frames. */
  const videoAdvances = async (when) => {
    const before = await num('frames');
    await eventually(`the robot's video to keep playing ${when} (frames past ${before})`, async () => (await num('frames')) >= before + 5);
  };
  /** Waits for the page's completed renegotiations to reach `n`. */
  const renegotiated = (n, what) => eventually(`renegotiation ${n} (${what})`, async () => {
    const done = await num('renegotiations');
    if (done >= n) return true;
    const toast = await page.locator('.toast').textContent({ timeout: 50 }).catch(() => '');
    // Thrown, not returned: `eventually` keeps it as the last state for its message.
    throw new Error(`${done} done, robot counts ${(await health()).peer_media?.[0]?.renegotiations}; notice: ${toast}`);
  });
  const health = () => robot.health();

  // a. The robot's tone on the page's meter, after one tap to listen.
  await eventually('the robot\'s audio to arrive (Listen enabled)', () => page.locator('#listen-button').isEnabled());
  assert.equal(await page.locator('#listen-button').textContent(), 'Listen');
  assert.equal(await page.evaluate(() => document.getElementById('robot-audio').muted), true, 'starts muted');
  await page.click('#listen-button');
  assert.equal(await page.locator('#listen-button').textContent(), 'Mute');
  assert.equal(await page.evaluate(() => document.getElementById('robot-audio').muted), false);
  await eventually('the page to hear the robot\'s 1000 Hz tone', async () => {
    const hz = Number(await attr('robot-audio-hz'));
    if (Math.abs(hz - 1000) <= 60) return hz;
    throw new Error(`${hz} Hz`);
  });
  assert.equal((await health()).audio.source, 'tone');

  // b. The page's 660 Hz microphone in the robot's speaker file. Only the driver's
  // audio plays (the robot's default): the page drives a moment first.
  await page.focus('#app').catch(() => {});
  await page.keyboard.down('w');
  await eventually('the page to be the driver', async () => (await health()).driver === true);
  await page.keyboard.up('w');
  const decodedBefore = (await health()).audio.decoded_blocks;
  await page.click('#mic-button');
  await eventually('the microphone to be on', async () => (await attr('mic')) === 'on');
  let renegotiations = 1;
  await renegotiated(renegotiations, 'microphone on');
  await eventually('the page\'s mic meter to move', async () => (await num('mic-level')) > 0.1);
  await eventually('the robot to decode the microphone', async () => (await health()).audio.decoded_blocks > decodedBefore + 10);
  const heard = join(dir, 'heard.wav');
  await eventually('660 Hz in the last second of the robot\'s speaker file', () => assertLastSecondIs(heard, 660));
  await sameSession('after the microphone went on');

  // c. The page's camera decoded by the robot.
  const framesBefore = (await health()).browser_video?.frames_decoded ?? 0;
  await page.click('#camera-button');
  await eventually('the camera to be on', async () => (await attr('camera')) === 'on');
  renegotiations += 1;
  await renegotiated(renegotiations, 'camera on');
  const video = await eventually('the robot to decode the page\'s camera', async () => {
    const v = (await health()).browser_video;
    return v.frames_decoded > framesBefore + 10 && v.width > 0 && v.height > 0 ? v : false;
  });
  assert.ok(video.decode_errors === 0 || video.decode_errors < video.frames_decoded / 10, `decode errors: ${JSON.stringify(video)}`);
  await sameSession('after the camera went on');

  // d. The microphone off and on three times: one renegotiation per toggle, the
  // robot's video never stops, the session and its data channel stay.
  const robotBefore = (await health()).peer_media[0].renegotiations;
  for (let round = 1; round <= 3; round += 1) {
    for (const want of ['off', 'on']) {
      await page.click('#mic-button');
      await eventually(`the microphone to be ${want} (round ${round})`, async () => (await attr('mic')) === want);
      renegotiations += 1;
      await renegotiated(renegotiations, `microphone ${want}, round ${round}`);
      await videoAdvances(`after the microphone went ${want} (round ${round})`);
      await sameSession(`after the microphone went ${want} (round ${round})`);
    }
  }
  const media = await eventually('the robot to count six renegotiations more', async () => {
    const m = (await health()).peer_media[0];
    return m.renegotiations >= robotBefore + 6 ? m : false;
  });
  assert.deepEqual({ audio_out: media.audio_out, audio_in: media.audio_in, video_in: media.video_in },
    { audio_out: true, audio_in: true, video_in: true });
  assert.equal(await num('renegotiations'), renegotiations, 'no renegotiation beyond one per toggle');
  await page.screenshot({ path: join(ARTIFACTS, 'audio.png') });
});
