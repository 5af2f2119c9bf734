import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { WebSocket } from 'ws';

import { type CollectorProcess, metadataRows, startCollector, stopCollector } from './collector-process.js';
import { closed, connect, OTHER_SECRET, REPO_ROOT, sendAndClose, sign, tempDir, TEST_SECRET, tokenQuery, waitFor, within } from './helpers.js';
import { jitsiConnect, messageFor, newSessionId } from './jitsi-helpers.js';

const API_KEY = 'logging-test-api-key-0123456789-abcdefgh';
const WRONG_KEY = 'logging-wrong-api-key-0123456789-abcdefg';

/** Opens a socket and waits for its close (rejected handshakes open, then close 1008). */
async function rejected(url: string): Promise<number> {
  const ws = new WebSocket(url, 'rtcstats#5.0');
  return within(
    new Promise<number>((resolve, reject) => {
      ws.once('close', (code) => resolve(code));
      ws.once('error', reject);
    }),
    'a rejected handshake',
  );
}

describe('logs of a real run (node dist/src/main.js, stdout not a terminal: JSON lines)', () => {
  let c: CollectorProcess | undefined;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir();
    c = await startCollector(dataDir, { RTCSTATS_API_KEYS: API_KEY });
  });
  after(async () => {
    await stopCollector(c);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('hold no token or API key, carry the dump id, include Nest startup lines; 1000 bad handshakes give a bounded number of lines', async () => {
    const collector = c!;
    const good = sign({ rtcStats: { user: 'log-user', session: 'log-session' } }, TEST_SECRET);
    const bad = sign({ rtcStats: { user: 'log-user' } }, OTHER_SECRET);

    const ws = await connect(collector.url(`/room${tokenQuery(good)}`));
    assert.equal((await sendAndClose(ws, ['["a",1]', '["b",2]'])).code, 1000);
    const stored = await collector.line(/Dump [0-9a-f-]{36} stored/);
    assert.equal((await closed(await connect(collector.url(`/room${tokenQuery(bad)}`)))).code, 1008);

    const base = `http://127.0.0.1:${collector.port}`;
    const minted = await fetch(`${base}/tokens?rtcstats-token=${good}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: '{"user":"u1"}',
    });
    assert.equal(minted.status, 201);
    const { token: mintedToken } = (await minted.json()) as { token: string };
    const refused = await fetch(`${base}/tokens`, { method: 'POST', headers: { Authorization: `Bearer ${WRONG_KEY}`, 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 401);

    // A client retrying a bad token in a loop.
    const before = collector.output.length;
    const url = collector.url(`/loop${tokenQuery(bad)}`);
    for (let i = 0; i < 1000; i += 20) {
      const codes = await Promise.all(Array.from({ length: 20 }, () => rejected(url)));
      assert.ok(codes.every((code) => code === 1008));
    }
    collector.child.kill('SIGTERM');
    const exit = await collector.exited;
    assert.equal(exit.code, 0);

    const lines = collector.output;
    const loopLines = lines.slice(before).filter((l) => l.includes('JWT authorization failed'));
    assert.ok(loopLines.length >= 1 && loopLines.length <= 3, `1000 rejections logged ${loopLines.length} line(s)`);

    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
    const all = lines.join('\n');
    for (const secret of [good, bad, mintedToken, API_KEY, WRONG_KEY, ...good.split('.').slice(1), ...bad.split('.').slice(2), mintedToken.split('.')[2]]) {
      assert.ok(!all.includes(secret), `a log line holds ${secret.slice(0, 10)}...`);
    }
    // Troubleshooting lines keep their text in the message field.
    assert.ok(parsed.some((p) => p.msg === 'JWT authorization failed JsonWebTokenError: invalid signature'));
    // ...and the repeats are counted, not dropped silently.
    const repeated = parsed
      .map((p) => /^JWT authorization failed JsonWebTokenError: invalid signature \(repeated (\d+) more time\(s\) in \d+ s\)$/.exec(String(p.msg)))
      .reduce((n, m) => n + (m === null ? 0 : Number(m[1])), 0);
    assert.equal(repeated + parsed.filter((p) => p.msg === 'JWT authorization failed JsonWebTokenError: invalid signature').length, 1001);
    // Every line of the connection carries its dump id.
    const id = /Dump ([0-9a-f-]{36}) stored/.exec(stored)![1];
    const ofConnection = parsed.filter((p) => typeof p.msg === 'string' && p.msg.includes(id));
    assert.ok(ofConnection.length >= 2, 'accepted and stored lines');
    for (const p of ofConnection) assert.equal(p.dumpId, id, `no dumpId in ${JSON.stringify(p)}`);
    // Nest's own lines go through the same logger.
    const started = parsed.find((p) => p.msg === 'Nest application successfully started');
    assert.equal(started?.level, 'info');
    assert.equal(started?.context, 'NestApplication');
  });
});

describe('the dump id on every log line of a connection and of a Jitsi session (real run, debug level)', () => {
  it('every line about an rtcstats connection carries its dumpId; every line of a Jitsi socket its connectionId, and of a session its dumpId', async () => {
    const dataDir = tempDir();
    let c: CollectorProcess | undefined;
    try {
      // Debug level: the quiet lines (socket errors, ignored messages) must carry the ids too; a
      // small dump limit ends the Jitsi socket while it carries two sessions.
      c = await startCollector(dataDir, { RTCSTATS_LOG_LEVEL: 'debug', RTCSTATS_MAX_DUMP_BYTES: '4096' });
      const collector = c;
      const json = (from: number, to = collector.output.length) =>
        collector.output.slice(from, to).map((l) => JSON.parse(l) as Record<string, unknown>).filter((p) => p.req === undefined && p.res === undefined);
      const storedLines = (from: number) => collector.output.slice(from).filter((l) => /Dump [0-9a-f-]{36} stored/.test(l)).length;

      // An rtcstats connection that ends with a socket error (invalid UTF-8 in a text frame: 1007).
      const rtcStart = collector.output.length;
      const ws = await connect(collector.url(`/room${tokenQuery(sign({ rtcStats: { session: 'ids-rtc' } }))}`));
      const rtcClosed = closed(ws);
      ws.send('["a",1]');
      ws.send(Buffer.from([0x5b, 0xff, 0xfe, 0x5d]), { binary: false });
      assert.equal((await rtcClosed).code, 1007);
      await waitFor(() => (storedLines(rtcStart) === 1 ? true : undefined), 'the rtcstats dump stored');
      const rtcRow = metadataRows(dataDir).find((r) => r.rtcstats_session === 'ids-rtc')!;
      const rtcLines = json(rtcStart);
      assert.ok(rtcLines.some((p) => /error: Invalid WebSocket frame/.test(String(p.msg))), 'the socket error is logged (debug)');
      for (const p of rtcLines) assert.equal(p.dumpId, rtcRow.id, `no dumpId ${rtcRow.id} in ${JSON.stringify(p)}`);

      // A Jitsi socket carrying two sessions: an ignored message of one, then one over the dump limit.
      const jitsiStart = collector.output.length;
      const [s1, s2] = [newSessionId(), newSessionId()];
      const jitsi = await jitsiConnect(collector.url(`/?rtcstats-token=${sign({ rtcStats: { session: 'ids-jitsi' } })}/meet.example.com/room1?statsSessionId=${s1}&isReconnect=false`));
      const jitsiClosed = closed(jitsi.ws);
      jitsi.ws.send(messageFor(s1, '["create","PC_0",{},1700000000000,1]'));
      jitsi.ws.send(messageFor(s2, '["create","PC_0",{},1700000000000,1]'));
      jitsi.ws.send(JSON.stringify({ statsSessionId: s1, type: 'no-such-type', data: 'x' }));
      jitsi.ws.send(messageFor(s1, `["getstats","PC_0",{"pad":"${'x'.repeat(5000)}"},1700000000001,2]`));
      assert.deepEqual(await jitsiClosed, { code: 3002, reason: 'dump too large' });
      await waitFor(() => (storedLines(jitsiStart) === 2 ? true : undefined), 'both Jitsi dumps stored');
      const dumpOf = new Map(metadataRows(dataDir).filter((r) => r.stats_session_id !== null).map((r) => [r.stats_session_id!, r.id]));
      const [d1, d2] = [dumpOf.get(s1)!, dumpOf.get(s2)!];
      assert.ok(d1 !== undefined && d2 !== undefined);
      const jitsiLines = json(jitsiStart);
      const accepted = jitsiLines.find((p) => /^Jitsi connection \S+ accepted/.test(String(p.msg)));
      const connectionId = accepted?.connectionId;
      assert.equal(typeof connectionId, 'string');
      assert.ok(jitsiLines.some((p) => /unknown type/.test(String(p.msg))), 'the ignored message is logged (debug)');
      for (const p of jitsiLines) {
        const msg = String(p.msg);
        const line = JSON.stringify(p);
        assert.ok(p.connectionId === connectionId || p.dumpId === d1 || p.dumpId === d2, `neither the connection nor a session id in ${line}`);
        // A line about a session (named by its statsSessionId or its dump id) carries that session's dump id.
        for (const [sid, dumpId] of [[s1, d1], [s2, d2]]) {
          if (msg.includes(sid) || msg.includes(dumpId)) assert.equal(p.dumpId, dumpId, `no dumpId ${dumpId} in ${line}`);
        }
        // A line naming the socket carries its id.
        if (msg.includes(String(connectionId))) assert.equal(p.connectionId, connectionId, `no connectionId in ${line}`);
      }
    } finally {
      await stopCollector(c);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('RTCSTATS_LOG_FORMAT=pretty', () => {
  it('writes readable lines instead of JSON', async () => {
    const dataDir = tempDir();
    let c: CollectorProcess | undefined;
    try {
      c = await startCollector(dataDir, { RTCSTATS_LOG_FORMAT: 'pretty' });
      const line = await c.line(/listening on ws:/);
      assert.throws(() => JSON.parse(line));
      assert.match(line, /INFO.*rtcstats collector listening on ws:\/\/127\.0\.0\.1:\d+\//);
    } finally {
      await stopCollector(c);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('RTCSTATS_LOG_LEVEL applies to Nest\'s own startup lines', () => {
  it('at warn, neither Nest\'s lines nor ours below warn are written', async () => {
    const dataDir = tempDir();
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/src/main.js')], {
      cwd: dataDir,
      env: { PATH: process.env.PATH ?? '', RTCSTATS_PORT: '0', RTCSTATS_HOST: '127.0.0.1', RTCSTATS_DATA_DIR: dataDir, RTCSTATS_AUTH: 'disabled', RTCSTATS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // The one warning of this configuration comes after the server listens.
      await waitFor(() => (out.includes('RTCSTATS_AUTH=disabled') ? true : undefined), 'the auth-disabled warning');
    } finally {
      child.kill('SIGTERM');
      await within(exited, 'the server to stop');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.ok(l.level === 'warn' || l.level === 'error', `${l.level}: ${l.msg}`);
    assert.ok(!out.includes('Starting Nest application'));
  });
});
