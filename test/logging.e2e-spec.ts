import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { WebSocket } from 'ws';

import { type CollectorProcess, startCollector, stopCollector } from './collector-process.js';
import { closed, connect, OTHER_SECRET, REPO_ROOT, sendAndClose, sign, tempDir, TEST_SECRET, tokenQuery, waitFor, within } from './helpers.js';

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
