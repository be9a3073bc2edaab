// Watching through the robot's SFU: a real Janus (rtcbot-janus, Debian's janus), the
// real robot publishing its one stream to it ([sfu] with watch_url), and two app pages
// in Chromium. Both pages take the picture from Janus (data-video-source="sfu", the
// test pattern's stamps advancing) while the robot sends them no video (/health: its
// stream has one viewer, the Janus publisher; the pages' peers have no video link); one
// drives over its data channel while the other watches; the page's Video setting
// switches to the robot's video and back on the live session; a reloaded page goes straight
// to Janus (remembered), asking the robot for no media from its first offer. Janus killed: both pages
// fall back to the robot's own video by themselves.
//
// Needs the tests' network namespace (rtcbot0, 10.77.0.1: Janus gathers no loopback
// candidates), janus and target/debug/rtcbot-janus; skips without them (fails under CI).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, launchBrowser, robotDrive, robotStops, skipOrFail, startRobot } from '../lib/harness.mjs';
import { janusMissing, startJanus } from '../lib/janus.mjs';

const attr = (page, name) => page.locator('#app').getAttribute(`data-${name}`);

/** Waits until the page's stamped frame number moves on by `by`; returns it. */
async function stampsAdvance(page, what, by = 10) {
  const first = Number(await eventually(`${what}: a stamp read from the video`, async () => (await attr(page, 'stamp-frame')) || false));
  return eventually(`${what}: the stamps to advance`, async () => {
    const n = Number(await attr(page, 'stamp-frame'));
    return n >= first + by && n;
  });
}

describe('watching through the SFU', () => {
  const missing = janusMissing();
  let janus;
  let robot;
  let browser;

  before(async () => {
    if (missing) return;
    janus = await startJanus();
    const dir = mkdtempSync(join(tmpdir(), 'rtcbot-sfu-e2e-'));
    const config = join(dir, 'robot.toml');
    writeFileSync(config, [
      '[sfu]',
      `url = "${janus.api}"`,
      `room = ${janus.room}`,
      `secret = "${janus.secret}"`,
      'publisher_id = 1',
      `watch_url = "${janus.api}"`,
      '',
    ].join('\n'));
    // Pages reach the robot on loopback, Janus on rtcbot0.
    robot = await startRobot({ iceUdp: '127.0.0.1:0', args: ['--config', config, '--ice-udp', '10.77.0.1:0'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
    await janus?.stop();
  });

  test('two pages watch via Janus, one drives, and both fall back to the robot when Janus dies', async (t) => {
    if (missing) return skipOrFail(t, missing);
    const started = Date.now();
    await eventually('the robot to publish to Janus', async () => (await robot.health()).sfu?.state === 'publishing');

    const open = async () => {
      const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const page = await context.newPage();
      page.on('pageerror', (err) => console.error('page error:', err));
      await page.goto(robot.url);
      return page;
    };
    const [driver, watcher] = await Promise.all([open(), open()]);
    for (const [name, page] of [['driver', driver], ['watcher', watcher]]) {
      await eventually(`the ${name} page to show the SFU's video`, async () => (await attr(page, 'video-source')) === 'sfu');
      assert.equal(await page.locator('.stage').getAttribute('data-video-source'), 'sfu');
      await stampsAdvance(page, `${name} via SFU`);
      await eventually(`the ${name} page to turn the robot's media off`, async () => (await attr(page, 'robot-media')) === 'off');
    }

    // The robot uploads one stream: its Janus publisher; the pages' peers get no video.
    let last;
    const health = await eventually('the robot to send video to its publisher only', async () => {
      const h = await robot.health();
      last = { peers: h.peers, viewers: h.viewers, video_links: h.video_links };
      return h.peers === 2 && h.viewers === 1 && h.video_links.length === 0 && h;
    }).catch((err) => { throw new Error(`${err.message}; health: ${JSON.stringify(last)}`); });
    assert.equal(health.sfu.state, 'publishing');

    // One drives over its data channel while the other keeps watching.
    await driver.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
    await driver.keyboard.down('w');
    await robotDrive(robot, 'forward = 1 from the page watching via the SFU', (d) => d.forward === 1 && d.turn === 0);
    await stampsAdvance(watcher, 'watcher while the other drives', 5);
    await driver.keyboard.up('w');
    await robotStops(robot, 'after W is released');

    // The page's Video setting: "always from the robot" takes the robot's video again
    // at once (renegotiated on the live session), and back.
    await watcher.locator('#settings-button').click();
    await watcher.locator('#settings-video-via').selectOption('robot');
    await eventually('the setting to bring the robot\'s video back', async () => (await attr(watcher, 'video-source')) === 'robot' && (await attr(watcher, 'robot-media')) === 'on');
    await stampsAdvance(watcher, 'watcher from the robot by its setting');
    assert.equal((await robot.health()).video_links.length, 1, 'the robot sends video to that page only');
    await watcher.locator('#settings-video-via').selectOption('sfu');
    await eventually('the setting to go back to the SFU', async () => (await attr(watcher, 'video-source')) === 'sfu' && (await attr(watcher, 'robot-media')) === 'off');

    // A reload remembers that this robot offers its SFU: the first offer to the robot
    // asks for no media (its video inactive), and the picture comes from Janus again.
    await watcher.context().addInitScript(() => {
      window.__offers = [];
      const create = RTCPeerConnection.prototype.createOffer;
      RTCPeerConnection.prototype.createOffer = async function (...args) {
        const offer = await create.apply(this, args);
        window.__offers.push(offer.sdp);
        return offer;
      };
    });
    await watcher.reload();
    await eventually('the reloaded page to show the SFU\'s video', async () => (await attr(watcher, 'video-source')) === 'sfu');
    await stampsAdvance(watcher, 'reloaded watcher via SFU');
    const firstOffer = await watcher.evaluate(() => window.__offers[0]);
    const video = firstOffer.split('m=').find((m) => m.startsWith('video'));
    assert.match(video, /a=inactive/, 'the reloaded page asked the robot for no video from the start');
    assert.equal((await robot.health()).video_links.length, 0, 'no page takes video from the robot');

    // Janus dies: both pages take the robot's video again, by themselves.
    await janus.stop();
    for (const [name, page] of [['driver', driver], ['watcher', watcher]]) {
      await eventually(`the ${name} page to fall back to the robot's video`, async () => (await attr(page, 'video-source')) === 'robot');
      await eventually(`the ${name} page to turn the robot's media on`, async () => (await attr(page, 'robot-media')) === 'on');
      assert.notEqual(await attr(page, 'sfu-reason'), '', 'a reason is shown');
      await stampsAdvance(page, `${name} from the robot`);
    }
    await eventually('the robot to send video to both pages (and none to Janus, gone)', async () => {
      const h = await robot.health();
      last = { peers: h.peers, viewers: h.viewers, video_links: h.video_links };
      return h.peers === 2 && h.video_links.length === 2 && h.viewers === 2;
    }).catch((err) => { throw new Error(`${err.message}; health: ${JSON.stringify(last)}`); });
    console.log(`sfu e2e: ${(Date.now() - started) / 1000} s`);
  });
});
