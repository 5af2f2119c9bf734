/**
 * Both protocol flavours end to end in a real browser: the real @jitsi/rtcstats client (bundled
 * from npm) and an rtcstats#5.0 page, each recording a loopback call with fake audio and video,
 * with tokens from POST /tokens. Needs /usr/bin/chromium (.ci/run installs it; under CI=true its
 * absence fails, elsewhere these tests are skipped with the reason).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

import type { Page } from 'playwright-core';

import { obfuscateFrame } from '../src/obfuscation/frame-obfuscator.js';
import { type Browser, browserUnavailable, bundleJitsiClient, launchChromium, type PageServer, servePages, serverSockets, type ServerSockets } from './browser-harness.js';
import { readDump, startApp, type TestApp, waitFor, within } from './helpers.js';
import { seqs, waitForJitsiRecords } from './jitsi-helpers.js';

const API_KEY = 'browser-test-api-key-0123456789-abcdefghij';
const unavailable = browserUnavailable();
if (unavailable !== undefined) console.log(`# browser tests skipped: ${unavailable}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads window.test of a page until `pick` returns a value. */
function pageState<T>(page: Page, pick: (state: any) => T | undefined, what: string, ms = 30_000): Promise<T> {
  return waitFor(async () => pick(await page.evaluate(() => (globalThis as any).test)), what, ms);
}

describe('real browser (Chromium) end to end', { skip: unavailable }, () => {
  let t: TestApp;
  let pages: PageServer;
  let browser: Browser;
  let sockets: ServerSockets;

  before(async () => {
    t = await startApp({ RTCSTATS_API_KEYS: API_KEY });
    pages = await servePages({ 'jitsi-rtcstats.js': await bundleJitsiClient() });
    sockets = serverSockets(t.app.getHttpServer());
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await t?.close();
    if (t !== undefined) fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  async function mintToken(claims: Record<string, string>): Promise<string> {
    const res = await within(
      fetch(`http://127.0.0.1:${t.port}/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...claims, expiresIn: '10m' }),
      }),
      'POST /tokens',
    );
    assert.equal(res.status, 201);
    return ((await res.json()) as { token: string }).token;
  }

  async function open(url: string, fakeClock = false): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => console.log(`# page error: ${err.message}`));
    if (fakeClock) await page.clock.install();
    await page.goto(url);
    return page;
  }

  it('Jitsi client: a loopback call is recorded, and resumes into the same dump after the server cuts its socket', async () => {
    const user = `jitsi-${crypto.randomUUID()}`;
    const meeting = crypto.randomUUID();
    const token = await mintToken({ user, session: 'browser-session', conference: 'browser-conference' });
    const endpoint = `ws://127.0.0.1:${t.port}/?rtcstats-token=${token}`;
    const page = await open(`${pages.origin}/jitsi-call.html?call=1&meeting=${meeting}&endpoint=${encodeURIComponent(endpoint)}`);
    try {
      await pageState(page, (s) => (s.connected || s.error ? true : undefined), 'the loopback call to connect');
      assert.equal(await page.evaluate(() => (globalThis as any).test.error), null);
      const started = await waitFor(() => t.logs.find((l) => l.includes('Jitsi session ') && l.includes(' started (dump ')), 'the Jitsi session');
      const sid = /Jitsi session (\S+) started/.exec(started)![1];
      await sleep(3_000); // getStats every second on both peer connections
      sockets.cut();
      // The client retries after 1-11 s, is greeted with the last seq stored, and resends the rest.
      await waitFor(() => (t.logs.some((l) => l.includes(`Jitsi session ${sid} resumed`)) ? true : undefined), 'the client to resume', 30_000);
      await sleep(3_000);
      await page.evaluate(() => (globalThis as any).test.hangUp());
      const records = await waitForJitsiRecords(t, sid, 1, 15_000);
      assert.equal(records.length, 1, 'one dump for the statsSessionId');
      const [record] = records;
      const dump = readDump(record.location);
      const lines = dump.map((l) => JSON.parse(l) as unknown[]);

      // Every entry exactly once, in order, from 1: no gap, no duplicate across the cut.
      const numbers = seqs(dump);
      assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i + 1));
      assert.equal(record.frameCount, numbers.length);
      const server = lines.filter((l) => l[1] === null && l.length === 4).map((l) => l[0]);
      assert.deepEqual(server.filter((m) => m !== 'identity' && !String(m).startsWith('navigator.')), ['connectionInfo', 'disconnect', 'reconnect', 'sessionClose']);
      const reconnectAt = lines.findIndex((l) => l[0] === 'reconnect');
      const getstats = (from: number, to: number) => lines.slice(from, to).filter((l) => l[0] === 'getstats').length;
      assert.ok(getstats(0, reconnectAt) >= 4, `getstats before the cut: ${getstats(0, reconnectAt)}`);
      assert.ok(getstats(reconnectAt, lines.length) >= 4, `getstats after the resume: ${getstats(reconnectAt, lines.length)}`);
      for (const method of ['create', 'setLocalDescription', 'setRemoteDescription', 'onicecandidate', 'ontrack', 'navigator.mediaDevices.getUserMediaOnSuccess']) {
        assert.ok(lines.some((l) => l[0] === method), `a ${method} entry`);
      }
      const close = lines.at(-1)!;
      assert.equal(close[0], 'sessionClose');
      assert.deepEqual([(close[2] as any).code, (close[2] as any).disconnects], [3001, 1]);

      // Identity from the client's identity entry, claims from the POST /tokens token.
      assert.ok(lines.some((l) => l[0] === 'identity' && (l[2] as any).confName === 'browser-room'));
      assert.equal(record.conferenceName, 'browser-room');
      assert.equal(record.displayName, 'Browser Bob');
      assert.equal(record.meetingId, meeting);
      assert.equal(record.user, user);
      assert.equal(record.closeCode, 3001);
      assert.equal((lines[0][2] as any).statsFormat, 'chrome_standard');
      assert.ok(!dump.join('\n').includes(token), 'no token in the dump');
      const identity = lines.find((l) => l[0] === 'identity')![2] as { analytics: { rtcstatsEndpoint: string } };
      assert.equal(identity.analytics.rtcstatsEndpoint, `ws://127.0.0.1:${t.port}/?rtcstats-token=obfuscated`);

      const state = await page.evaluate(() => (globalThis as any).test);
      assert.equal(state.sockets, 2);
      assert.deepEqual(state.closes.map((c: { code: number }) => c.code), [1006, 3001]);
    } finally {
      await page.close();
    }
  });

  it('Jitsi client: a bad token gets 3002 and the client stops retrying (a dropped one retries)', async () => {
    const bad = await open(`${pages.origin}/jitsi-call.html?endpoint=${encodeURIComponent(`ws://127.0.0.1:${t.port}/?rtcstats-token=not-a-jwt`)}`, true);
    const good = await open(
      `${pages.origin}/jitsi-call.html?endpoint=${encodeURIComponent(`ws://127.0.0.1:${t.port}/?rtcstats-token=${await mintToken({ user: 'retrying' })}`)}`,
      true,
    );
    try {
      assert.deepEqual(await pageState(bad, (s) => (s.closes.length > 0 ? s.closes : undefined), 'the refusal'), [{ code: 3002, reason: 'invalid token' }]);
      await pageState(good, (s) => (s.opens === 1 ? true : undefined), 'the control client to connect');
      sockets.cut();
      await pageState(good, (s) => (s.closes.length > 0 ? true : undefined), 'the control client to see the drop');
      // Past the client's whole 10-minute retry window, on the pages' fake clocks.
      await bad.clock.fastForward('15:00');
      await good.clock.fastForward('00:15');
      assert.equal(await pageState(good, (s) => (s.sockets >= 2 ? s.sockets : undefined), 'the control client to retry'), 2);
      const state = await bad.evaluate(() => (globalThis as any).test);
      assert.equal(state.sockets, 1, 'no retry after 3002');
      assert.equal(state.closes.length, 1);
    } finally {
      await bad.close();
      await good.close();
    }
  });

  it('rtcstats#5.0 page: a loopback call is stored frame for frame (after IP obfuscation)', async () => {
    const user = `plain-${crypto.randomUUID()}`;
    const token = await mintToken({ user, session: 'plain-session', conference: 'plain-conference' });
    const endpoint = `ws://127.0.0.1:${t.port}/app/room-7?rtcstats-token=${token}`;
    const page = await open(`${pages.origin}/rtcstats-call.html?seconds=6&endpoint=${encodeURIComponent(endpoint)}`);
    try {
      await pageState(page, (s) => (s.done || s.error ? true : undefined), 'the call to finish');
      const state = await page.evaluate(() => (globalThis as any).test);
      assert.equal(state.error, null);
      assert.equal(state.connected, true);
      const [record] = await waitFor(async () => {
        const rows = await t.metadata.find({ user });
        return rows.length > 0 ? rows : undefined;
      }, 'the rtcstats#5.0 record');
      const dump = readDump(record.location);
      assert.equal(dump[0], 'RTCStatsDump');
      const meta = JSON.parse(dump[1]);
      assert.equal(meta.clientProtocol, 'rtcstats#5.0');
      assert.equal(meta.url, '/app/room-7?rtcstats-token=obfuscated');
      const expected = (state.frames as string[]).map((f) => {
        const out = obfuscateFrame(Buffer.from(f));
        return typeof out === 'string' ? out : out.toString('utf8');
      });
      assert.deepEqual(dump.slice(2, -1), expected);
      assert.ok(expected.filter((f) => f.startsWith('["g"')).length >= 10);
      assert.deepEqual(JSON.parse(dump.at(-1)!).slice(0, 3), ['close', null, 1000]);
      assert.deepEqual([record.closeCode, record.frameCount, record.conference], [1000, expected.length, 'plain-conference']);
      assert.deepEqual(state.closes.map((c: { code: number }) => c.code), [1000]);
    } finally {
      await page.close();
    }
  });
});
