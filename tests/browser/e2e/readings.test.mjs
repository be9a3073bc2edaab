// The robot's own readings on the page: an Arduino (played by this test on the far
// end of a socat pty pair) sends its struct over serial, the robot binary decodes it
// with its `[serial]` read format, and the page shows each field as a named value,
// with the serial link's state; a new struct updates the values in place.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, eventually, launchBrowser, startRobot } from '../lib/harness.mjs';

let dir;
let socat;
let robot;
let browser;

/** Two linked ptys: `robot` for the robot's serial port, `arduino` for this test. */
async function ptyPair(folder) {
  const proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${join(folder, 'robot')}`, `pty,raw,echo=0,link=${join(folder, 'arduino')}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const said = [];
  createInterface({ input: proc.stderr }).on('line', (line) => said.push(line));
  await eventually('socat to link its ptys', () => said.some((l) => l.includes('starting data transfer loop')));
  return proc;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rtcbot-readings-'));
  socat = await ptyPair(dir);
  const config = join(dir, 'robot.toml');
  writeFileSync(config, [
    '[serial]',
    `path = "${join(dir, 'robot')}"`,
    'read_format = "<BH"',
    'read_keys = ["bumper", "battery_mv"]',
    'start_byte = 0xAA',
    '',
  ].join('\n'));
  robot = await startRobot({ args: ['--config', config] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await robot?.stop();
  socat?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("an Arduino's struct shows on the page as named values", async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await page.goto(robot.url);
  await eventually('the page to be live', async () => (await page.locator('#app').getAttribute('data-conn')) === 'live');
  const value = (name) => page.locator(`#robot-values dd[data-name="${name}"]`).textContent().catch(() => null);
  const arduino = openSync(join(dir, 'arduino'), 'w');
  try {
    // <BH after the start byte: bumper = 1, battery_mv = 11822.
    const send = (bumper, mv) => writeSync(arduino, Buffer.from([0xaa, bumper, mv & 0xff, mv >> 8]));
    // Sent until it shows: the page may connect after the first struct went out.
    await eventually('the struct on the page', async () => {
      send(1, 11822);
      return (await value('battery_mv')) === '11822' && (await value('bumper')) === '1';
    });
    send(0, 11790);
    await eventually('the new values in place', async () => (await value('battery_mv')) === '11790' && (await value('bumper')) === '0');
    assert.equal(await page.locator('#robot-values dt').count(), await page.locator('#robot-values dd').count());
    await page.screenshot({ path: join(ARTIFACTS, 'readings-laptop.png') });
  } finally {
    closeSync(arduino);
  }
});
