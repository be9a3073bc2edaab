// RTCBot's own tutorial pages (tests/browser/fixtures/rtcbot-tutorials), changed only
// in how they load the library: an import map to the npm package installed from the
// tarball, and `import * as rtcbot from "rtcbot-rs"`. Served by the real robot (no
// bundler) and run in Debian's headless Chromium. What they send is recorded at
// RTCDataChannel.send without changing it.
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RECORD_DATA_CHANNELS, ROOT, eventually, installPackage, launchBrowser, startRobotServing } from '../lib/harness.mjs';

let project;
let robot;
let browser;

before(async () => {
  project = await installPackage('rtcbot-tutorials-');
  cpSync(join(ROOT, 'tests', 'browser', 'fixtures', 'rtcbot-tutorials'), project, { recursive: true });
  robot = await startRobotServing(project);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

/** Opens a tutorial page; resolves once it logged "Ready!" and its channel is open. */
async function openTutorial(name) {
  const page = await browser.newPage();
  const logs = [];
  const errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) errors.push(msg.text());
    else logs.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  await page.addInitScript(RECORD_DATA_CHANNELS);
  await page.goto(`${robot.url}/${name}`);
  await eventually(`${name} to log "Ready!"`, () => {
    if (errors.length) throw new Error(`page errors: ${errors.join(' | ')}`);
    return logs.includes('Ready!');
  });
  await eventually(`${name}'s default channel to open`, () =>
    page.evaluate(() => window.__channels.some((c) => c.label === 'default' && c.readyState === 'open')));
  return { page, logs, errors };
}

/**
 * Proves the robot read everything sent so far without refusing any of it: a ping
 * sent after it on the same ordered channel comes back as a pong (seen through the
 * page's own subscriber, which logs), and no `error` message arrived.
 */
async function robotAccepted(page, logs, id) {
  await page.evaluate((pingId) => {
    window.__channels.find((c) => c.label === 'default').send(JSON.stringify({ type: 'ping', id: pingId, t: 1 }));
  }, id);
  await eventually(`the robot's pong ${id}`, () => logs.some((l) => l.includes('"type":"pong"') && l.includes(`"id":${id}`)));
  const refused = logs.filter((l) => l.includes('"type":"error"'));
  assert.deepEqual(refused, [], 'the robot refused a message');
}

const videoFrames = (page) => page.evaluate(() => {
  const v = document.querySelector('video');
  return v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
});

test('tutorial "Sending JSON to Python and Back": button sends JSON, subscribe gets the robot\'s raw text', async () => {
  const { page, logs, errors } = await openTutorial('datachannel.html');
  await page.click('#mybutton');
  await eventually('the click to be sent', () =>
    page.evaluate(() => window.__sent.some((s) => s.label === 'default' && s.data === '{"data":"ping"}')));
  await robotAccepted(page, logs, 101);
  // The subscriber gets the robot's messages as text, as rtcbot.js hands them over.
  const stats = await eventually('stats telemetry in the subscriber', () =>
    logs.find((l) => l.startsWith('Received from python: {') && l.includes('"type":"stats"')));
  assert.doesNotThrow(() => JSON.parse(stats.slice('Received from python: '.length)));
  assert.deepEqual(errors, []);
  await page.close();
});

test('tutorial "Streaming Video": video.subscribe shows the robot\'s stream', async () => {
  const { page, errors } = await openTutorial('video.html');
  const first = await eventually('video frames in the <video>', async () => (await videoFrames(page)) > 0 && videoFrames(page));
  await eventually('more video frames', async () => (await videoFrames(page)) > first + 5);
  assert.equal(await page.evaluate(() => document.querySelector('video').videoWidth), 640);
  assert.deepEqual(errors, []);
  await page.close();
});

test('tutorial "Remote Control": keyboard events reach the robot in rtcbot.js\'s shape while video plays', async () => {
  const { page, logs, errors } = await openTutorial('remote-control.html');
  await eventually('video frames', async () => (await videoFrames(page)) > 5);
  await page.keyboard.down('w');
  await page.keyboard.down('w'); // repeat: not sent
  await page.keyboard.up('w');
  await page.keyboard.down('d');
  await page.keyboard.up('d');
  const sent = await eventually('4 key events sent', async () => {
    const s = await page.evaluate(() => window.__sent.filter((m) => m.data.includes('"key"')).map((m) => m.data));
    return s.length >= 4 && s;
  });
  assert.deepEqual(sent, [
    '{"type":"keydown","altKey":false,"shiftKey":false,"keyCode":87,"key":"w"}',
    '{"type":"keyup","altKey":false,"shiftKey":false,"keyCode":87,"key":"w"}',
    '{"type":"keydown","altKey":false,"shiftKey":false,"keyCode":68,"key":"d"}',
    '{"type":"keyup","altKey":false,"shiftKey":false,"keyCode":68,"key":"d"}',
  ]);
  // The robot parses them as rtcbot.js keyboard events: nothing refused.
  await robotAccepted(page, logs, 202);
  // No subscriber on this page: like rtcbot.js, messages go to console.log.
  await eventually('robot telemetry logged by the default subscriber', () => logs.some((l) => l.includes('"type":"stats"')));
  assert.deepEqual(errors, []);
  await page.close();
});
