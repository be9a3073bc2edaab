// A robot behind NAT reached through the relay, with Debian's coturn as the TURN
// server, on a network of its own made of network namespaces (names unique to the run,
// all deleted after, even when a test fails):
//
//   robot 10.99.1.2 ── 10.99.1.1 router 10.99.0.2 ── 10.99.0.1 wan 10.99.2.1 ── 10.99.2.2 browser
//          (robot binary)      (nftables MASQUERADE)     (relay, coturn)            (Chromium)
//
// The wan namespace runs rtcbot-relay (serving the app, `--stun-url`/`--turn-url` the
// coturn, and its `turn_secret` coturn's `static-auth-secret`) and `turnserver` (coturn's
// REST scheme: `use-auth-secret`), both on 10.99.0.1, and forwards between the router and
// the browser. It has no route to 10.99.1.0/24: the robot is reached only through the
// router's NAT. The robot connects out to its room and has coturn's STUN port in its
// `[webrtc] ice_servers` (`--ice-server`), so its answer carries its address on the NAT
// (10.99.0.2). It needs that: coturn relays only from addresses the page gave a
// permission, and without it the page knows only the robot's private address (case 1
// then fails). One relayed side is enough, so the robot takes no TURN allocation of its
// own (TURN permissions are per IP address, so this holds behind a symmetric NAT too).
// Chromium runs in the browser namespace (a wrapper `ip netns exec NS
// chromium` as playwright's executable) and opens http://10.99.0.1:PORT/ROOM: the app
// takes the room's ICE servers from /ROOM/ice, TURN with credentials the relay minted.
//
// 1. The wan forwards no UDP between the NAT and the browser (nftables drop): the page
//    still goes live, through coturn: the selected candidate pair's local candidate is
//    Chromium's relay candidate on coturn, and the video plays.
// 2. The wan forwards everything: the page goes direct (the selected pair is not relay;
//    its remote candidate is the robot's address on the NAT).
//
// Needs root, iproute2, nftables and coturn's `turnserver` (skips elsewhere, fails under CI).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CHROMIUM, DEADMAN_MS, RELAY_BIN, ROOT, WAIT_MS, eventually, launchBrowser, skipOrFail,
} from '../lib/harness.mjs';

const ROBOT_BIN = process.env.RTCBOT_ROBOT_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-robot');
const ROOM = 'nat-room';
const SECRET = `coturn-secret-${process.pid}`;
const WAN_IP = '10.99.0.1';
const NAT_IP = '10.99.0.2';
const ROBOT_IP = '10.99.1.2';
const BROWSER_IP = '10.99.2.2';
const STUN = `stun:${WAN_IP}:3478`;
const TURN = `turn:${WAN_IP}:3478?transport=udp`;

/** `address:port` of `ip`. */
const at = (addr) => new RegExp(`^${addr.replaceAll('.', '\\.')}:\\d+$`);

const tag = `${process.pid}-${Math.random().toString(16).slice(2, 6)}`;
const NS = {
  robot: `rtcbot-nat-robot-${tag}`,
  router: `rtcbot-nat-router-${tag}`,
  wan: `rtcbot-nat-wan-${tag}`,
  browser: `rtcbot-nat-browser-${tag}`,
};

/** Why this machine cannot run the test, or null. */
function missing() {
  if (process.getuid?.() !== 0) return 'needs root to make network namespaces';
  for (const [cmd, args] of [['ip', ['-V']], ['nft', ['--version']], ['turnserver', ['--version']]]) {
    if (spawnSync(cmd, args, { stdio: 'ignore' }).error) return `needs ${cmd} (${cmd === 'turnserver' ? 'coturn' : cmd === 'ip' ? 'iproute2' : 'nftables'})`;
  }
  return null;
}
const WHY_NOT = missing();

/** Runs `cmd` to completion: its stdout, or an error with its stderr. */
function sh(cmd, ...args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}
const ip = (...args) => sh('ip', ...args);
const inNs = (ns, ...cmd) => sh('ip', 'netns', 'exec', ns, ...cmd);

const made = [];
const procs = [];
let tmp;

/** A veth pair between two namespaces, each end addressed. */
function link(a, aName, aAddr, b, bName, bAddr) {
  ip('-n', a, 'link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b);
  ip('-n', a, 'addr', 'add', aAddr, 'dev', aName);
  ip('-n', b, 'addr', 'add', bAddr, 'dev', bName);
  ip('-n', a, 'link', 'set', aName, 'up');
  ip('-n', b, 'link', 'set', bName, 'up');
}

function makeNetwork() {
  for (const ns of Object.values(NS)) {
    ip('netns', 'add', ns);
    made.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  link(NS.robot, 'eth0', `${ROBOT_IP}/24`, NS.router, 'lan0', '10.99.1.1/24');
  link(NS.router, 'wan0', `${NAT_IP}/24`, NS.wan, 'up0', `${WAN_IP}/24`);
  link(NS.wan, 'down0', '10.99.2.1/24', NS.browser, 'eth0', `${BROWSER_IP}/24`);
  ip('-n', NS.robot, 'route', 'add', 'default', 'via', '10.99.1.1');
  ip('-n', NS.router, 'route', 'add', 'default', 'via', WAN_IP);
  ip('-n', NS.browser, 'route', 'add', 'default', 'via', '10.99.2.1');
  // The wan's default route: "the internet", where a packet to an address of no
  // network here (the robot's private 10.99.1.2) goes and is lost, as on a real TURN
  // server. (Without a route, coturn's send to it fails with ENETUNREACH, and coturn
  // then closes that whole allocation.) It is a veth pair with both ends in the wan
  // and a gateway at a MAC address nobody has, so the other end drops what goes out.
  link(NS.wan, 'internet0', '10.99.9.1/24', NS.wan, 'internet1', '10.99.8.1/24');
  ip('-n', NS.wan, 'neigh', 'add', '10.99.9.2', 'lladdr', '02:00:00:00:99:02', 'dev', 'internet0', 'nud', 'permanent');
  ip('-n', NS.wan, 'route', 'add', 'default', 'via', '10.99.9.2', 'dev', 'internet0');
  for (const ns of [NS.router, NS.wan]) inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  inNs(NS.router, 'nft', [
    'table ip nat {',
    '  chain post { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }',
    '}',
  ].join('\n'));
  // The wan's firewall: a chain of its forwarded packets, empty (everything passes)
  // until case 1 fills it. Traffic to and from the relay and coturn is the wan's own
  // (input and output, not forward), so it always passes.
  inNs(NS.wan, 'nft', [
    'table inet nat_test {',
    '  chain between { type filter hook forward priority filter; policy accept; }',
    '}',
  ].join('\n'));
}

/** Direct UDP between the robot's NAT and the browser: dropped (and counted), or let through. */
function blockDirectUdp(block) {
  inNs(NS.wan, 'nft', 'flush', 'chain', 'inet', 'nat_test', 'between');
  if (!block) return;
  inNs(NS.wan, 'nft', 'add', 'rule', 'inet', 'nat_test', 'between', 'ip', 'saddr', NAT_IP, 'ip', 'daddr', BROWSER_IP, 'meta', 'l4proto', 'udp', 'counter', 'drop');
  inNs(NS.wan, 'nft', 'add', 'rule', 'inet', 'nat_test', 'between', 'ip', 'saddr', BROWSER_IP, 'ip', 'daddr', NAT_IP, 'meta', 'l4proto', 'udp', 'counter', 'drop');
}

/** Packets the case-1 rules dropped so far. */
function droppedDirect() {
  const rules = inNs(NS.wan, 'nft', 'list', 'chain', 'inet', 'nat_test', 'between');
  return [...rules.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/**
 * `cmd` in namespace `ns`, its stdout and stderr lines kept (and shown when a wait
 * for one of them fails).
 */
function startIn(ns, name, cmd, args, env = {}) {
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines = [];
  for (const stream of [proc.stdout, proc.stderr]) createInterface({ input: stream }).on('line', (l) => lines.push(l));
  const p = {
    name,
    proc,
    lines,
    /** The first line matching `re`; fails with the output so far if none comes. */
    async line(what, re, timeoutMs = WAIT_MS) {
      const exited = once(proc, 'exit').then(([code]) => { throw new Error(`${name} exited (${code}) waiting for ${what}:\n${lines.join('\n')}`); });
      exited.catch(() => {});
      const found = eventually(what, () => lines.find((l) => re.test(l)), timeoutMs).catch((err) => {
        throw new Error(`${err.message}; ${name} said:\n${lines.slice(-40).join('\n')}`);
      });
      return Promise.race([found, exited]);
    },
  };
  procs.push(p);
  return p;
}

async function stopAll() {
  for (const { proc } of procs.reverse()) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    proc.kill('SIGTERM');
    const exited = once(proc, 'exit');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

function deleteNetwork() {
  for (const ns of made.splice(0)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

// Even if the runner exits without `after` (an uncaught error, Ctrl-C, a kill): no
// process, no namespace left.
process.on('exit', () => {
  for (const { proc } of procs) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  deleteNetwork();
});
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.once(signal, () => process.exit(code));

/** Keeps the page's peer connections (`window.__pcs`). */
const KEEP_PEERS = () => {
  window.__pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
};

/** The selected candidate pair of the page's last peer connection, once it has one. */
async function selectedPair(page) {
  return page.evaluate(async () => {
    const pc = window.__pcs.at(-1);
    if (!pc) return null;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair || pair.state !== 'succeeded') return null;
    const describe = (c) => ({ type: c.candidateType, address: `${c.address}:${c.port}`, relayProtocol: c.relayProtocol });
    return { local: describe(stats.get(pair.localCandidateId)), remote: describe(stats.get(pair.remoteCandidateId)) };
  });
}

let browser;
let relayUrl;
let coturn;

before(async () => {
  if (WHY_NOT) return;
  tmp = mkdtempSync(join(tmpdir(), 'rtcbot-nat-'));
  makeNetwork();

  // `-n`: every setting from the command line, none from the machine's
  // /etc/turnserver.conf (the Debian package's own service is not needed).
  coturn = startIn(NS.wan, 'coturn', 'turnserver', [
    '-n', '-v', '--no-cli', '--log-file=stdout', '--simple-log', `--pidfile=${join(tmp, 'turnserver.pid')}`,
    `--db=${join(tmp, 'turndb')}`, `--listening-ip=${WAN_IP}`, `--relay-ip=${WAN_IP}`, '--listening-port=3478',
    '--min-port=49152', '--max-port=49407', '--no-tcp', '--no-tls', '--no-dtls', '--no-tcp-relay',
    '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=rtcbot.test',
    '--allowed-peer-ip=10.99.0.0-10.99.255.255', '--no-software-attribute',
  ]);
  await coturn.line('coturn listening', new RegExp(`UDP listener opened on: ${WAN_IP.replaceAll('.', '\\.')}:3478`));

  const config = join(tmp, 'relay.toml');
  writeFileSync(config, `turn_secret = "${SECRET}"\n`);
  const relay = startIn(NS.wan, 'relay', RELAY_BIN, [
    '--listen', `${WAN_IP}:0`, '--www', join(ROOT, 'www', 'dist'), '--config', config,
    '--stun-url', STUN, '--turn-url', TURN,
  ], { RUST_LOG: process.env.RUST_LOG ?? 'warn' });
  const first = await relay.line('the relay listening', /http:\/\/[\d.]+:\d+/);
  relayUrl = first.match(/http:\/\/[\d.]+:\d+/)[0];

  const robot = startIn(NS.robot, 'robot', ROBOT_BIN, [
    '--listen', '127.0.0.1:0', '--ice-udp', `${ROBOT_IP}:0`, '--ice-server', STUN,
    '--www', join(ROOT, 'www', 'dist'), '--deadman-ms', String(DEADMAN_MS), '--no-auth', '--no-tls', '--quiet',
    '--relay', `${relayUrl.replace('http', 'ws')}/${ROOM}`,
  ], { RUST_LOG: 'warn,rtcbot::relay=info,rtc_dtls=error,rtc_ice=error,webrtc=error,rtc=error' });
  await robot.line('the robot in its room, through the NAT', /relay: in the room at/);

  const wrapper = join(tmp, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS.browser} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await launchBrowser({ executablePath: wrapper });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopAll();
  deleteNetwork();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/**
 * Opens the app in the room, waits for it to be live and its video to play, and
 * returns the selected candidate pair once `accept` takes it.
 */
async function watch(what, accept) {
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  try {
    return await watchOn(page, what, accept);
  } catch (err) {
    err.message += `\nthe page's candidate pairs: ${JSON.stringify(await candidatePairs(page).catch((e) => String(e)))}`;
    err.message += `\ncoturn said (last 30 lines):\n${coturn.lines.slice(-30).join('\n')}`;
    throw err;
  } finally {
    await page.close();
  }
}

/** Every candidate pair of the page's last peer connection, with its state (for failures). */
function candidatePairs(page) {
  return page.evaluate(async () => {
    const pc = window.__pcs.at(-1);
    if (!pc) return 'no peer connection';
    const stats = await pc.getStats();
    const c = (id) => { const x = stats.get(id); return x && `${x.candidateType} ${x.address}:${x.port}`; };
    return [...stats.values()].filter((s) => s.type === 'candidate-pair')
      .map((p) => `${c(p.localCandidateId)} -> ${c(p.remoteCandidateId)}: ${p.state}, ${p.requestsSent} checks sent, ${p.responsesReceived} answered`);
  });
}

async function watchOn(page, what, accept) {
  {
    await page.addInitScript(KEEP_PEERS);
    await page.goto(`${relayUrl}/${ROOM}`);
    await eventually(`the page to be live ${what}`, async () => (await page.locator('#app').getAttribute('data-conn')) === 'live');
    await eventually(`video playing ${what} (15 frames)`, () => page.evaluate(() => {
      const v = document.querySelector('video');
      return v && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames >= 15;
    }));
    let last;
    const pair = await eventually(`the selected candidate pair ${what}`, async () => {
      last = await selectedPair(page);
      return last && accept(last) ? last : null;
    }).catch((err) => { throw new Error(`${err.message}; the selected pair: ${JSON.stringify(last)}`); });
    const [servers] = await page.evaluate(() => window.__pcs.map((pc) => pc.getConfiguration().iceServers));
    return { pair, servers };
  }
}

test('direct UDP blocked between the NATed robot and the browser: the page goes live through coturn and plays', async (t) => {
  if (WHY_NOT) { skipOrFail(t, WHY_NOT); return; }
  blockDirectUdp(true);
  const { pair, servers } = await watch('through coturn', (p) => p.local.type === 'relay');
  console.log(`# direct blocked: selected pair ${pair.local.type} ${pair.local.address} -> ${pair.remote.type} ${pair.remote.address}`);
  assert.equal(pair.local.type, 'relay', 'the page\'s side of the pair is its TURN allocation');
  assert.match(pair.local.address, at(WAN_IP), 'on coturn');
  assert.equal(pair.local.relayProtocol, 'udp');
  assert.match(pair.remote.address, at(NAT_IP), 'to the robot\'s address on the NAT');
  const turn = servers.find((s) => s.urls.includes(TURN));
  assert.ok(turn, `the room's TURN server: ${JSON.stringify(servers)}`);
  assert.match(turn.username, new RegExp(`^\\d+:${ROOM}$`), 'credentials minted for the room');
  assert.ok(droppedDirect() > 0, 'direct checks were tried and dropped');
  assert.ok(coturn.lines.some((l) => /ALLOCATE processed, success/.test(l)), 'coturn allocated for the page');
});

test('direct UDP allowed: the page goes direct to the robot\'s NAT address, not through coturn', async (t) => {
  if (WHY_NOT) { skipOrFail(t, WHY_NOT); return; }
  blockDirectUdp(false);
  const { pair } = await watch('direct', (p) => p.local.type !== 'relay' && p.remote.type !== 'relay');
  console.log(`# direct allowed: selected pair ${pair.local.type} ${pair.local.address} -> ${pair.remote.type} ${pair.remote.address}`);
  assert.equal(pair.local.type, 'host');
  assert.match(pair.local.address, at(BROWSER_IP), 'the browser\'s own address');
  assert.match(pair.remote.address, at(NAT_IP), 'the robot through its NAT');
});
