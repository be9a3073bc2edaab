// Measures the browser app against the real robot and prints JSON: bundle size
// (gzip), time from navigation to the first presented video frame, the
// glass-to-glass latency read from the frame stamps, and connection set-up time.
//   node tests/browser/measure.mjs [--runs 5]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, eventually, launchBrowser, startRobot } from './lib/harness.mjs';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 5;
const dist = join(ROOT, 'www', 'dist');
const bundle = {};
let total = 0;
for (const f of readdirSync(dist).filter((f) => /\.(wasm|js)$/.test(f))) {
  const gz = gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
  bundle[f] = gz;
  total += gz;
}

const firstFrameHook = () => {
  const hook = () => {
    const v = document.getElementById('video');
    if (v && !v.__hooked && v.requestVideoFrameCallback) {
      v.__hooked = true;
      v.requestVideoFrameCallback((now) => { window.__firstFrameMs = now; });
    }
  };
  new MutationObserver(hook).observe(document, { childList: true, subtree: true });
};

const robot = await startRobot();
const browser = await launchBrowser();
const firstFrames = [];
const latencies = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.addInitScript(firstFrameHook);
    await page.goto(robot.url);
    firstFrames.push(await eventually('the first frame', () => page.evaluate(() => window.__firstFrameMs)));
    // Let the latency window fill with 60 stamped frames, then sample it.
    await eventually('stamped frames', async () => Number(await page.locator('#app').getAttribute('data-frames')) > 90);
    for (let k = 0; k < 5; k++) {
      latencies.push(Number(await page.locator('#app').getAttribute('data-latency-ms')));
      await page.waitForTimeout(400);
    }
    await context.close();
  }
} finally {
  await browser.close();
  await robot.stop();
}
// Connection set-up as a browser sees it: new RTCPeerConnection → offer → POST
// /connect → answer → the `default` data channel open.
const setups = [];
{
  const robot2 = await startRobot();
  const browser2 = await launchBrowser();
  try {
    const page = await browser2.newPage();
    await page.goto(`${robot2.url}/health`);
    for (let i = 0; i < 10; i++) {
      setups.push(await page.evaluate(async () => {
        const t0 = performance.now();
        const pc = new RTCPeerConnection();
        const dc = pc.createDataChannel('default');
        const opened = new Promise((resolve) => { dc.onopen = resolve; });
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise((resolve) => {
          if (pc.iceGatheringState === 'complete') resolve();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
        });
        const res = await fetch('/connect', { method: 'POST', body: JSON.stringify(pc.localDescription) });
        await pc.setRemoteDescription(await res.json());
        await opened;
        const ms = performance.now() - t0;
        pc.close();
        return ms;
      }));
    }
  } finally {
    await browser2.close();
    await robot2.stop();
  }
}

const sorted = (a) => [...a].sort((x, y) => x - y);
const median = (a) => sorted(a)[Math.floor((a.length - 1) / 2)];
console.log(JSON.stringify({
  bundle_gzip_bytes: { ...bundle, total },
  first_frame_ms: { median: Math.round(median(firstFrames)), all: firstFrames.map(Math.round) },
  browser_setup_ms: { median: Math.round(median(setups)), all: setups.map(Math.round) },
  glass_to_glass_ms_p50: { median: median(latencies), min: sorted(latencies)[0], max: sorted(latencies).at(-1), samples: latencies.length },
}, null, 2));
