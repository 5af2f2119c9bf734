import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { WebSocket } from 'ws';

import { type CollectorProcess, metadataRows, startCollector, stopCollector } from './collector-process.js';
import { clientFrame, type Closed, closed, connect, readDump, sign, tempDir, tokenQuery, waitFor, within } from './helpers.js';

const CLIENTS = 50;
const STUBBORN_FRAME = '["stubborn",1]';
const FRAMES = 40;

/** A client that completes the upgrade and then never answers the server's close: it holds the drain open. */
function stubbornClient(port: number): Promise<net.Socket> {
  return within(
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          `GET /stubborn?${tokenQuery(sign({ rtcStats: { session: 'stubborn' } })).slice(1)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      socket.once('data', (d) => {
        if (!d.toString().startsWith('HTTP/1.1 101')) return reject(new Error(d.toString()));
        socket.write(clientFrame(STUBBORN_FRAME));
        resolve(socket);
      });
      socket.on('error', () => {});
    }),
    'stubborn upgrade',
  );
}

/** The HTTP status a WebSocket upgrade gets when it is refused before the upgrade. */
function refusedUpgrade(url: string): Promise<number> {
  return within(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'rtcstats#5.0');
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('open', () => reject(new Error('upgrade accepted while draining')));
      ws.once('error', () => {});
    }),
    'refused upgrade',
  );
}

describe('SIGTERM drain (child process)', () => {
  const dataDir = tempDir('rtcstats-drain-');
  let collector: CollectorProcess | undefined;
  let stubborn: net.Socket | undefined;
  after(async () => {
    stubborn?.destroy();
    await stopCollector(collector);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses new clients with 503, answers /healthcheck 503 draining, closes 50 live clients with 1001, records every dump, exits 0; at the deadline the rest is left for recovery', async () => {
    // 51 clients from one address: over the default RTCSTATS_MAX_CONNECTIONS_PER_IP.
    collector = await startCollector(dataDir, { RTCSTATS_SHUTDOWN_TIMEOUT: '4s', RTCSTATS_OBFUSCATE_IPS: 'false', RTCSTATS_MAX_CONNECTIONS_PER_IP: '1000' });
    const c = collector;
    const health = await fetch(`http://127.0.0.1:${c.port}/healthcheck`);
    assert.equal(health.status, 200);
    const clients: Array<{ ws: WebSocket; close: Promise<Closed> }> = [];
    for (let i = 0; i < CLIENTS; i++) {
      const ws = await connect(c.url(`/drain${tokenQuery(sign({ rtcStats: { session: `d-${i}` } }))}`));
      clients.push({ ws, close: closed(ws, 20_000) });
      for (let n = 0; n < FRAMES; n++) ws.send(`[${i},${n}]`);
    }
    stubborn = await stubbornClient(c.port);
    await waitFor(() => (fs.readdirSync(path.join(dataDir, 'work')).length === CLIENTS + 1 ? true : undefined), 'live files');

    c.child.kill('SIGTERM');
    await c.line(/Draining: closing 51 live session\(s\) with 1001/);
    assert.equal(await refusedUpgrade(c.url(`/late${tokenQuery(sign({}))}`)), 503);
    const draining = await fetch(`http://127.0.0.1:${c.port}/healthcheck`);
    assert.equal(draining.status, 503);
    assert.equal(await draining.text(), 'draining');

    for (const { close } of clients) assert.deepEqual(await close, { code: 1001, reason: 'server shutting down' });
    const exit = await within(c.exited, 'exit', 20_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    // The stubborn client held the drain to its deadline: its dump is left, complete, for recovery.
    assert.ok(
      c.output.some((l) => /Drain finished in \d+ ms: 51 session\(s\) closed, 50 dump\(s\) stored and recorded, deadline reached: 1 dump\(s\) left/.test(l)),
      c.output.join('\n'),
    );

    const rows = metadataRows(dataDir);
    assert.equal(rows.length, CLIENTS);
    const [left] = fs.readdirSync(path.join(dataDir, 'work'));
    assert.match(fs.readFileSync(path.join(dataDir, 'work', left), 'utf8'), /\n\["stubborn",1\]\n\["close",null,1001,\d+\]\n$/);
    for (const row of rows) {
      const i = Number(row.rtcstats_session!.slice(2));
      assert.equal(row.close_code, 1001);
      assert.equal(row.frame_count, FRAMES);
      const lines = readDump(row.location);
      assert.deepEqual(lines.slice(2, -1), Array.from({ length: FRAMES }, (_, n) => `[${i},${n}]`));
      assert.match(lines.at(-1)!, /^\["close",null,1001,\d+\]$/);
    }

    // The next start records it; nothing else changes.
    collector = await startCollector(dataDir, { RTCSTATS_OBFUSCATE_IPS: 'false' });
    const all = await waitFor(() => {
      const r = metadataRows(dataDir);
      return r.length > CLIENTS ? r : undefined;
    }, 'the recovered dump');
    assert.equal(all.length, CLIENTS + 1);
    const stubbornRow = all.find((r) => r.rtcstats_session === 'stubborn')!;
    assert.equal(stubbornRow.close_code, 1001);
    assert.equal(stubbornRow.frame_count, 1);
    assert.deepEqual(readDump(stubbornRow.location).slice(2, -1), [STUBBORN_FRAME]);
    await waitFor(() => (fs.readdirSync(path.join(dataDir, 'outbox')).length === 0 ? true : undefined), 'empty outbox');
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'work')), []);
  });
});
