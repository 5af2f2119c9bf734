import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import { type CollectorProcess, metadataRows, startCollector, stopCollector } from './collector-process.js';
import { connect, readDump, sign, tempDir, tokenQuery, waitFor } from './helpers.js';
import { jitsiConnect, jitsiFixture, messageFor, newSessionId } from './jitsi-helpers.js';

const CLIENTS = 20;
const FIRST_BATCH = 100;
/** ~2 KB frames make recovery long enough to be interrupted on purpose. */
const PAD = 'x'.repeat(2000);
const frame = (client: number, n: number) => `["g","PC_0",{"client":${client},"n":${n},"pad":"${PAD}"},1]`;

function linesIn(file: string): number {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}

describe('kill -9 while clients stream, then restart (child process)', () => {
  const dataDir = tempDir('rtcstats-crash-');
  let collector: CollectorProcess | undefined;
  const sockets: WebSocket[] = [];
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await stopCollector(collector);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('recovers every received frame into one stored dump and one record per session, even when recovery itself is killed', async () => {
    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false' });
    const c = collector;
    const sent: string[][] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const ws = await connect(c.url(`/crash/${i}${tokenQuery(sign({ rtcStats: { user: `user-${i}`, session: `session-${i}` } }))}`));
      ws.on('error', () => {});
      sockets.push(ws);
      sent.push([]);
      for (let n = 0; n < FIRST_BATCH; n++) {
        sent[i].push(frame(i, n));
        ws.send(frame(i, n));
      }
    }
    // Everything of the first batch is on disk (header: 2 lines).
    const work = path.join(dataDir, 'work');
    await waitFor(() => {
      const files = fs.readdirSync(work).filter((f) => f.endsWith('.jsonl'));
      return files.length === CLIENTS && files.every((f) => linesIn(path.join(work, f)) >= 2 + FIRST_BATCH) ? true : undefined;
    }, 'the first batch written to the live files', 30_000);
    // Keep streaming, and kill in the middle of it.
    let n = FIRST_BATCH;
    const streaming = setInterval(() => {
      sockets.forEach((ws, i) => {
        if (ws.readyState !== ws.OPEN) return;
        sent[i].push(frame(i, n));
        ws.send(frame(i, n));
      });
      n++;
    }, 2);
    await new Promise((r) => setTimeout(r, 100));
    c.child.kill('SIGKILL');
    assert.equal((await c.exited).signal, 'SIGKILL');
    clearInterval(streaming);
    assert.equal(fs.readdirSync(work).filter((f) => f.endsWith('.jsonl')).length, CLIENTS, 'all live dumps left in work/');

    // Restart with one finalization at a time, and kill it again as soon as the first dump is stored.
    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false', RTCSTATS_FINALIZE_CONCURRENCY: '1' });
    await collector.line(/Dump \S+ stored/, 30_000);
    collector.child.kill('SIGKILL');
    await collector.exited;
    const midway = metadataRows(dataDir).length;
    assert.ok(midway < CLIENTS, `recovery must be interrupted mid-way (${midway} of ${CLIENTS} were recorded)`);

    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false' });
    const rows = await waitFor(() => {
      const r = metadataRows(dataDir);
      return r.length >= CLIENTS && fs.readdirSync(path.join(dataDir, 'outbox')).length === 0 ? r : undefined;
    }, `${CLIENTS} records`, 30_000);
    assert.equal(rows.length, CLIENTS, 'exactly one record per dump');
    assert.equal(new Set(rows.map((r) => r.rtcstats_session)).size, CLIENTS);
    for (const row of rows) {
      const i = Number(row.rtcstats_session!.slice('session-'.length));
      assert.equal(row.rtcstats_user, `user-${i}`, 'claims rebuilt from the dump header');
      assert.equal(row.close_code, 1006);
      const lines = readDump(row.location);
      assert.equal(lines[0], 'RTCStatsDump');
      assert.equal(JSON.parse(lines[1]).dumpId, row.id);
      const frames = lines.slice(2, -1);
      assert.ok(frames.length >= FIRST_BATCH, `session ${i}: ${frames.length} frames`);
      assert.deepEqual(frames, sent[i].slice(0, frames.length), `session ${i}: frames are what was sent, in order, none torn`);
      assert.equal(row.frame_count, frames.length);
      assert.match(lines.at(-1)!, /^\["close",null,1006,\d+\]$/);
    }
    assert.deepEqual(fs.readdirSync(work), []);
    const stored = fs.readdirSync(path.join(dataDir, 'dumps'));
    assert.equal(stored.length, CLIENTS);
    assert.ok(stored.every((f) => f.endsWith('.jsonl.gz')), 'no .partial left');
  });
});

describe('kill -9 while a Jitsi client streams, then restart (child process)', () => {
  const dataDir = tempDir('rtcstats-crash-jitsi-');
  let collector: CollectorProcess | undefined;
  after(async () => {
    await stopCollector(collector);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('recovers the Jitsi dump with a sessionClose 1006 line and its statsSessionId and identity in the record', async () => {
    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false' });
    const statsSessionId = newSessionId();
    const token = sign({ rtcStats: { user: 'jitsi-user' } });
    const client = await jitsiConnect(collector.url(`/?rtcstats-token=${token}/meet.example.com/room1?statsSessionId=${statsSessionId}&isReconnect=false`));
    client.ws.on('error', () => {});
    const lines = jitsiFixture('firefox-relay.ndjson');
    for (const line of lines) client.ws.send(messageFor(statsSessionId, line));
    const work = path.join(dataDir, 'work');
    await waitFor(() => {
      const [file] = fs.readdirSync(work);
      return file !== undefined && linesIn(path.join(work, file)) >= 1 + lines.length ? true : undefined;
    }, 'the Jitsi entries written to the live file');
    collector.child.kill('SIGKILL');
    await collector.exited;
    client.ws.terminate();

    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false' });
    const [row] = await waitFor(() => {
      const r = metadataRows(dataDir);
      return r.length > 0 ? r : undefined;
    }, 'the recovered Jitsi record');
    assert.equal(row.stats_session_id, statsSessionId);
    assert.equal(row.meeting_id, '49639dc4-6e5a-4efa-8507-8ffbef927485');
    assert.equal(row.rtcstats_user, 'jitsi-user');
    assert.equal(row.close_code, 1006);
    assert.equal(row.frame_count, lines.length);
    const stored = readDump(row.location);
    assert.equal(JSON.parse(stored[0])[0], 'connectionInfo');
    assert.deepEqual(stored.slice(1, -1), lines);
    assert.deepEqual(JSON.parse(stored.at(-1)!).slice(0, 3), ['sessionClose', null, { code: 1006, reason: 'recovered after the server stopped' }]);
  });
});
