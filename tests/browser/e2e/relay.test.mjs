// The robot reached through a relay room, as a user does it: `rtcbot-relay --www
// www/dist` serves the browser app at /ROOM/, the robot binary connects out with
// `--relay ws://RELAY/ROOM`, and Chromium opens http://RELAY/ROOM: the page goes live
// through the room (its offer POSTed to /ROOM/connect and answered by the robot over
// its WebSocket), plays the video and drives.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, eventually, launchBrowser, robotDrive, startRobot } from '../lib/harness.mjs';

const RELAY_BIN = process.env.RTCBOT_RELAY_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-relay');
const ROOM = 'e2e-room';

/** The relay binary on a free loopback port, serving the built app. */
async function startRelay() {
  const proc = spawn(RELAY_BIN, ['--listen', '127.0.0.1:0', '--www', join(ROOT, 'www', 'dist')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  const lines = createInterface({ input: proc.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`relay exited with ${code} before listening`); }),
  ]);
  const url = first.match(/http:\/\/[^:]+:\d+/)?.[0];
  assert.ok(url, `the relay's first line names its address: ${first}`);
  return {
    url,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

let relay;
let robot;
let browser;

before(async () => {
  relay = await startRelay();
  robot = await startRobot({ args: ['--relay', `${relay.url.replace('http', 'ws')}/${ROOM}`] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  await relay?.stop();
});

test('the page at the relay room goes live through it, plays the video and drives', async () => {
  await eventually('the robot in its room', async () => (await (await fetch(`${relay.url}/${ROOM}/status`)).json()).robot);
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.goto(`${relay.url}/${ROOM}`);
  assert.equal(new URL(page.url()).pathname, `/${ROOM}/`, 'the app runs in the room');
  await eventually('the page to be live', async () => (await page.locator('#app').getAttribute('data-conn')) === 'live');
  await eventually('video frames', () => page.evaluate(() => {
    const v = document.querySelector('video');
    return v && v.videoWidth > 0 && v.currentTime > 0;
  }));
  await page.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
  await page.keyboard.down('w');
  await robotDrive(robot, 'forward = 1 while W is held, through the relay', (d) => d.forward === 1);
  await page.keyboard.up('w');
  const health = await robot.health();
  assert.equal(health.relay.connected, true);
  assert.equal(health.relay.offers, 1, 'the offer came through the room');
  await page.close();
});

test('a room with no robot says so on the page', async () => {
  const page = await browser.newPage();
  await page.goto(`${relay.url}/nobody-here`);
  await eventually('the page to fail', async () => (await page.locator('#app').getAttribute('data-conn')) === 'failed');
  const text = await page.locator('body').innerText();
  assert.match(text, /no robot is connected to room "nobody-here"/i, text);
  await page.close();
});
