// The robot reached through a relay room, as a user does it: `rtcbot-relay --www
// www/dist` serves the browser app at /ROOM/, the robot binary connects out with
// `--relay ws://RELAY/ROOM`, and Chromium opens http://RELAY/ROOM: the page goes live
// through the room (its offer POSTed to /ROOM/connect and answered by the robot over
// its WebSocket), plays the video and drives. The page takes the room's ICE servers
// from /ROOM/ice: a STUN server (a small one here, which maps every page to
// 203.0.113.7) and TURN with credentials the relay minted for it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  RECORD_ICE, ROOT, eventually, launchBrowser, robotDrive, startRelay, startRobot, startStunServer,
} from '../lib/harness.mjs';

const ROOM = 'e2e-room';

let relay;
let robot;
let browser;
let stun;

before(async () => {
  stun = await startStunServer('203.0.113.7');
  // A TURN URL nothing listens on: the page must get it with minted credentials,
  // and connects over its host candidates all the same.
  relay = await startRelay(`stun_urls = ["${stun.url}"]\nturn_urls = ["turn:127.0.0.1:9"]\nturn_secret = "north"\n`);
  robot = await startRobot({ args: ['--relay', `${relay.url.replace('http', 'ws')}/${ROOM}`] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  await relay?.stop();
  await stun?.close();
});

test('the page at the relay room goes live through it with the room\'s ICE servers, plays the video and drives', async () => {
  await eventually('the robot in its room', () => relay.robotIn(ROOM));
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  await page.addInitScript(RECORD_ICE);
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
  const [servers] = await page.evaluate(() => window.__configs);
  assert.deepEqual(servers[0].urls, [stun.url], 'the room\'s STUN server');
  assert.deepEqual(servers[1].urls, ['turn:127.0.0.1:9'], 'the room\'s TURN server');
  assert.match(servers[1].username, new RegExp(`^\\d+:${ROOM}$`), 'a username minted for the room');
  assert.ok(servers[1].credential.length > 20, 'its password');
  await eventually('a server-reflexive candidate from the room\'s STUN server', () =>
    page.evaluate(() => window.__candidates.find((c) => c.includes('203.0.113.7') && c.includes('typ srflx'))));
  const health = await robot.health();
  assert.equal(health.relay.connected, true);
  assert.equal(health.relay.offers, 1, 'the offer came through the room');
  await page.close();
});

test('a room with no robot says so, shows that it waits, and goes live by itself when its robot joins', async () => {
  const room = 'late-robot';
  const page = await browser.newPage();
  await page.goto(`${relay.url}/${room}`);
  await eventually('the page to fail', async () => (await page.locator('#app').getAttribute('data-conn')) === 'failed');
  const text = await page.locator('body').innerText();
  assert.match(text, new RegExp(`no robot is connected to room "${room}"`, 'i'), text);
  await eventually('the badge to say the room waits for its robot', async () =>
    (await page.locator('#app').getAttribute('data-room-robot')) === 'absent');
  assert.match(await page.locator('#room-presence').innerText(), /waiting for its robot/);
  // The failed page backs off 5 s between tries; the room's robot arriving makes it
  // try at once.
  const late = await startRobot({ args: ['--relay', `${relay.url.replace('http', 'ws')}/${room}`] });
  try {
    await eventually('the badge to see the robot', async () =>
      (await page.locator('#app').getAttribute('data-room-robot')) === 'present');
    await eventually('the page to go live without a reload', async () =>
      (await page.locator('#app').getAttribute('data-conn')) === 'live');
    assert.match(await page.locator('#room-presence').innerText(), /robot connected/);
    assert.equal((await late.health()).relay.offers, 1, 'one offer: the one made when the robot arrived');
  } finally {
    await page.close();
    await late.stop();
  }
});

test('operators in one room signal each other through /ROOM/peers with perfect negotiation and see each other\'s status', async () => {
  // The FastAPI meeting-room tutorial's pattern on our relay: the page
  // (fixtures/meeting-room) is plain JS; each pair's channels are opened from both
  // ends at once, so their first offers collide.
  const meeting = await startRelay('', join(ROOT, 'tests', 'browser', 'fixtures', 'meeting-room'));
  const pages = [];
  try {
    for (const status of ['driving', 'watching', 'mapping']) {
      const page = await browser.newPage();
      page.on('pageerror', (err) => console.error('page error:', err));
      await page.goto(`${meeting.url}/ops-room/?status=${status}`);
      pages.push({ page, status });
    }
    const ids = [];
    for (const { page } of pages) ids.push(await eventually('the page\'s welcome', () => page.evaluate(() => window.__id)));
    for (const [i, { page }] of pages.entries()) {
      const expected = pages.map(({ status }, j) => [ids[j], status]).filter((_, j) => j !== i);
      await eventually(`page ${ids[i]} to see the others' status over WebRTC`, async () => {
        const seen = await page.evaluate(() => window.__peers);
        return Object.keys(seen).length === 2 && expected.every(([id, status]) => seen[id] === status);
      });
    }
    const ignored = (await Promise.all(pages.map(({ page }) => page.evaluate(() => window.__ignored ?? 0)))).reduce((a, b) => a + b, 0);
    assert.ok(ignored > 0, 'the colliding offers were settled by the impolite side ignoring one');
    for (const { page } of pages) assert.equal(await page.evaluate(() => window.__failures), undefined, 'no step of the negotiation failed');
    // A page in another room hears nothing of this one.
    const stranger = await browser.newPage();
    await stranger.goto(`${meeting.url}/other-room/?status=lost`);
    await eventually('the stranger\'s welcome', () => stranger.evaluate(() => window.__id));
    assert.deepEqual(await stranger.evaluate(() => window.__peers), {});
    assert.deepEqual(await stranger.evaluate(() => window.__events), ['welcome']);
    // Bad frames get an error, and the socket goes on.
    await stranger.evaluate(() => { window.__sendRaw('not json'); window.__sendRaw('{"to":"p999"}'); });
    const errors = await eventually('two errors', async () => {
      const e = await stranger.evaluate(() => window.__errors);
      return e?.length === 2 && e;
    });
    assert.match(errors[0], /JSON object/);
    assert.match(errors[1], /no page "p999"/);
    await stranger.close();
    // One leaves: the others hear of it and drop it.
    await pages[2].page.close();
    pages.pop();
    for (const { page } of pages) {
      await eventually('the leaver gone', async () => !(ids[2] in await page.evaluate(() => window.__peers)));
    }
  } finally {
    for (const { page } of pages) await page.close();
    await meeting.stop();
  }
});
