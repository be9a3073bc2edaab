// Driving through a lossy link: for 60 s the browser app (W held) and the npm
// package's DriveSender each drive their own robot while nftables drops 5% of the UDP
// packets to and from those robots' ICE ports at random. The robots keep their real
// 300 ms dead-man, and neither may stop on its own: drive states go on the unordered
// `drive` channel without retransmission, so a lost packet costs one state, never the
// states behind it. Runs only inside browser-tests.sh's network namespace
// (RTCBOT_E2E_NETNS=1), whose firewall it may change; elsewhere it skips (fails under CI).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import {
  eventually, freeUdpPort, installPackage, launchBrowser, robotDrive, skipOrFail, startRobot, startRobotServing,
} from '../lib/harness.mjs';

const SECONDS = Number(process.env.RTCBOT_LOSSY_SECS ?? 60);
const IN_NAMESPACE = process.env.RTCBOT_E2E_NETNS === '1';

const nft = (...args) => execFileSync('nft', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

let project;
let browser;
let robots = [];

before(async () => {
  if (!IN_NAMESPACE) return;
  project = await installPackage('rtcbot-lossy-');
  writeFileSync(join(project, 'probe.js'), 'import * as rtcbot from "rtcbot-rs";\nwindow.rtcbot = rtcbot;\n');
  await build({ absWorkingDir: project, entryPoints: ['probe.js'], bundle: true, format: 'esm', outdir: 'dist', logLevel: 'error' });
  const dist = join(project, 'dist');
  mkdirSync(dist, { recursive: true });
  copyFileSync(join(project, 'node_modules', 'rtcbot-rs', 'web', 'rtcbot_wasm_bg.wasm'), join(dist, 'rtcbot_wasm_bg.wasm'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><title>probe</title><script type="module" src="probe.js"></script>');
  browser = await launchBrowser();
});

after(async () => {
  if (IN_NAMESPACE) {
    try { nft('delete', 'table', 'inet', 'lossy'); } catch { /* not made */ }
  }
  await browser?.close();
  for (const r of robots) await r.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

test(`${SECONDS} s of driving at 20 Hz through 5% loss: no dead-man stop, from the app and the npm package`, async (t) => {
  if (!IN_NAMESPACE) {
    skipOrFail(t, 'needs the test network namespace of browser-tests.sh (RTCBOT_E2E_NETNS=1) to add nftables rules');
    return;
  }
  const [appPort, npmPort] = [await freeUdpPort(), await freeUdpPort()];
  const appRobot = await startRobot({ deadmanMs: 300, iceUdp: `127.0.0.1:${appPort}` });
  const npmRobot = await startRobotServing(join(project, 'dist'), { deadmanMs: 300, iceUdp: `127.0.0.1:${npmPort}` });
  robots = [appRobot, npmRobot];

  nft('add', 'table', 'inet', 'lossy');
  nft('add', 'chain', 'inet', 'lossy', 'out', '{ type filter hook input priority 0; }');
  const ports = `{ ${appPort}, ${npmPort} }`;
  nft('add', 'rule', 'inet', 'lossy', 'out', 'udp', 'sport', ports, 'numgen', 'random', 'mod', '100', '<', '5', 'drop');
  nft('add', 'rule', 'inet', 'lossy', 'out', 'udp', 'dport', ports, 'numgen', 'random', 'mod', '100', '<', '5', 'drop');
  assert.match(nft('list', 'table', 'inet', 'lossy'), /numgen random mod 100 < 5 drop/);

  // The app: W held for the whole run (the app repeats the state at 20 Hz).
  const appContext = await browser.newContext();
  const app = await appContext.newPage();
  await app.goto(appRobot.url);
  await eventually('the app to be live through the loss', async () =>
    (await app.locator('#app').getAttribute('data-conn')) === 'live');
  await app.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
  await app.keyboard.down('w');

  // The npm package: a DriveSender driving forward.
  const npm = await browser.newPage();
  await npm.goto(npmRobot.url);
  await eventually('the package to load', () => npm.evaluate(() => Boolean(window.rtcbot)));
  await npm.evaluate(async () => {
    const conn = new window.rtcbot.RTCConnection(true, { iceServers: [] });
    await conn.connect('/connect');
    window.drive = new window.rtcbot.DriveSender(conn);
    window.drive.set(0.5, 0);
  });

  await robotDrive(appRobot, 'the app driving forward', (d) => d.forward === 1);
  await robotDrive(npmRobot, 'the package driving forward', (d) => d.forward === 0.5);
  const before = [await appRobot.health(), await npmRobot.health()];
  const started = Date.now();
  const moving = { app: 0, npm: 0, samples: 0 };
  while (Date.now() - started < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 1000)); // sampling period of a figure, not a wait for an event
    const [a, n] = [await appRobot.health(), await npmRobot.health()];
    moving.samples += 1;
    moving.app += a.drive.forward === 1 ? 1 : 0;
    moving.npm += n.drive.forward === 0.5 ? 1 : 0;
  }
  const end = [await appRobot.health(), await npmRobot.health()];
  const dropped = nft('list', 'table', 'inet', 'lossy').match(/drop/g)?.length ?? 0;
  console.log(`lossy: ${SECONDS} s, dead-man stops app ${end[0].silence_stops - before[0].silence_stops}, `
    + `npm ${end[1].silence_stops - before[1].silence_stops}; moving in ${moving.app}/${moving.samples} and `
    + `${moving.npm}/${moving.samples} samples (${dropped} drop rules)`);
  assert.equal(end[0].silence_stops, before[0].silence_stops, 'the app\'s robot never stopped by its dead-man');
  assert.equal(end[1].silence_stops, before[1].silence_stops, 'the package\'s robot never stopped by its dead-man');
  assert.equal(moving.app, moving.samples, 'the app\'s robot was moving at every sample');
  assert.equal(moving.npm, moving.samples, 'the package\'s robot was moving at every sample');
  await app.keyboard.up('w');
  await npm.evaluate(() => window.drive.stop());
  await appContext.close();
  await npm.close();
});
