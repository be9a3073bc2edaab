// Shared set-up for the browser end-to-end tests: the real robot binary on a free
// loopback port, and Debian's Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const ARTIFACTS = join(ROOT, 'tests', 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

const ROBOT_BIN = process.env.RTCBOT_ROBOT_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-robot');
export const WAIT_MS = 20_000;

/**
 * The robot's dead-man stop in these tests: far longer than any wait, so a stop a
 * test sees within WAIT_MS was sent by the page (key release, focus loss, leaving)
 * or by the robot noticing the peer gone, never by the dead-man timer.
 */
export const DEADMAN_MS = 60_000;

/** Whether a skipped test must fail instead: under CI nothing may silently skip. */
export const IN_CI = process.env.CI === 'true';

/** Skips `t` with `why`, or fails it under CI=true. */
export function skipOrFail(t, why) {
  if (IN_CI) throw new Error(`would skip under CI=true, which fails instead: ${why}`);
  t.skip(why);
}

/**
 * The flags that keep a test robot open, on plain HTTP and quiet: these tests are
 * about other things than tokens and certificates (auth.test.mjs starts robots with
 * auth and HTTPS on).
 */
const LAB_BENCH = ['--no-auth', '--no-tls', '--quiet'];

/**
 * The robot binary, serving the built bundle, on 127.0.0.1 (port 0 = free port).
 * `labBench: false` leaves its default auth on (and its start-up block printed); the
 * robot's stdout lines are kept in `output` (`waitForLine` waits for one).
 */
export async function startRobot({ port = 0, args = [], deadmanMs = DEADMAN_MS, iceUdp = '127.0.0.1:0', labBench = true } = {}) {
  const proc = spawn(
    ROBOT_BIN,
    ['--listen', `127.0.0.1:${port}`, '--ice-udp', iceUdp, '--www', join(ROOT, 'www', 'dist'), '--print-addr', '--deadman-ms', String(deadmanMs), ...(labBench ? LAB_BENCH : []), ...args],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=error' } },
  );
  const lines = createInterface({ input: proc.stdout });
  const output = [];
  lines.on('line', (line) => output.push(line));
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`robot exited with ${code} before listening`); }),
  ]);
  const addr = first.replace('listening on ', '');
  const url = `http://${addr}`;
  return {
    proc,
    url,
    output,
    port: Number(addr.split(':').pop()),
    /** The first stdout line `pred` accepts, within WAIT_MS. */
    waitForLine(what, pred) {
      return eventually(what, () => output.find(pred));
    },
    async health() {
      const res = await fetch(`${url}/health`);
      return res.json();
    },
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

/** The Chromium the tests drive: $CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless Chromium (a fresh profile each launch) with WebRTC allowed on loopback.
 * `autoplayFlag: false` leaves Chromium's autoplay policy as users have it;
 * `executablePath` runs another program in its place (a wrapper that starts
 * CHROMIUM in a network namespace of its own, say).
 */
export async function launchBrowser({ autoplayFlag = true, args = [], executablePath = CHROMIUM } = {}) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      ...(autoplayFlag ? ['--autoplay-policy=no-user-gesture-required'] : []),
      ...args,
    ],
  });
}

/** A UDP port free on 127.0.0.1 now (for a robot's `--ice-udp`). */
export async function freeUdpPort() {
  const socket = createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Polls `check` (async, returns a truthy value when done) until WAIT_MS, then fails with `what`. */
export async function eventually(what, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

/** Waits until the robot's drive state satisfies `pred`. */
export function robotDrive(robot, what, pred, timeoutMs = WAIT_MS) {
  return eventually(`the robot to see ${what}`, async () => {
    const h = await robot.health();
    return pred(h.drive) ? h.drive : false;
  }, timeoutMs);
}

/**
 * Waits for the robot's drive state to be a stop, within 10 s: well before the
 * 60 s dead-man (DEADMAN_MS), so the stop came from the page or the peer leaving.
 */
export function robotStops(robot, why) {
  return robotDrive(robot, `a stop ${why} (long before the 60 s dead-man)`, (d) => d.forward === 0 && d.turn === 0, 10_000);
}

// ---- npm package (scripts/build-npm.sh) -------------------------------------------

/** The robot binary like `startRobot`, but serving `www` (any folder) at `/`. */
export async function startRobotServing(www, { args = [], deadmanMs = DEADMAN_MS, iceUdp = '127.0.0.1:0' } = {}) {
  const proc = spawn(
    ROBOT_BIN,
    ['--listen', '127.0.0.1:0', '--ice-udp', iceUdp, '--www', www, '--print-addr', '--deadman-ms', String(deadmanMs), ...LAB_BENCH, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=error' } },
  );
  const lines = createInterface({ input: proc.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`robot exited with ${code} before listening`); }),
  ]);
  const url = `http://${first.replace('listening on ', '')}`;
  return {
    proc,
    url,
    async health() {
      return (await fetch(`${url}/health`)).json();
    },
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

/** The tarball built by scripts/build-npm.sh (target/npm/rtcbot-rs-<version>.tgz). */
export function npmTarball() {
  const dir = join(ROOT, 'target', 'npm');
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => /^rtcbot-rs-.*\.tgz$/.test(f)) : [];
  if (found.length !== 1) {
    throw new Error(`expected exactly one rtcbot-rs-*.tgz in ${dir}, found ${found.length}: run bash scripts/build-npm.sh`);
  }
  return join(dir, found[0]);
}

/**
 * A fresh project folder with the packed package installed by npm, the way a user
 * does it: `npm install ./rtcbot-rs-<version>.tgz`. Offline: the package has no
 * dependencies, so this works without network.
 */
export async function installPackage(prefix = 'rtcbot-npm-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'rtcbot-npm-test', private: true, type: 'module' }));
  const proc = spawn('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', npmTarball()], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const [code] = await once(proc, 'exit');
  if (code !== 0) throw new Error(`npm install of the tarball failed (${code}):\n${output}`);
  return dir;
}

/** Runs a command to completion; resolves to {code, stdout, stderr}. */
export async function run(cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const [code] = await once(proc, 'exit');
  return { code, stdout, stderr };
}

/**
 * An init script recording what the page sends on its data channels
 * (`window.__sent`: {label, data}) and keeping the channels it creates
 * (`window.__channels`), without changing what is sent.
 */
export const RECORD_DATA_CHANNELS = `(() => {
  window.__sent = [];
  window.__channels = [];
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    window.__sent.push({ label: this.label, data: typeof data === 'string' ? data : '[binary]' });
    return send.call(this, data);
  };
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (...args) {
    const dc = create.apply(this, args);
    window.__channels.push(dc);
    return dc;
  };
})();`;

/**
 * A small STUN server on 127.0.0.1 (RFC 5389 Binding only) that answers every request
 * with `mapped` (a documentation address, port kept) as the XOR-MAPPED-ADDRESS, so a
 * page that used it shows a server-reflexive candidate no host could produce.
 * `requests` counts the binding requests seen.
 */
export async function startStunServer(mapped = '203.0.113.7') {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket('udp4');
  const server = { requests: 0, url: '', close: () => new Promise((r) => socket.close(r)) };
  const ip = mapped.split('.').map(Number);
  socket.on('message', (msg, rinfo) => {
    // A Binding request: type 0x0001, the magic cookie, a 12-byte transaction id.
    if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0001 || msg.readUInt32BE(4) !== 0x2112a442) return;
    server.requests += 1;
    const res = Buffer.alloc(32);
    res.writeUInt16BE(0x0101, 0); // Binding success response
    res.writeUInt16BE(12, 2); // one attribute of 4 + 8 bytes
    msg.copy(res, 4, 4, 20); // cookie and transaction id
    res.writeUInt16BE(0x0020, 20); // XOR-MAPPED-ADDRESS
    res.writeUInt16BE(8, 22);
    res.writeUInt8(0, 24);
    res.writeUInt8(1, 25); // IPv4
    res.writeUInt16BE(rinfo.port ^ 0x2112, 26);
    const cookie = [0x21, 0x12, 0xa4, 0x42];
    for (let i = 0; i < 4; i += 1) res.writeUInt8(ip[i] ^ cookie[i], 28 + i);
    socket.send(res, rinfo.port, rinfo.address);
  });
  await new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', resolve);
  });
  server.url = `stun:127.0.0.1:${socket.address().port}`;
  return server;
}

/**
 * An init script that records each peer connection's ICE servers
 * (`window.__configs`) and gathered candidates (`window.__candidates`) on the page.
 */
export const RECORD_ICE = () => {
  window.__configs = [];
  window.__candidates = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__configs.push(pc.getConfiguration().iceServers);
    pc.addEventListener('icecandidate', (e) => e.candidate && window.__candidates.push(e.candidate.candidate));
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
};

export const RELAY_BIN = process.env.RTCBOT_RELAY_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-relay');

/**
 * The relay binary on a free loopback port with `toml` settings, serving `www` (the
 * built app by default) at /ROOM/. `url` is its http:// address; `room(name)` says
 * whether a robot is in that room now.
 */
export async function startRelay(toml = '', www = join(ROOT, 'www', 'dist')) {
  const config = join(mkdtempSync(join(tmpdir(), 'rtcbot-relay-')), 'relay.toml');
  writeFileSync(config, toml);
  const proc = spawn(RELAY_BIN, ['--listen', '127.0.0.1:0', '--www', www, '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  const lines = createInterface({ input: proc.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`relay exited with ${code} before listening`); }),
  ]);
  const url = first.match(/http:\/\/[^:]+:\d+/)?.[0];
  if (!url) throw new Error(`the relay's first line names no address: ${first}`);
  return {
    url,
    async robotIn(room) {
      return (await (await fetch(`${url}/${room}/status`)).json()).robot;
    },
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}
