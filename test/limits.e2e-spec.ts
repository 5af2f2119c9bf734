import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import Database from 'better-sqlite3';
import { WebSocket } from 'ws';

import { DiskSpace } from '../src/limits/disk-space.js';
import { LimitsService } from '../src/limits/limits.service.js';
import { DrainState } from '../src/lifecycle/drain-state.js';
import { closed, connect, readDump, sendAndClose, sign, startApp, type TestApp, tokenQuery, waitFor, waitForRecords, within } from './helpers.js';
import { jitsiConnect, jitsiUrl, messageFor, newSessionId, waitForJitsiRecords } from './jitsi-helpers.js';
import { type Exposition, scrape } from './prometheus-text.js';

const frames = (tag: string, n: number, pad = 0) => Array.from({ length: n }, (_, i) => `["${tag}",${i},"${'x'.repeat(pad)}"]`);
const url = (t: TestApp, session: string) => t.url(`/limits${tokenQuery(sign({ rtcStats: { session } }))}`);

/** The HTTP status of a refused upgrade (the socket never opens). */
function upgradeStatus(address: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(address, 'rtcstats#5.0', { headers });
  return within(
    new Promise((resolve, reject) => {
      ws.once('open', () => reject(new Error('upgraded, expected a refusal')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.once('error', reject);
    }),
    `refusal of ${address}`,
  );
}

const metrics = (t: TestApp): Promise<Exposition> => scrape(`http://127.0.0.1:${t.port}/metrics`);

async function record(t: TestApp, session: string) {
  const [r] = await waitForRecords(t, 1, { session });
  return { record: r, lines: readDump(r.location) };
}

describe('connection limits before the upgrade (real app, real clients)', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ RTCSTATS_MAX_CONNECTIONS: '3', RTCSTATS_MAX_CONNECTIONS_PER_IP: '2', RTCSTATS_TRUSTED_PROXIES: '127.0.0.1' });
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  it('RTCSTATS_MAX_CONNECTIONS_PER_IP: 429 per forwarded client address; other addresses unaffected', async () => {
    const a = { 'X-Forwarded-For': '198.51.100.7' };
    const before = await metrics(t);
    const c1 = await connect(url(t, 'ip-1'), 'rtcstats#5.0', { headers: a });
    const c2 = await connect(url(t, 'ip-2'), 'rtcstats#5.0', { headers: a });
    assert.deepEqual(await upgradeStatus(url(t, 'ip-3'), a), { status: 429, body: 'too many connections from this address' });
    const other = await connect(url(t, 'ip-other'), 'rtcstats#5.0', { headers: { 'X-Forwarded-For': '198.51.100.8' } });
    const m = await metrics(t);
    assert.equal(m.value('rtcstats_connections_rejected_total', { reason: 'max_connections_per_ip' }) - before.value('rtcstats_connections_rejected_total', { reason: 'max_connections_per_ip' }), 1);
    // The limited clients go on recording.
    assert.equal((await sendAndClose(c1, frames('ip-1', 3))).code, 1000);
    assert.equal((await sendAndClose(other, frames('ip-other', 3))).code, 1000);
    assert.equal((await record(t, 'ip-1')).record.frameCount, 3);
    // A slot freed is a slot again.
    const c3 = await connect(url(t, 'ip-3'), 'rtcstats#5.0', { headers: a });
    assert.equal((await sendAndClose(c3, frames('ip-3', 2))).code, 1000);
    assert.equal((await sendAndClose(c2, frames('ip-2', 2))).code, 1000);
  });

  it('RTCSTATS_MAX_CONNECTIONS: 503 before the upgrade; open connections unaffected', async () => {
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await connect(url(t, `max-${i}`), 'rtcstats#5.0', { headers: { 'X-Forwarded-For': `198.51.100.${20 + i}` } }));
    assert.deepEqual(await upgradeStatus(url(t, 'max-refused'), { 'X-Forwarded-For': '198.51.100.30' }), { status: 503, body: 'too many connections' });
    const m = await metrics(t);
    assert.equal(m.value('rtcstats_connections_rejected_total', { reason: 'max_connections' }), 1);
    assert.equal(m.value('rtcstats_websocket_connections', { protocol: 'rtcstats' }), 3);
    for (const [i, ws] of open.entries()) assert.equal((await sendAndClose(ws, frames(`max-${i}`, 4))).code, 1000);
    assert.equal((await record(t, 'max-2')).record.frameCount, 4);
    assert.equal((await t.metadata.find({ session: 'max-refused' })).length, 0);
  });

  it('RTCSTATS_MIN_FREE_DISK: below it new connections get 503 and /readyz fails, live dumps keep writing', async () => {
    const limits = t.app.get(LimitsService);
    const real = limits.disk;
    const live = await connect(url(t, 'disk-live'));
    const liveClosed = closed(live);
    for (const f of frames('before', 3)) live.send(f);
    // The OS reports the data disk almost full (the probe is the only thing replaced).
    (limits as { disk: DiskSpace }).disk = new DiskSpace(t.dataDir, real.minFreeBytes, async () => 1024);
    try {
      await limits.sampleDisk();
      assert.deepEqual(await upgradeStatus(url(t, 'disk-refused')), { status: 503, body: 'disk space low' });
      const ready = await fetch(`http://127.0.0.1:${t.port}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { error: Record<string, unknown> }).error.disk !== undefined, true);
      const m = await metrics(t);
      assert.equal(m.value('rtcstats_connections_rejected_total', { reason: 'disk_low' }), 1);
      assert.equal(m.value('rtcstats_disk_free_bytes'), 1024);
      for (const f of frames('during', 5)) live.send(f);
    } finally {
      (limits as { disk: DiskSpace }).disk = real;
      await limits.sampleDisk();
    }
    live.close(1000);
    assert.equal((await liveClosed).code, 1000);
    const { record: r } = await record(t, 'disk-live');
    assert.equal(r.frameCount, 8);
    assert.equal((await fetch(`http://127.0.0.1:${t.port}/readyz`)).status, 200);
    const again = await connect(url(t, 'disk-after'));
    assert.equal((await sendAndClose(again, frames('after', 1))).code, 1000);
  });

  it('RTCSTATS_AUTH_TIMEOUT is set per app (below): a silent socket is answered 408 and closed', async () => {
    const t2 = await startApp({ RTCSTATS_AUTH_TIMEOUT: '1' });
    try {
      const socket = net.connect(t2.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString()));
      // Half a request, then nothing (a slow-loris client).
      socket.write('GET /?rtcstats-token=x HTTP/1.1\r\nHost: x\r\n');
      await within(new Promise((r) => socket.once('close', r)), 'the server closing the silent socket', 5_000);
      assert.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*handshake timeout$/);
      const m = await metrics(t2);
      assert.equal(m.value('rtcstats_connections_closed_by_limit_total', { limit: 'auth_timeout', protocol: 'http' }), 1);
      // A normal client in the same app is not affected.
      const ws = await connect(url(t2, 'auth-timeout-ok'));
      assert.equal((await sendAndClose(ws, frames('ok', 2))).code, 1000);
    } finally {
      await t2.close();
      fs.rmSync(t2.dataDir, { recursive: true, force: true });
    }
  });
});

describe('per-connection limits (real app, real clients): close code, metric, others unaffected, dump kept', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({
      RTCSTATS_MAX_FRAMES_PER_SECOND: '5', // burst 50 frames + 1000 (a Jitsi client's resend buffer)
      RTCSTATS_MAX_PAYLOAD: '4096',
      RTCSTATS_MAX_DUMP_BYTES: '1MiB',
      RTCSTATS_IDLE_TIMEOUT: '1',
      RTCSTATS_MAX_SESSION_DURATION: '3',
      RTCSTATS_JITSI_RESUME_GRACE: '0',
    });
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  const limited = async (limit: string, protocol = 'rtcstats') =>
    (await metrics(t)).value('rtcstats_connections_closed_by_limit_total', { limit, protocol });

  it('RTCSTATS_MAX_FRAMES_PER_SECOND: 1008 `rate limit`; the frames before it are stored', async () => {
    const flood = await connect(url(t, 'flood'));
    const calm = await connect(url(t, 'calm'));
    const floodClosed = closed(flood);
    for (const f of frames('flood', 1500)) flood.send(f);
    assert.deepEqual(await floodClosed, { code: 1008, reason: 'rate limit' });
    assert.equal((await sendAndClose(calm, frames('calm', 5))).code, 1000);
    const { record: r, lines } = await record(t, 'flood');
    assert.equal(r.closeCode, 1008);
    // The burst (1050), plus what trickled in meanwhile at 5/s.
    assert.ok(r.frameCount >= 1050 && r.frameCount < 1500, `frames kept: ${r.frameCount}`);
    assert.equal(lines.length, 2 + r.frameCount + 1);
    assert.equal(lines.at(-1)!.startsWith('["close",null,1008,'), true);
    assert.equal((await record(t, 'calm')).record.frameCount, 5);
    assert.equal(await limited('rate_limit'), 1);
  });

  it('RTCSTATS_MAX_BYTES_PER_SECOND: 1008 `rate limit` for a byte flood', async () => {
    const t2 = await startApp({ RTCSTATS_MAX_BYTES_PER_SECOND: '2048', RTCSTATS_MAX_PAYLOAD: '4096' }); // burst 20 KiB
    try {
      const ws = await connect(url(t2, 'bytes'));
      const calm = await connect(url(t2, 'bytes-calm'));
      const done = closed(ws);
      for (const f of frames('bytes', 20, 1900)) ws.send(f);
      assert.deepEqual(await done, { code: 1008, reason: 'rate limit' });
      assert.equal((await sendAndClose(calm, frames('calm', 3, 1000))).code, 1000);
      const { record: r } = await record(t2, 'bytes');
      assert.equal(r.closeCode, 1008);
      // 10 x 1912 bytes fit in the 20480-byte burst (plus what trickled in at 2 KiB/s).
      assert.ok(r.frameCount >= 10 && r.frameCount < 20, `frames kept: ${r.frameCount}`);
      assert.equal((await record(t2, 'bytes-calm')).record.frameCount, 3);
      assert.equal((await metrics(t2)).value('rtcstats_connections_closed_by_limit_total', { limit: 'rate_limit', protocol: 'rtcstats' }), 1);
    } finally {
      await t2.close();
      fs.rmSync(t2.dataDir, { recursive: true, force: true });
    }
  });

  it('RTCSTATS_MAX_DUMP_BYTES: 1009 `dump too large`; the dump up to the limit is kept', async () => {
    const ws = await connect(url(t, 'big'));
    const done = closed(ws);
    // 300 frames of ~4 KB: about the 262nd passes 1 MiB.
    for (const f of frames('big', 300, 4000)) ws.send(f);
    assert.deepEqual(await done, { code: 1009, reason: 'dump too large' });
    const { record: r } = await record(t, 'big');
    assert.equal(r.closeCode, 1009);
    assert.ok(r.bytes <= 1024 * 1024 && r.bytes > 1024 * 1024 - 4100, `bytes kept: ${r.bytes}`);
    assert.equal(await limited('dump_too_large'), 1);
  });

  it('RTCSTATS_IDLE_TIMEOUT: no frame and no pong: 1001 `idle timeout`, dump kept', async () => {
    const ws = await connect(url(t, 'idle'));
    const done = closed(ws, 5_000);
    ws.send(frames('idle', 1)[0]);
    assert.deepEqual(await done, { code: 1001, reason: 'idle timeout' });
    const { record: r } = await record(t, 'idle');
    assert.equal(r.closeCode, 1001);
    assert.equal(r.frameCount, 1);
    assert.equal(await limited('idle_timeout'), 1);
  });

  it('RTCSTATS_MAX_SESSION_DURATION: 1001 `session too long`, dump kept', async () => {
    const ws = await connect(url(t, 'long'));
    const done = closed(ws, 8_000);
    let sent = 0;
    // Active all along (never idle), a frame every 300 ms.
    const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(frames('long', 1)[0]) === undefined && sent++, 300);
    try {
      assert.deepEqual(await done, { code: 1001, reason: 'session too long' });
    } finally {
      clearInterval(timer);
    }
    const { record: r } = await record(t, 'long');
    assert.equal(r.closeCode, 1001);
    assert.ok(r.frameCount >= 5 && r.frameCount <= sent, `${r.frameCount} of ${sent}`);
    assert.equal(await limited('session_duration'), 1);
  });

  it('Jitsi: a message flood is closed with 3002 `rate limit` (stops the client retrying); the session dump is kept', async () => {
    const id = newSessionId();
    const client = await jitsiConnect(jitsiUrl(t, sign({ rtcStats: { session: 'jitsi-flood' } }), id));
    const done = closed(client.ws);
    await client.next('greeting');
    for (let i = 1; i <= 1500; i++) client.ws.send(messageFor(id, JSON.stringify(['getstats', 'PC_0', { i }, Date.now(), i])));
    assert.deepEqual(await done, { code: 3002, reason: 'rate limit' });
    const [r] = await waitForJitsiRecords(t, id);
    assert.equal(r.closeCode, 3002);
    assert.ok(r.frameCount >= 1000 && r.frameCount < 1500, `entries kept: ${r.frameCount}`);
    assert.equal(await limited('rate_limit', 'jitsi'), 1);
  });

  it('Jitsi: an idle socket is closed with 1001 (the client may reconnect); a session over the duration ends alone (1001, dump kept) and later entries start a new dump', async () => {
    const idleId = newSessionId();
    const idle = await jitsiConnect(jitsiUrl(t, sign({ rtcStats: { session: 'jitsi-idle' } }), idleId));
    const idleClosed = closed(idle.ws, 5_000);
    await idle.next('greeting');
    assert.deepEqual(await idleClosed, { code: 1001, reason: 'idle timeout' });
    assert.equal(await limited('idle_timeout', 'jitsi'), 1);

    const id = newSessionId();
    const client = await jitsiConnect(jitsiUrl(t, sign({ rtcStats: { session: 'jitsi-long' } }), id));
    await client.next('greeting');
    let seq = 0;
    const send = () => client.ws.send(messageFor(id, JSON.stringify(['getstats', 'PC_0', { seq }, Date.now(), ++seq])));
    // Active all along (never idle): the session passes 3 s, is ended, and the next entries start a new dump.
    const timer = setInterval(send, 300);
    try {
      const records = await waitForJitsiRecords(t, id, 1, 8_000);
      assert.equal(records[0].closeCode, 1001);
      assert.ok(records[0].frameCount >= 5, `entries kept: ${records[0].frameCount}`);
      await waitFor(() => (seq > records[0].frameCount + 2 ? true : undefined), 'entries after the end');
    } finally {
      clearInterval(timer);
    }
    assert.equal(client.ws.readyState, WebSocket.OPEN, 'the socket stays open');
    const done = closed(client.ws);
    client.ws.close(3001);
    await done;
    const both = await waitForJitsiRecords(t, id, 2);
    assert.equal(both[1].closeCode, 3001);
    assert.ok(both[1].frameCount >= 1);
    assert.equal(await limited('session_duration', 'jitsi'), 1);
  });
});

describe('/readyz (terminus): metadata store, dump storage, disk, draining', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${t.port}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; error: Record<string, { message?: string }> } };
  };

  it('flips when dump storage goes away and comes back', async () => {
    assert.equal((await readyz()).status, 200);
    const dumps = path.join(t.dataDir, 'dumps');
    fs.rmSync(dumps, { recursive: true });
    fs.writeFileSync(dumps, 'not a directory');
    const down = await readyz();
    assert.equal(down.status, 503);
    assert.deepEqual(Object.keys(down.body.error), ['storage']);
    fs.rmSync(dumps);
    fs.mkdirSync(dumps);
    assert.equal((await readyz()).status, 200);
    // Liveness is not readiness.
    assert.equal((await fetch(`http://127.0.0.1:${t.port}/healthcheck`)).status, 200);
  });

  it('flips when the metadata store is write-locked and comes back', async () => {
    const locker = new Database(path.join(t.dataDir, 'rtcstats.sqlite'));
    try {
      locker.exec('BEGIN IMMEDIATE');
      const down = await readyz();
      assert.equal(down.status, 503);
      assert.deepEqual(Object.keys(down.body.error), ['metadata']);
      assert.match(down.body.error.metadata.message ?? '', /locked|busy/i);
      locker.exec('ROLLBACK');
    } finally {
      locker.close();
    }
    assert.equal((await readyz()).status, 200);
  });

  it('fails during a drain', async () => {
    t.app.get(DrainState).start();
    const down = await readyz();
    assert.equal(down.status, 503);
    assert.deepEqual(Object.keys(down.body.error), ['draining']);
    await waitFor(async () => ((await fetch(`http://127.0.0.1:${t.port}/healthcheck`)).status === 503 ? true : undefined), 'healthcheck draining');
  });
});
