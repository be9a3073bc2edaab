// The browser app built into the robot binary: the robot started from an empty
// folder (no www/ beside it) and without --www serves the app from inside itself,
// and Chromium loads it, goes live and plays the test pattern.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEADMAN_MS, ROOT, eventually, launchBrowser, skipOrFail } from '../lib/harness.mjs';

const ROBOT_BIN = process.env.RTCBOT_ROBOT_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-robot');

/** rtcbot-robot with `cwd` as its working folder, no --www, plain HTTP, no auth. */
async function startRobotIn(cwd) {
  const proc = spawn(
    ROBOT_BIN,
    ['--listen', '127.0.0.1:0', '--ice-udp', '127.0.0.1:0', '--print-addr', '--deadman-ms', String(DEADMAN_MS),
      '--no-auth', '--no-tls', '--quiet', '--camera', 'test-pattern', '--audio', 'none', '--state-dir', join(cwd, '.state')],
    { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=error' } },
  );
  const lines = createInterface({ input: proc.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`robot exited with ${code} before listening`); }),
  ]);
  return {
    url: `http://${first.replace('listening on ', '')}`,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

describe('the page built into the binary', () => {
  let cwd;
  let robot;
  let browser;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'rtcbot-embedded-'));
    robot = await startRobotIn(cwd);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  test('a robot in an empty folder serves the app, which goes live and plays', async (t) => {
    assert.deepEqual(readdirSync(cwd).filter((f) => f !== '.state'), [], 'nothing beside the robot');
    const index = await (await fetch(`${robot.url}/`)).text();
    if (index.includes('none built into this binary')) {
      skipOrFail(t, 'rtcbot-robot has no page built in: build www/dist (scripts/build-web.sh) before cargo build');
      return;
    }
    assert.match(index, /rtcbot-wasm-[0-9a-f]+_bg\.wasm/, 'the app\'s index.html');

    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(robot.url);
    const attr = (name) => page.locator('#app').getAttribute(`data-${name}`);
    await eventually('the page to be live', async () => (await attr('conn')) === 'live');
    const first = await eventually('decoded frames', async () => Number(await attr('frames')) > 0 && Number(await attr('frames')));
    await eventually('frames to advance', async () => Number(await attr('frames')) > first + 10);
    const playing = await eventually('the video element to play', () => page.evaluate(() => {
      const v = document.getElementById('video');
      return v && !v.paused && v.readyState >= 2 && v.videoWidth === 640 && v.videoHeight === 480;
    }));
    assert.ok(playing);
    await page.context().close();
  });
});
