// A Janus of the tests' own: target/debug/rtcbot-janus (native/bench) runs Debian's
// janus on a generated config with one VideoRoom room, its HTTP API on 127.0.0.1,
// gathering ICE on one interface (Janus gathers no loopback candidates, so inside the
// tests' network namespace that is rtcbot0, 10.77.0.1).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './harness.mjs';

export const JANUS_BIN = process.env.RTCBOT_JANUS_BIN ?? join(ROOT, 'target', 'debug', 'rtcbot-janus');

/** Why a Janus cannot run here (no helper binary, no janus, no interface), or null. */
export function janusMissing(iface = 'rtcbot0') {
  if (!existsSync(JANUS_BIN)) return `${JANUS_BIN} is not built (cargo build -p rtcbot-bench --bin rtcbot-janus)`;
  if (!['/usr/bin/janus', '/usr/local/bin/janus'].some(existsSync)) return 'janus is not installed (apt-get install -y janus)';
  if (!networkInterfaces()[iface]) return `no ${iface} interface (run inside scripts/browser-tests.sh's network namespace)`;
  return null;
}

/**
 * Starts rtcbot-janus with room `room` (and its `secret`) on a free-ish `port`;
 * resolves once its API answers, with `api` (http://127.0.0.1:PORT/janus), `room`,
 * and `stop()` (SIGTERM: Janus goes away at once, as a crash would look to its peers).
 */
export async function startJanus({ room = 1234, secret = 'janus-room-secret', port = 18_000 + Math.floor(Math.random() * 2000), iface = 'rtcbot0' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rtcbot-janus-'));
  const proc = spawn(JANUS_BIN, ['--dir', dir, '--port', String(port), '--room', String(room), '--secret', secret, '--interface', iface], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(proc, 'exit').then(([code]) => { throw new Error(`rtcbot-janus exited with ${code} before its API answered (log in ${dir})`); }),
  ]);
  const ready = JSON.parse(first);
  return {
    proc,
    dir,
    api: ready.api,
    room: ready.room,
    secret,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}
