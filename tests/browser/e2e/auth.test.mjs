// A robot as the README's run command starts it, auth on (a generated driver token)
// and `--tls`: Chromium, trusting only the SPKI pin the robot printed, opens the
// printed https URL (the token inside it), goes live and drives; the token leaves
// the address bar and is kept for the next visit; a page without a token is refused
// with the reason; plain HTTP on the same port redirects to HTTPS. Screenshots of
// the page at phone and laptop size go to tests/artifacts/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, eventually, launchBrowser, startRobot } from '../lib/harness.mjs';

const attr = (page, name) => page.locator('#app').getAttribute(`data-${name}`);

/** Waits until the video has played for a while (so a screenshot shows it). */
const playing = (page) => eventually('the video to play', () =>
  page.evaluate(() => (document.getElementById('video')?.currentTime ?? 0) > 1));

/** GET `url` with node's own client (`ca`: the robot's certificate); status, headers, body. */
function get(url, { ca } = {}) {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS and tokens', () => {
  let robot;
  let browser;
  let state;
  let pageUrl;
  let ca;
  let base;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'rtcbot-auth-'));
    robot = await startRobot({ labBench: false, args: ['--tls', '--state-dir', state] });
    const local = await robot.waitForLine('the printed URL for this machine', (l) => l.includes('On this machine:'));
    pageUrl = local.split('On this machine:')[1].trim();
    const https = await robot.waitForLine('the HTTPS line', (l) => l.trim().startsWith('HTTPS'));
    const pin = https.split('SPKI pin ')[1].trim();
    assert.ok(pageUrl.startsWith('https://localhost:') && pageUrl.includes('/?token='), pageUrl);
    base = pageUrl.split('/?')[0];
    ca = readFileSync(join(state, 'tls', 'cert.pem'));
    browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${pin}`] });
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  async function drive(robotForward) {
    return eventually(`the robot to drive forward ${robotForward}`, async () => {
      const health = JSON.parse((await get(`${base}/health`, { ca })).body);
      return health.drive.forward === robotForward ? health.drive : false;
    });
  }

  test('the printed URL opens over HTTPS, goes live and drives; the token is kept', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(pageUrl);
    await eventually('the page to be live', async () => (await attr(page, 'conn')) === 'live');
    assert.equal(await page.evaluate(() => window.isSecureContext), true, 'a secure context');
    assert.ok(!page.url().includes('token='), `the token left the address bar: ${page.url()}`);
    await playing(page);
    await page.screenshot({ path: join(ARTIFACTS, 'https-laptop.png') });
    await page.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.keyboard.down('w');
    await drive(1);
    await page.keyboard.up('w');
    await drive(0);
    // A driver's token may not change the video: the robot says so on the page.
    await page.click('#settings-button');
    await page.selectOption('#settings-size', '320x240');
    await page.click('#settings-apply');
    await eventually('the refusal on the page', async () =>
      /need an admin's token/.test((await page.locator('.toast').textContent().catch(() => '')) ?? ''));
    await page.click('#settings-button');
    // The next visit, without ?token=, uses the kept token.
    await page.goto(`${base}/`);
    await eventually('the page to be live again with the kept token', async () => (await attr(page, 'conn')) === 'live');
    await context.close();
  });

  test('at phone size, the page is live and readable', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    await page.goto(pageUrl);
    await eventually('the phone page to be live', async () => (await attr(page, 'conn')) === 'live');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling at 360 px (${overflow} px too wide)`);
    await playing(page);
    await page.screenshot({ path: join(ARTIFACTS, 'https-phone.png') });
    await context.close();
  });

  test('without a token the page is refused with the reason', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await eventually('data-conn = failed', async () => (await attr(page, 'conn')) === 'failed');
    const reason = await attr(page, 'conn-reason');
    assert.match(reason, /HTTP 401.*needs a token/, reason);
    await context.close();
  });

  test('plain HTTP on the same port redirects to HTTPS', async () => {
    const plain = `http://127.0.0.1:${robot.port}/?x=1`;
    const res = await get(plain);
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, `https://127.0.0.1:${robot.port}/?x=1`);
  });
});
