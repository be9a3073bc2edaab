// The browser app in real headless Chromium against the real robot binary: it
// connects, plays the test pattern, drives with keys, a gamepad and the touch
// joystick, and reconnects after the robot restarts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ARTIFACTS, eventually, launchBrowser, robotDrive, startRobot } from '../lib/harness.mjs';

const attr = (page, name) => page.locator('#app').getAttribute(`data-${name}`);

async function openApp(browser, url, { viewport = { width: 1280, height: 800 }, init } = {}) {
  const context = await browser.newContext({ viewport, hasTouch: viewport.width < 600 });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  await eventually('the page to be live', async () => (await attr(page, 'conn')) === 'live');
  return page;
}

/** Pixels of the current video frame: mean luma and the spread of colours. */
async function videoPixels(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    if (!v || !v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4 * 97) {
      sum += (77 * d[i] + 150 * d[i + 1] + 29 * d[i + 2]) >> 8;
      colours.add(`${d[i] >> 5},${d[i + 1] >> 5},${d[i + 2] >> 5}`);
    }
    return { width: c.width, height: c.height, meanLuma: sum / (d.length / (4 * 97)), colours: colours.size, currentTime: v.currentTime };
  });
}

describe('browser app', () => {
  let robot;
  let browser;

  before(async () => {
    robot = await startRobot();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
  });

  test('connects and plays the moving test pattern', async () => {
    const page = await openApp(browser, robot.url);
    const first = await eventually('decoded frames', async () => Number(await attr(page, 'frames')) > 0 && Number(await attr(page, 'frames')));
    const later = await eventually('frames to advance', async () => {
      const n = Number(await attr(page, 'frames'));
      return n > first + 10 && n;
    });
    assert.ok(later > first);
    const stampA = Number(await eventually('a stamp read from the video', async () => (await attr(page, 'stamp-frame')) || false));
    const stampB = await eventually('the stamp to advance', async () => {
      const s = Number(await attr(page, 'stamp-frame'));
      return s > stampA && s;
    });
    assert.ok(stampB > stampA, 'the page reads increasing frame numbers from the picture');
    const pixels = await eventually('video pixels', () => videoPixels(page));
    assert.equal(pixels.width, 640);
    assert.equal(pixels.height, 480);
    assert.ok(pixels.meanLuma > 40, `the picture is not black (mean luma ${pixels.meanLuma})`);
    assert.ok(pixels.colours > 5, `the picture shows the colour bars (${pixels.colours} colours)`);
    const playing = await page.evaluate(() => {
      const v = document.getElementById('video');
      return !v.paused && v.readyState >= 2;
    });
    assert.ok(playing, 'the video element is playing');
    await eventually('latency and RTT figures', async () => (await attr(page, 'latency-ms')) && (await attr(page, 'rtt-ms')));
    await page.context().close();
  });

  test('W drives forward while held and stops on release', async () => {
    const page = await openApp(browser, robot.url);
    await page.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.keyboard.down('w');
    await robotDrive(robot, 'forward = 1', (d) => d.forward === 1 && d.turn === 0);
    await page.keyboard.up('w');
    await robotDrive(robot, 'forward = 0', (d) => d.forward === 0 && d.turn === 0);
    await page.keyboard.down('ArrowRight');
    await robotDrive(robot, 'turn = 1', (d) => d.turn === 1);
    await page.keyboard.up('ArrowRight');
    await robotDrive(robot, 'a stop', (d) => d.forward === 0 && d.turn === 0);
    await page.context().close();
  });

  test('a gamepad drives through the Gamepad API', async () => {
    // No gamepad exists here: a scripted navigator.getGamepads stands in for one.
    const init = () => {
      const pad = {
        id: 'scripted pad', index: 0, connected: true, mapping: 'standard', timestamp: 0,
        axes: [0, 0, 0, 0], buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })),
      };
      window.__pad = pad;
      navigator.getGamepads = () => [pad, null, null, null];
      window.addEventListener('load', () => {
        const ev = new Event('gamepadconnected');
        ev.gamepad = pad;
        window.dispatchEvent(ev);
      });
    };
    const page = await openApp(browser, robot.url, { init });
    await page.evaluate(() => { window.__pad.axes = [0.5, -1, 0, 0]; window.__pad.timestamp += 1; });
    await robotDrive(robot, 'the gamepad state', (d) => d.forward > 0.95 && d.turn > 0.3 && d.turn < 0.6);
    await page.evaluate(() => { window.__pad.axes = [0.05, 0.02, 0, 0]; window.__pad.timestamp += 1; });
    await robotDrive(robot, 'a stop inside the dead zone', (d) => d.forward === 0 && d.turn === 0);
    await page.context().close();
  });

  test('dragging the touch joystick drives', async () => {
    const page = await openApp(browser, robot.url, { viewport: { width: 390, height: 844 } });
    const box = await page.locator('#joystick').boundingBox();
    assert.ok(box, 'the joystick is on screen at phone size');
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.mouse.move(cx, cy);
    await page.mouse.down();
    await page.mouse.move(cx, box.y - box.height, { steps: 8 });
    await robotDrive(robot, 'forward from the joystick', (d) => d.forward > 0.5);
    await page.mouse.up();
    await robotDrive(robot, 'a stop when released', (d) => d.forward === 0 && d.turn === 0);
    await page.context().close();
  });

  test('screenshots at phone and laptop size', async () => {
    for (const [name, viewport] of [['phone', { width: 390, height: 844 }], ['laptop', { width: 1280, height: 800 }]]) {
      const page = await openApp(browser, robot.url, { viewport });
      await eventually('stats on screen', async () => Number(await attr(page, 'frames')) > 10
        && (await attr(page, 'latency-ms')) && (await attr(page, 'rtt-ms')) && Number(await attr(page, 'fps')) > 0);
      await page.screenshot({ path: join(ARTIFACTS, `app-${name}.png`) });
      await page.context().close();
    }
  });

  test('reconnects after the robot restarts, without a reload', async () => {
    const page = await openApp(browser, robot.url);
    await eventually('video', async () => Number(await attr(page, 'frames')) > 5);
    const stampBefore = Number(await eventually('a stamp', () => attr(page, 'stamp-frame')));
    const port = robot.port;
    await robot.stop();
    await eventually('the page to notice', async () => ['reconnecting', 'connecting'].includes(await attr(page, 'conn')));
    robot = await startRobot({ port });
    await eventually('live again', async () => (await attr(page, 'conn')) === 'live' && Number(await attr(page, 'sessions')) >= 2);
    // The new robot counts frames from 0 again: a lower stamp proves a new stream is shown.
    const { stamp } = await eventually('a stamp from the new robot', async () => {
      const s = await attr(page, 'stamp-frame');
      return s !== null && s !== '' && Number(s) < stampBefore ? { stamp: Number(s) } : false;
    });
    await eventually('video to advance after reconnecting', async () => Number(await attr(page, 'stamp-frame')) > stamp + 5);
    const loads = await page.evaluate(() => performance.getEntriesByType('navigation').length);
    assert.equal(loads, 1, 'no reload');
    await page.context().close();
  });
});
