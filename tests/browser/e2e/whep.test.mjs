// WHEP on the robot, from Chromium: a standard WHEP client written in plain JS in a
// page (RTCPeerConnection with receive-only video and audio transceivers, the offer
// POSTed as application/sdp once ICE gathering is complete, the 201's answer applied,
// its Location kept; DELETE on it to leave, as WHIP's RFC 9725 and the WHEP draft
// describe) plays the robot's video and hears its tone; DELETE removes the robot's
// peer at once, a closed connection removes it by itself, and bad requests get 4xx.
// The robot runs with auth on (a viewer token), plain HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, launchBrowser, startRobot } from '../lib/harness.mjs';

const VIEWER = 'whep-browser-viewer-token';
const DRIVER = 'whep-browser-driver-token';

/** The page: a video element and a WHEP client (no library), as any player has. */
const PAGE = `<!doctype html><meta charset=utf-8><title>WHEP player</title>
<video id=video autoplay muted playsinline></video>
<script>
  // Opens a WHEP session at \`endpoint\` with \`token\`; resolves once the answer is applied.
  window.whepPlay = async (endpoint, token) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const kinds = [];
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      kinds.push(event.track.kind);
      stream.addTrack(event.track);
      document.getElementById('video').srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
    });
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + token },
      body: pc.localDescription.sdp,
    });
    const answer = await response.text();
    if (response.status !== 201) throw new Error('WHEP POST answered ' + response.status + ': ' + answer);
    if (response.headers.get('Content-Type') !== 'application/sdp') throw new Error('the answer is not application/sdp');
    const session = new URL(response.headers.get('Location'), new URL(endpoint, document.baseURI)).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    window.whep = { pc, session, kinds, token };
    return session;
  };
  // Ends the session as a player does when stopped: DELETE, then close.
  window.whepStop = async () => {
    const response = await fetch(window.whep.session, {
      method: 'DELETE', headers: { Authorization: 'Bearer ' + window.whep.token },
    });
    window.whep.pc.close();
    return response.status;
  };
</script>`;

describe('WHEP from Chromium', () => {
  let robot;
  let browser;

  before(async () => {
    robot = await startRobot({
      labBench: false,
      args: ['--no-tls', '--quiet', '--audio', 'tone', '--auth-token', `viewer:${VIEWER}`, '--auth-token', `driver:${DRIVER}`],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await robot?.stop();
  });

  /** A page on the robot's origin holding the WHEP player. */
  async function player() {
    const page = await browser.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(`${robot.url}/health`);
    await page.setContent(PAGE);
    return page;
  }

  const videoState = (page) => page.evaluate(() => {
    const video = document.getElementById('video');
    return { width: video.videoWidth, time: video.currentTime };
  });

  test('a plain WHEP client plays the robot; DELETE removes its peer at once', async () => {
    const page = await player();
    const session = await page.evaluate((token) => window.whepPlay('/whep', token), VIEWER);
    assert.match(session, /\/whep\/[A-Za-z0-9_-]{22}$/);
    const first = await eventually('the video to play', async () => {
      const state = await videoState(page);
      return state.width > 0 && state.time > 0 ? state : false;
    });
    await eventually('the video time to advance', async () => (await videoState(page)).time > first.time + 1);
    assert.deepEqual((await page.evaluate(() => window.whep.kinds)).sort(), ['audio', 'video']);
    const health = await robot.health();
    assert.equal(health.peers, 1);
    assert.equal(health.peer_media[0].audio_out, true, 'the robot sends the WHEP viewer its tone');
    assert.equal(health.driver, false);

    assert.equal(await page.evaluate(() => window.whepStop()), 200);
    assert.equal((await robot.health()).peers, 0, 'DELETE removed the peer before answering');
    const again = await page.evaluate(async (url) => (await fetch(url, {
      method: 'DELETE', headers: { Authorization: 'Bearer ' + window.whep.token },
    })).status, session);
    assert.equal(again, 404, 'the session is gone');
    await page.close();
  });

  test('a WHEP player that closes its connection without DELETE is removed', async () => {
    const page = await player();
    await page.evaluate((token) => window.whepPlay('/whep', token), DRIVER);
    await eventually('the video to play', async () => (await videoState(page)).width > 0);
    assert.equal((await robot.health()).peers, 1);
    await page.evaluate(() => window.whep.pc.close());
    await eventually('the robot to drop the closed peer', async () => (await robot.health()).peers === 0);
    await page.close();
  });

  test('bad WHEP requests get 4xx', async () => {
    const page = await player();
    const results = await page.evaluate(async (token) => {
      const auth = { Authorization: 'Bearer ' + token };
      const call = async (method, url, headers, body) => {
        const response = await fetch(url, { method, headers, body });
        return { status: response.status, text: await response.text(), acceptPost: response.headers.get('Accept-Post') };
      };
      return {
        options: await call('OPTIONS', '/whep', {}),
        json: await call('POST', '/whep', { ...auth, 'Content-Type': 'application/json' }, '{"type":"offer","sdp":"v=0"}'),
        garbage: await call('POST', '/whep', { ...auth, 'Content-Type': 'application/sdp' }, 'not an offer'),
        noToken: await call('POST', '/whep', { 'Content-Type': 'application/sdp' }, 'v=0'),
        unknown: await call('DELETE', '/whep/AAAAAAAAAAAAAAAAAAAAAA', auth),
      };
    }, VIEWER);
    assert.equal(results.options.status, 204);
    assert.equal(results.options.acceptPost, 'application/sdp');
    assert.equal(results.json.status, 415, results.json.text);
    assert.match(results.json.text, /application\/sdp/);
    assert.equal(results.garbage.status, 400, results.garbage.text);
    assert.match(results.garbage.text, /v=0/);
    assert.equal(results.noToken.status, 401, results.noToken.text);
    assert.equal(results.unknown.status, 404, results.unknown.text);
    assert.equal((await robot.health()).peers, 0);
    await page.close();
  });
});
