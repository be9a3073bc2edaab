// The browser app in real headless Chromium against the real robot binary: it
// connects, plays the test pattern (also under Chromium's default autoplay policy),
// drives with keys (Shift for half speed), a gamepad at the `?gamepad_hz=` rate and
// the joystick with mouse and touch, stops the robot when keys are released, the
// window loses focus, the tab is hidden, the page navigates away or the tab vanishes,
// follows `?connect=` and `?ice=`, shows `failed` when refused, and reconnects after
// the robot restarts. The robot's dead-man is 60 s (DEADMAN_MS), so every stop seen
// here within 10 s came from the page or the peer leaving.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ARTIFACTS, RECORD_ICE, eventually, launchBrowser, robotDrive, robotStops, startRobot, startStunServer,
} from '../lib/harness.mjs';

const attr = (page, name) => page.locator('#app').getAttribute(`data-${name}`);

async function openApp(browser, url, { viewport = { width: 1280, height: 800 }, init, live = true } = {}) {
  const context = await browser.newContext({ viewport, hasTouch: viewport.width < 600 });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  if (live) await eventually('the page to be live', async () => (await attr(page, 'conn')) === 'live');
  return page;
}

/** Holds W until the robot drives forward at full speed. */
async function holdForward(page, robot) {
  await page.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
  await page.keyboard.down('w');
  await robotDrive(robot, 'forward = 1 while W is held', (d) => d.forward === 1 && d.turn === 0);
}

/** A scripted gamepad behind navigator.getGamepads (none exists here); counts polls. */
const SCRIPTED_PAD = () => {
  const pad = {
    id: 'scripted pad', index: 0, connected: true, mapping: 'standard', timestamp: 0,
    axes: [0, 0, 0, 0], buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })),
  };
  window.__pad = pad;
  window.__polls = 0;
  navigator.getGamepads = () => { window.__polls += 1; return [pad, null, null, null]; };
  window.addEventListener('load', () => {
    const ev = new Event('gamepadconnected');
    ev.gamepad = pad;
    window.dispatchEvent(ev);
  });
};

/** Gamepad polls the page made in `ms` of its own clock. */
async function pollsIn(page, ms) {
  const start = await page.evaluate(() => ({ n: window.__polls, t: performance.now() }));
  await eventually(`${ms} ms of polling`, () => page.evaluate(([t, span]) => performance.now() - t >= span, [start.t, ms]), ms + 5000);
  return (await page.evaluate(() => window.__polls)) - start.n;
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

  // A failed test leaves no page behind to hold the drive for the next one.
  afterEach(async () => {
    for (const context of browser?.contexts() ?? []) await context.close();
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

  test('W drives forward while held, Shift halves the speed, and releasing stops', async () => {
    const page = await openApp(browser, robot.url);
    await holdForward(page, robot);
    await page.keyboard.down('Shift');
    await robotDrive(robot, 'forward = 0.5 with Shift held', (d) => d.forward === 0.5 && d.turn === 0);
    await page.keyboard.up('Shift');
    await robotDrive(robot, 'full speed again without Shift', (d) => d.forward === 1);
    await page.keyboard.up('w');
    await robotStops(robot, 'when W is released');
    await page.keyboard.down('ArrowRight');
    await robotDrive(robot, 'turn = 1', (d) => d.turn === 1);
    await page.keyboard.up('ArrowRight');
    await robotStops(robot, 'when the arrow is released');
    await page.context().close();
  });

  test('a held key stops the robot when the window loses focus', async () => {
    const page = await openApp(browser, robot.url);
    await holdForward(page, robot);
    // Headless Chromium has one window: the event the browser fires on focus loss.
    await page.evaluate(() => window.dispatchEvent(new FocusEvent('blur')));
    await robotStops(robot, 'on focus loss, with W still held');
    await page.keyboard.up('w');
    await page.context().close();
  });

  test('a held key stops the robot when the tab is hidden', async () => {
    const page = await openApp(browser, robot.url);
    await holdForward(page, robot);
    // What the browser reports when the user switches tabs or the phone locks.
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await robotStops(robot, 'when the tab is hidden, with W still held');
    await page.context().close();
  });

  test('navigating away while driving stops the robot', async () => {
    const page = await openApp(browser, robot.url);
    await holdForward(page, robot);
    // The page closes its connection on `pagehide`: the robot drops the peer at once.
    // Without that it would wait for ICE's 2 s of silence and then a 5 s grace.
    await page.goto('about:blank', { timeout: 10_000 });
    await robotStops(robot, 'after the page navigated away');
    await eventually('the robot to drop the peer within 1.5 s of navigating away', async () => (await robot.health()).peers === 0, 1500);
    await page.context().close();
  });

  test('a tab that vanishes while driving (renderer crash) stops the robot', async () => {
    const page = await openApp(browser, robot.url);
    await holdForward(page, robot);
    const cdp = await page.context().newCDPSession(page);
    // The renderer dies without closing anything: the robot notices the silent peer.
    cdp.send('Page.crash').catch(() => {});
    await robotStops(robot, 'after the tab vanished');
    await eventually('the robot to drop the peer', async () => (await robot.health()).peers === 0);
    await page.context().close();
  });

  test('a gamepad drives through the Gamepad API, polled 10 times a second', async () => {
    const page = await openApp(browser, robot.url, { init: SCRIPTED_PAD });
    await page.evaluate(() => { window.__pad.axes = [0.5, -1, 0, 0]; window.__pad.timestamp += 1; });
    await robotDrive(robot, 'the gamepad state', (d) => d.forward > 0.95 && d.turn > 0.3 && d.turn < 0.6);
    await page.evaluate(() => { window.__pad.axes = [0.05, 0.02, 0, 0]; window.__pad.timestamp += 1; });
    await robotStops(robot, 'inside the dead zone');
    // 10 Hz: about 20 polls in 2 s (counted, not timed: 50 Hz would give about 100).
    const polls = await pollsIn(page, 2000);
    assert.ok(polls >= 12 && polls <= 35, `${polls} gamepad polls in 2 s at the default 10 Hz`);
    await page.context().close();
  });

  test('?gamepad_hz=50 polls the gamepad 50 times a second', async () => {
    const page = await openApp(browser, `${robot.url}/?gamepad_hz=50`, { init: SCRIPTED_PAD });
    const polls = await pollsIn(page, 2000);
    assert.ok(polls >= 60 && polls <= 140, `${polls} gamepad polls in 2 s with ?gamepad_hz=50 (about 100 expected)`);
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
    await robotStops(robot, 'when the joystick is released');
    await page.context().close();
  });

  test('the joystick drives with touch events', async () => {
    const init = () => {
      window.__pointerTypes = new Set();
      addEventListener('pointerdown', (e) => window.__pointerTypes.add(e.pointerType), true);
    };
    const page = await openApp(browser, robot.url, { viewport: { width: 390, height: 844 }, init });
    const box = await page.locator('#joystick').boundingBox();
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const cdp = await page.context().newCDPSession(page);
    const touch = (type, x, y) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: x === undefined ? [] : [{ x, y }] });
    await touch('touchStart', cx, cy);
    for (let i = 1; i <= 8; i += 1) await touch('touchMove', cx + (box.width / 2) * (i / 8), cy);
    await robotDrive(robot, 'a right turn from the touched joystick', (d) => d.turn > 0.5 && Math.abs(d.forward) < 0.2);
    assert.deepEqual([...await page.evaluate(() => [...window.__pointerTypes])], ['touch'], 'the joystick saw touch pointers');
    await touch('touchEnd');
    await robotStops(robot, 'when the finger lifts');
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

  test('?connect= drives a second robot that allows this page by --cors-origin', async () => {
    const other = await startRobot({ args: ['--cors-origin', robot.url] });
    try {
      const page = await openApp(browser, `${robot.url}/?connect=${encodeURIComponent(`${other.url}/connect`)}`);
      await eventually('the second robot to have the peer', async () => (await other.health()).peers === 1);
      assert.equal((await robot.health()).peers, 0, 'the page did not connect to the robot that served it');
      await holdForward(page, other);
      assert.equal((await robot.health()).drive.forward, 0, 'the serving robot does not move');
      await page.keyboard.up('w');
      await robotStops(other, 'when W is released');
      await page.context().close();
    } finally {
      await other.stop();
    }
  });

  test('?ice= gives the page its STUN server', async () => {
    const stun = await startStunServer('203.0.113.7');
    try {
      const page = await openApp(browser, `${robot.url}/?ice=${encodeURIComponent(` ${stun.url} ,`)}`, { init: RECORD_ICE });
      const configs = await page.evaluate(() => window.__configs);
      assert.deepEqual(configs[0].map((s) => s.urls).flat(), [stun.url], 'the peer connection has the ?ice= server');
      const srflx = await eventually('a server-reflexive candidate from the STUN server', () =>
        page.evaluate(() => window.__candidates.find((c) => c.includes('203.0.113.7') && c.includes('typ srflx'))));
      assert.ok(srflx);
      assert.ok(stun.requests > 0, 'the STUN server saw binding requests');
      await page.context().close();
    } finally {
      await stun.close();
    }
  });

  test('a refused connection shows the failed badge with the reason', async () => {
    const page = await openApp(browser, `${robot.url}/?connect=no-such-endpoint`, { live: false });
    await eventually('data-conn = failed', async () => (await attr(page, 'conn')) === 'failed');
    const reason = await attr(page, 'conn-reason');
    assert.match(reason, /refused the connection \(HTTP 4\d\d\)/);
    const badge = page.locator('#conn-badge');
    assert.equal(await badge.locator('.label').textContent(), 'Failed');
    assert.match(await badge.locator('.reason').textContent(), /HTTP 4\d\d/);
    assert.ok(await badge.isVisible(), 'the badge is on screen');
    assert.ok(await page.locator('#retry').isVisible(), 'the retry button is on screen');
    await page.context().close();
  });

  test('the muted video autoplays under Chromium\'s default autoplay policy', async () => {
    const plain = await launchBrowser({ autoplayFlag: false });
    try {
      const page = await openApp(plain, robot.url);
      const first = await eventually('decoded frames', async () => Number(await attr(page, 'frames')) > 0 && Number(await attr(page, 'frames')));
      await eventually('frames to advance without a user gesture', async () => Number(await attr(page, 'frames')) > first + 10);
      const state = await page.evaluate(() => {
        const v = document.getElementById('video');
        return { paused: v.paused, muted: v.muted, playing: v.readyState >= 2 };
      });
      assert.deepEqual(state, { paused: false, muted: true, playing: true });
    } finally {
      await plain.close();
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
