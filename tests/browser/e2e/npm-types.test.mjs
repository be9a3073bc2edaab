// The package's TypeScript declarations: a strict type check of code using the whole
// API (tutorial-style and typed), and of code that misuses it (must be rejected).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, installPackage, run } from '../lib/harness.mjs';

const TSC = join(ROOT, 'tests', 'browser', 'node_modules', 'typescript', 'bin', 'tsc');
let project;
before(async () => {
  project = await installPackage('rtcbot-types-');
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler',
      lib: ['ES2022', 'DOM', 'ESNext.Disposable'], types: [], skipLibCheck: false,
    },
    include: ['*.ts'],
  }));
});
after(() => { if (project) rmSync(project, { recursive: true, force: true }); });

async function typecheck(name, code) {
  writeFileSync(join(project, name), code);
  const r = await run(process.execPath, [TSC, '-p', project, '--pretty', 'false'], { cwd: project });
  rmSync(join(project, name));
  return r.stdout + r.stderr;
}

test('the declarations type-check code using the whole API', async () => {
  const out = await typecheck('ok.ts', `
    import * as rtcbot from "rtcbot-rs";
    import type { SessionDescription, TelemetryMessage, KeyboardMessage, GamepadMessage, DriveState } from "rtcbot-rs";
    const conn = new rtcbot.RTCConnection();
    const lan = new rtcbot.RTCConnection(false, { iceServers: [] });
    conn.video.subscribe((stream: MediaStream) => { document.querySelector("video")!.srcObject = stream; });
    conn.audio.subscribe((stream) => stream.getTracks());
    conn.subscribe((m) => console.log(m));
    async function connect(): Promise<void> {
      const offer: SessionDescription = await conn.getLocalDescription();
      const response = await fetch("/connect", { method: "POST", body: JSON.stringify(offer) });
      await conn.setRemoteDescription(await response.json());
      const answer: SessionDescription = await lan.getLocalDescription(offer);
      await lan.connect();
      await lan.connect("/connect");
      const kb = new rtcbot.Keyboard();
      kb.subscribe(conn.put_nowait);
      kb.subscribe((e: KeyboardMessage) => { if (e.type === "keydown") conn.put_nowait({ key: e.key, code: e.keyCode }); });
      const gp = new rtcbot.Gamepad();
      gp.subscribe((e: GamepadMessage) => conn.put_nowait(e));
      rtcbot.setGamepadRate(20);
      const q = new rtcbot.Queue();
      conn.subscribe(q.put_nowait);
      const next: unknown = await q.get();
      const t: TelemetryMessage | null = rtcbot.parseTelemetry("{}");
      if (t?.type === "stats") { const fps: number = t.fps; const enc: string = t.encoder; }
      if (t?.type === "pong") { const rtt: number = performance.now() - t.t; }
      const drive = new rtcbot.DriveSender(conn);
      drive.set(1, -0.5);
      const s: DriveState = drive.state;
      const text: string = rtcbot.driveMessage(0.5, 0) + rtcbot.driveMessage(0, 0, 3);
      const track = (await navigator.mediaDevices.getUserMedia({ video: true })).getVideoTracks()[0];
      conn.video.putSubscription(track);
      const pc: RTCPeerConnection = conn.peerConnection;
      gp.close(); kb.close();
      await conn.close();
      void [answer, next, s, text, pc];
    }
    void connect();
  `);
  assert.equal(out.trim(), '', `tsc reported:\n${out}`);
});

test('the declarations reject misuse', async () => {
  const out = await typecheck('bad.ts', `
    import * as rtcbot from "rtcbot-rs";
    const conn = new rtcbot.RTCConnection("yes");
    conn.subscribe(42);
    rtcbot.setGamepadRate("fast");
    rtcbot.parseTelemetry(1);
    new rtcbot.DriveSender(conn).set("1", 0);
    conn.video.putSubscription("track");
    const t = rtcbot.parseTelemetry("x");
    if (t?.type === "stats") t.nonsense;
  `);
  for (const line of [3, 4, 5, 6, 7, 8, 10]) {
    assert.match(out, new RegExp(`bad\\.ts\\(${line},\\d+\\): error TS`), `expected a type error on line ${line}:\n${out}`);
  }
});
