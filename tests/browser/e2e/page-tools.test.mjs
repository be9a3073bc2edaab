// The page's tools against a robot with an admin token: the settings panel changes
// the video's size without reconnecting (the same session's <video> shows the new
// size), the snapshot button saves the current frame as a PNG and the record button
// a WebM clip (MediaRecorder), and the last minute's plots fill in. Screenshots of
// the page with the settings panel open, at phone and laptop size, go to
// tests/artifacts/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, eventually, launchBrowser, startRobot } from '../lib/harness.mjs';

const ADMIN = 'admin-token-for-the-page-tools-test';
const attr = (page, name) => page.locator('#app').getAttribute(`data-${name}`);
const videoSize = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  return v ? `${v.videoWidth}x${v.videoHeight}` : '';
});

describe('page tools', () => {
  let robot;
  let browser;
  let state;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'rtcbot-tools-'));
    robot = await startRobot({
      labBench: false,
      args: ['--quiet', '--no-tls', '--state-dir', state, '--auth-token', `admin:${ADMIN}`, '--width', '640', '--height', '480'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  async function open(viewport) {
    const context = await browser.newContext({ viewport, acceptDownloads: true, hasTouch: viewport.width < 600 });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(`${robot.url}/?token=${ADMIN}`);
    await eventually('the page to be live', async () => (await attr(page, 'conn')) === 'live');
    await eventually('the video to play', () => page.evaluate(() => (document.getElementById('video')?.currentTime ?? 0) > 0.5));
    return page;
  }

  test('snapshot saves the current frame as a PNG; record saves a WebM clip', async () => {
    const page = await open({ width: 1280, height: 800 });
    const [png] = await Promise.all([page.waitForEvent('download'), page.click('#snapshot-button')]);
    assert.match(png.suggestedFilename(), /^rtcbot-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.png$/);
    const pngPath = join(ARTIFACTS, 'snapshot.png');
    await png.saveAs(pngPath);
    assert.deepEqual([...readFileSync(pngPath).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');

    await page.click('#record-button');
    assert.equal(await page.getAttribute('#record-button', 'aria-pressed'), 'true');
    const start = await page.evaluate(() => document.getElementById('video').currentTime);
    await eventually('two seconds of recorded video', () =>
      page.evaluate((t) => document.getElementById('video').currentTime - t > 2, start));
    const [clip] = await Promise.all([page.waitForEvent('download'), page.click('#record-button')]);
    assert.match(clip.suggestedFilename(), /\.webm$/);
    const clipPath = join(ARTIFACTS, 'clip.webm');
    await clip.saveAs(clipPath);
    const bytes = readFileSync(clipPath);
    assert.ok(bytes.length > 5000, `a clip of ${bytes.length} bytes`);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], 'a WebM (EBML) file');

    // The last minute's plots have filled in meanwhile.
    await eventually('the bitrate plot to draw', async () => (await page.locator('#plot-kbps polyline').count()) > 0);
    await eventually('the latency plot to draw', async () => (await page.locator('#plot-latency polyline').count()) > 0);
    await page.context().close();
  });

  test('an admin changes the size from the settings panel without reconnecting', async () => {
    const page = await open({ width: 1280, height: 800 });
    assert.equal(await videoSize(page), '640x480');
    const sessions = await attr(page, 'sessions');
    await page.click('#settings-button');
    await page.screenshot({ path: join(ARTIFACTS, 'settings-laptop.png') });
    await page.selectOption('#settings-size', '320x240');
    await page.click('#settings-apply');
    await eventually('the video to be 320x240', async () => (await videoSize(page)) === '320x240');
    assert.equal(await attr(page, 'sessions'), sessions, 'the same session');
    assert.equal(await attr(page, 'conn'), 'live');
    // Back, so the next test starts where it did.
    await page.selectOption('#settings-size', '640x480');
    await page.click('#settings-apply');
    await eventually('the video to be 640x480 again', async () => (await videoSize(page)) === '640x480');
    await page.context().close();
  });

  test('at phone size the tools and the settings panel fit', async () => {
    const page = await open({ width: 360, height: 740 });
    await page.click('#settings-button');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling at 360 px (${overflow} px too wide)`);
    const box = await page.locator('#settings').boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 360, `the panel fits: ${JSON.stringify(box)}`);
    for (const id of ['#settings-button', '#snapshot-button', '#record-button']) {
      const b = await page.locator(id).boundingBox();
      assert.ok(b.width >= 34 && b.height >= 34, `${id} is big enough to tap: ${JSON.stringify(b)}`);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'settings-phone.png') });
    await page.context().close();
  });
});
