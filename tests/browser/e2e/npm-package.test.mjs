// The npm package as a user gets it: the packed tarball installed by npm into a fresh
// project, the README's example page bundled by esbuild, served by the real robot and
// run in Debian's headless Chromium. Also the API's behaviour on bad input, the
// rtcbot.js event shapes of Keyboard and Gamepad, and the answering side of
// RTCConnection (page to page).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import {
  ROOT, eventually, installPackage, launchBrowser, robotDrive, robotStops, skipOrFail, startRelay, startRobot,
  startRobotServing, startStunServer,
} from '../lib/harness.mjs';

/** The code blocks of npm/README.md marked `<!-- example: NAME -->`. */
function readmeExamples() {
  const readme = readFileSync(join(ROOT, 'npm', 'README.md'), 'utf8');
  const blocks = {};
  for (const m of readme.matchAll(/<!-- example: (\S+) -->\s*```\w*\n([\s\S]*?)```/g)) blocks[m[1]] = m[2];
  assert.ok(blocks['index.html'] && blocks['main.js'], 'npm/README.md lost its example blocks (index.html, main.js)');
  return blocks;
}

// A test-only entry: the package's exports on window, for the API checks below.
const PROBE_JS = `import * as rtcbot from "rtcbot-rs";\nwindow.rtcbot = rtcbot;\n`;
const PROBE_HTML = '<!doctype html><meta charset="utf-8"><title>probe</title><script type="module" src="probe.js"></script>';

let project;
let robot;
let browser;

before(async () => {
  project = await installPackage('rtcbot-npm-page-');
  const examples = readmeExamples();
  writeFileSync(join(project, 'index.html'), examples['index.html']);
  writeFileSync(join(project, 'main.js'), examples['main.js']);
  writeFileSync(join(project, 'probe.js'), PROBE_JS);
  const dist = join(project, 'dist');
  mkdirSync(dist);
  // What the README tells users to run: esbuild main.js --bundle --format=esm --outdir=dist
  await build({
    absWorkingDir: project,
    entryPoints: ['main.js', 'probe.js'],
    bundle: true,
    format: 'esm',
    outdir: 'dist',
    logLevel: 'error',
  });
  copyFileSync(join(project, 'index.html'), join(dist, 'index.html'));
  copyFileSync(join(project, 'node_modules', 'rtcbot-rs', 'web', 'rtcbot_wasm_bg.wasm'), join(dist, 'rtcbot_wasm_bg.wasm'));
  writeFileSync(join(dist, 'probe.html'), PROBE_HTML);
  robot = await startRobotServing(dist);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

async function openPage(path, initScript) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    // Chromium asks for /favicon.ico, which the example does not have.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) errors.push(msg.text());
  });
  if (initScript) await page.addInitScript(initScript);
  await page.goto(`${robot.url}/${path}`);
  return { page, errors };
}

async function probe(initScript) {
  const { page, errors } = await openPage('probe.html', initScript);
  await eventually('the package to load in the probe page', () => page.evaluate(() => Boolean(window.rtcbot)));
  return { page, errors };
}

test('README example page (npm install of the tarball, esbuild bundle) connects, shows video, gets telemetry and drives', async () => {
  const { page, errors } = await openPage('');
  const text = (sel) => page.locator(sel).textContent();
  await eventually('the page to connect', async () => {
    const status = await text('#status');
    if (status.startsWith('failed')) throw new Error(`page says ${status}; errors: ${errors}`);
    return status === 'connected';
  });
  // Telemetry: the robot's `stats` message, parsed by parseTelemetry.
  const telemetry = await eventually('stats telemetry on the page', async () => {
    const t = await text('#telemetry');
    return /^\d+x\d+, \d+ fps, \d+ kbit\/s \(.+\)$/.test(t) && t;
  });
  assert.match(telemetry, /^640x480/);
  // Messages both ways: pings sent with put_nowait come back as pongs.
  await eventually('a ping round trip', async () => Number.parseFloat(await text('#rtt')) >= 0);
  // Video: frames keep being decoded into the <video>.
  const frames = () => page.evaluate(() => {
    const v = document.querySelector('video');
    return v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  });
  const first = await eventually('video frames in the <video>', async () => (await frames()) > 0 && frames());
  await eventually('more video frames', async () => (await frames()) > first + 5);
  assert.equal(await page.evaluate(() => document.querySelector('video').videoWidth), 640);
  // Driving: Keyboard → DriveSender → the robot's drive state.
  await page.keyboard.down('ArrowUp');
  await robotDrive(robot, 'forward 1 from ArrowUp', (d) => d.forward === 1 && d.turn === 0 && d.seq > 0);
  await page.keyboard.down('ArrowLeft');
  await robotDrive(robot, 'forward 1, turn -1', (d) => d.forward === 1 && d.turn === -1);
  await page.keyboard.up('ArrowUp');
  await page.keyboard.up('ArrowLeft');
  await robotStops(robot, 'when the keys are released');
  assert.deepEqual(errors, []);
  await page.close();
});

test('RTCConnection.connect to a relay room on another origin takes the room\'s ICE servers and goes live', async () => {
  const stun = await startStunServer('203.0.113.9');
  const relay = await startRelay(`stun_urls = ["${stun.url}"]\n`);
  const inRoom = await startRobot({ args: ['--relay', `${relay.url.replace('http', 'ws')}/npm-room`] });
  try {
    await eventually('the robot in its room', () => relay.robotIn('npm-room'));
    // The page comes from the other robot's origin: the relay is another site.
    const { page, errors } = await probe();
    const result = await page.evaluate(async (url) => {
      const conn = new window.rtcbot.RTCConnection();
      const first = new Promise((resolve) => conn.subscribe(resolve));
      await conn.connect(url);
      const servers = conn.peerConnection.getConfiguration().iceServers;
      const message = await first;
      await conn.close();
      return { servers, message };
    }, `${relay.url}/npm-room`);
    assert.deepEqual(result.servers.map((s) => s.urls), [[stun.url]], 'the room\'s STUN server');
    assert.match(result.message, /"type"/, 'a message from the robot over the data channel');
    assert.equal((await inRoom.health()).relay.offers, 1, 'the offer came through the room');
    assert.deepEqual(errors, [], 'no console errors');
    await page.close();
  } finally {
    await inRoom.stop();
    await relay.stop();
    await stun.close();
  }
});

test('bad input gets a clear error', async () => {
  const { page } = await probe();
  const e = await page.evaluate(async () => {
    const r = window.rtcbot;
    const out = {};
    const cap = async (name, f) => {
      try { await f(); out[name] = 'no error'; } catch (err) { out[name] = err instanceof Error ? err.message : `non-Error ${err}`; }
    };
    const conn = new r.RTCConnection(true, { iceServers: [] });
    const cyclic = {}; cyclic.self = cyclic;
    await cap('queued', () => conn.put_nowait('before connecting is fine'));
    await cap('cyclic', () => conn.put_nowait(cyclic));
    await cap('bigint', () => conn.put_nowait(10n));
    await cap('undefined', () => conn.put_nowait(undefined));
    await cap('function', () => conn.put_nowait(() => 1));
    await cap('remoteString', () => conn.setRemoteDescription('{"type":"answer"}'));
    await cap('remoteNull', () => conn.setRemoteDescription(null));
    await cap('remoteType', () => conn.setRemoteDescription({ type: 'nope', sdp: '' }));
    await cap('remoteNoSdp', () => conn.setRemoteDescription({ type: 'answer' }));
    await cap('remoteGarbage', () => conn.setRemoteDescription({ type: 'answer', sdp: 'garbage' }));
    await cap('remoteError', () => conn.setRemoteDescription({ error: 'too many peers' }));
    await cap('answerGarbage', () => new r.RTCConnection(true, { iceServers: [] }).getLocalDescription({ type: 'offer', sdp: 'garbage' }));
    await cap('subscribe', () => conn.subscribe(42));
    await cap('videoSubscribe', () => conn.video.subscribe('stream please'));
    await cap('putSubscription', () => conn.video.putSubscription({}));
    await cap('ordered', () => new r.RTCConnection('yes'));
    await cap('config', () => new r.RTCConnection(true, 'stun:example.invalid'));
    await cap('badIce', () => new r.RTCConnection(true, { iceServers: [{ urls: 'http://example.invalid' }] }));
    await cap('connect404', () => new r.RTCConnection(true, { iceServers: [] }).connect('/no-such-endpoint'));
    await cap('connectUrl', () => new r.RTCConnection(true, { iceServers: [] }).connect(42));
    await cap('offerTwice', async () => {
      const c = new r.RTCConnection(true, { iceServers: [] });
      await c.getLocalDescription();
      await c.getLocalDescription();
    });
    await cap('closed', async () => {
      const c = new r.RTCConnection(true, { iceServers: [] });
      await c.close();
      c.put_nowait('x');
    });
    const kb = new r.Keyboard();
    await cap('keyboardSubscribe', () => kb.subscribe(null));
    kb.close();
    await cap('driveSet', () => new r.DriveSender(conn).set('fast', 0));
    await cap('gamepadRate', () => r.setGamepadRate(-5));
    await conn.close();
    return out;
  });
  assert.equal(e.queued, 'no error');
  assert.match(e.cyclic, /^put_nowait: the message cannot be sent as JSON: .*circular/i);
  assert.match(e.bigint, /^put_nowait: the message cannot be sent as JSON: .*BigInt/i);
  assert.match(e.undefined, /^put_nowait: undefined cannot be sent as JSON/);
  assert.match(e.function, /^put_nowait: a function cannot be sent as JSON/);
  assert.match(e.remoteString, /^setRemoteDescription expects the description object \{type, sdp\}, got a string: parse the robot's reply first/);
  assert.match(e.remoteNull, /^setRemoteDescription expects the description object \{type, sdp\}, got null/);
  assert.match(e.remoteType, /^setRemoteDescription: the description's type must be "offer", "answer"/);
  assert.match(e.remoteNoSdp, /^setRemoteDescription: the description's sdp must be a string, got undefined/);
  assert.match(e.remoteGarbage, /^setRemoteDescription: the browser refused the description: /);
  assert.match(e.remoteError, /^setRemoteDescription: the robot refused the offer: too many peers/);
  assert.match(e.answerGarbage, /^getLocalDescription: the browser refused the description: /);
  assert.match(e.subscribe, /^RTCConnection.subscribe expects a function, got a number \(42\)/);
  assert.match(e.videoSubscribe, /^video.subscribe expects a function, got a string/);
  assert.match(e.putSubscription, /^video.putSubscription expects a MediaStreamTrack, got an object/);
  assert.match(e.ordered, /^RTCConnection: defaultOrdered must be a boolean/);
  assert.match(e.config, /^RTCConnection: rtcConfiguration must be an RTCConfiguration object/);
  assert.match(e.badIce, /^RTCConnection: the browser refused the configuration: /);
  assert.match(e.connect404, /^RTCConnection.connect: \/no-such-endpoint answered HTTP 4\d\d/);
  assert.match(e.connectUrl, /^RTCConnection.connect expects the signaling URL as a string, got a number/);
  assert.match(e.offerTwice, /^getLocalDescription: this connection already made its offer/);
  assert.match(e.closed, /^put_nowait: the connection is closed/);
  assert.match(e.keyboardSubscribe, /^Keyboard.subscribe expects a function, got null/);
  assert.match(e.driveSet, /^DriveSender.set: forward must be a finite number/);
  assert.match(e.gamepadRate, /^setGamepadRate expects a positive number of Hz, got a number \(-5\)/);
  await page.close();
});

test('RTCConnection answers an offer: two connections in one page talk, queued messages included', async (t) => {
  const { page } = await probe();
  const exchange = await page.evaluate(async () => {
    const r = window.rtcbot;
    const a = new r.RTCConnection(true, { iceServers: [] });
    const b = new r.RTCConnection(false, { iceServers: [] });
    window.qa = new r.Queue();
    window.qb = new r.Queue();
    a.subscribe(window.qa.put_nowait);
    b.subscribe(window.qb.put_nowait);
    a.put_nowait({ hello: 'b' }); // before the channel exists: queued, sent on open
    a.put_nowait('second');
    const offer = await a.getLocalDescription();
    const answer = await b.getLocalDescription(offer);
    await a.setRemoteDescription(answer);
    b.put_nowait([1, 2, 3]);
    window.pair = [a, b];
    return {
      offer: Object.keys(offer).sort(),
      types: [offer.type, answer.type],
      states: [a.peerConnection.signalingState, b.peerConnection.signalingState],
      candidates: /a=candidate/.test(offer.sdp) && /a=candidate/.test(answer.sdp),
    };
  });
  assert.deepEqual(exchange.offer, ['sdp', 'type']);
  assert.deepEqual(exchange.types, ['offer', 'answer']);
  assert.deepEqual(exchange.states, ['stable', 'stable']);
  if (!exchange.candidates) {
    // Chromium gathers host candidates only on an interface that is not loopback
    // (browser-tests.sh gives its namespace one: rtcbot0, 10.77.0.1/24).
    await page.close();
    skipOrFail(t, 'no ICE host candidates here (no non-loopback interface): messages not exchanged');
    return;
  }
  const got = await page.evaluate(async () => {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no message within 10 s')), 10_000));
    const got = await Promise.race([Promise.all([window.qb.get(), window.qb.get(), window.qa.get()]), timeout]);
    for (const c of window.pair) await c.close();
    return got;
  });
  assert.deepEqual(got, ['{"hello":"b"}', 'second', '[1,2,3]']);
  await page.close();
});

// A scripted gamepad behind navigator.getGamepads (headless Chromium has none).
const FAKE_GAMEPAD = `(() => {
  window.__pad = { id: 'scripted', index: 0, connected: true, mapping: 'standard',
    buttons: [{ pressed: false, value: 0 }, { pressed: false, value: 0 }], axes: [0, 0, 0, 0] };
  window.__polls = [];
  navigator.getGamepads = () => {
    window.__polls.push(performance.now());
    const p = window.__pad;
    return [{ ...p, buttons: p.buttons.map((b) => ({ ...b })), axes: [...p.axes] }, null];
  };
})();`;

test('Keyboard and Gamepad emit rtcbot.js event shapes; setGamepadRate sets the poll period', async () => {
  const { page, errors } = await probe(FAKE_GAMEPAD);
  await page.evaluate(() => {
    window.keys = [];
    window.prevented = [];
    window.kb = new window.rtcbot.Keyboard();
    window.kb.subscribe((e) => window.keys.push({ json: JSON.stringify(e), hasTimestamp: 'timestamp' in e }));
    addEventListener('keydown', (e) => window.prevented.push(e.defaultPrevented));
  });
  await page.keyboard.down('w');
  await page.keyboard.down('w'); // a repeat: not reported
  await page.keyboard.up('w');
  await page.keyboard.down('Shift');
  await page.keyboard.down('H');
  await page.keyboard.up('H');
  await page.keyboard.up('Shift');
  const keys = await eventually('7 key events to become 6 messages', async () => {
    const k = await page.evaluate(() => window.keys);
    return k.length >= 6 && k;
  });
  assert.deepEqual(keys.map((k) => k.json), [
    '{"type":"keydown","altKey":false,"shiftKey":false,"keyCode":87,"key":"w"}',
    '{"type":"keyup","altKey":false,"shiftKey":false,"keyCode":87,"key":"w"}',
    '{"type":"keydown","altKey":false,"shiftKey":true,"keyCode":16,"key":"Shift"}',
    '{"type":"keydown","altKey":false,"shiftKey":true,"keyCode":72,"key":"H"}',
    '{"type":"keyup","altKey":false,"shiftKey":true,"keyCode":72,"key":"H"}',
    '{"type":"keyup","altKey":false,"shiftKey":false,"keyCode":16,"key":"Shift"}',
  ]);
  assert.ok(keys.every((k) => k.hasTimestamp), 'events carry timestamp (undefined), as rtcbot.js');
  assert.ok((await page.evaluate(() => window.prevented)).every(Boolean), 'the default action is prevented');
  await page.evaluate(() => {
    window.kb.close();
    window.after = [];
    addEventListener('keydown', (e) => window.after.push(e.key));
  });
  await page.keyboard.press('x');
  // The same keydown reached a listener added after close(): the closed Keyboard saw it too, had it still listened.
  await eventually('the x keydown to be dispatched', () => page.evaluate(() => window.after.includes('x')));
  assert.equal((await page.evaluate(() => window.keys)).length, 6, 'no events after close()');

  // Gamepad: the first poll only records the state; later polls report changes.
  await page.evaluate(() => {
    window.pads = [];
    window.gp = new window.rtcbot.Gamepad();
    window.gp.subscribe((e) => window.pads.push(e));
  });
  await eventually('two gamepad polls', () => page.evaluate(() => window.__polls.length >= 2));
  await page.evaluate(() => { window.__pad.buttons[1].pressed = true; window.__pad.axes[1] = -0.5; });
  const events = await eventually('gamepad change events', async () => {
    const p = await page.evaluate(() => window.pads);
    return p.length >= 2 && p;
  });
  assert.deepEqual(events, [{ value: true, type: 'btn1' }, { value: -0.5, type: 'axis1' }]);
  assert.equal(await page.evaluate(() => window.gp.state.axes[1]), -0.5);

  // Poll rates as counts over 2 s of the page's clock (10 Hz: about 20, 50 Hz: about 100).
  const pollsIn = async (ms) => {
    const start = await page.evaluate(() => ({ n: window.__polls.length, t: performance.now() }));
    await eventually(`${ms} ms of polling`, () => page.evaluate(([t, span]) => performance.now() - t >= span, [start.t, ms]), ms + 5000);
    return (await page.evaluate(() => window.__polls.length)) - start.n;
  };
  const at10 = await pollsIn(2000);
  assert.ok(at10 >= 12 && at10 <= 35, `${at10} polls in 2 s at the default 10 Hz (about 20 expected)`);
  await page.evaluate(() => window.rtcbot.setGamepadRate(50));
  const at50 = await pollsIn(2000);
  assert.ok(at50 >= 60 && at50 <= 140, `${at50} polls in 2 s after setGamepadRate(50) (about 100 expected)`);
  await page.evaluate(() => window.gp.close());
  assert.equal(await pollsIn(1000), 0, 'polling stops when no Gamepad is open (none in 1 s, where 50 Hz gives 50)');
  await page.evaluate(() => window.rtcbot.setGamepadRate(10));
  assert.deepEqual(errors, []);
  await page.close();
});
