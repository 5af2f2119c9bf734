import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import { type CollectorProcess, metadataRows, type Row, startCollector, stopCollector } from './collector-process.js';
import { closed, connect, OTHER_SECRET, readDump, REPO_ROOT, sign, TEST_SECRET, tempDir, tokenQuery, waitFor, within, writeKeyring } from './helpers.js';

/** Enough concurrent sessions that the cluster's round-robin gives each of 2 workers several. */
const SESSIONS = 8;
const frame = (session: string, n: number) => `["getstats","PC_0",{"session":"${session}","n":${n}},${n}]`;

interface Session {
  readonly name: string;
  readonly ws: WebSocket;
  readonly sent: string[];
  readonly close: Promise<{ code: number; reason: string }>;
}

const liveFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')) : []);
const linesIn = (file: string) => fs.readFileSync(file, 'utf8').split('\n').length - 1;

/** The pid the primary reported for a worker slot's latest start. */
function workerPid(c: CollectorProcess, slot: number): number {
  const lines = c.output.filter((l) => new RegExp(`Worker ${slot} \\(pid \\d+\\) listening`).test(l));
  return Number(/pid (\d+)/.exec(lines.at(-1)!)![1]);
}

describe('RTCSTATS_WORKERS=2 (a Node cluster on one port, child process)', () => {
  const dataDir = tempDir('rtcstats-cluster-');
  const keyringFile = path.join(dataDir, 'keyring.json');
  const work = (slot: number) => path.join(dataDir, 'work', `worker-${slot}`);
  let c: CollectorProcess;
  const open: Session[] = [];
  let counter = 0;

  async function openSessions(n: number, secret = TEST_SECRET, kid = 'ka'): Promise<Session[]> {
    const made: Session[] = [];
    for (let i = 0; i < n; i++) {
      const name = `s${++counter}`;
      const ws = await connect(c.url(`/cluster${tokenQuery(sign({ rtcStats: { user: 'u', session: name } }, secret, { keyid: kid }))}`));
      ws.on('error', () => {});
      const s: Session = { name, ws, sent: [], close: closed(ws, 60_000) };
      for (let k = 0; k < 20; k++) {
        s.sent.push(frame(name, k));
        ws.send(frame(name, k));
      }
      made.push(s);
      open.push(s);
    }
    return made;
  }

  /** Waits until every session's frames are in a live file, and returns how many live files each worker has. */
  async function onDisk(sessions: Session[]): Promise<[number, number]> {
    return waitFor(() => {
      const files = [1, 2].flatMap((slot) => liveFiles(work(slot)).map((f) => path.join(work(slot), f)));
      if (files.filter((f) => linesIn(f) >= 2 + 20).length < sessions.length) return undefined;
      return [liveFiles(work(1)).length, liveFiles(work(2)).length] as [number, number];
    }, 'frames of every session in a live file', 30_000);
  }

  const rowsOf = (sessions: Session[]): Row[] | undefined => {
    const names = new Set(sessions.map((s) => s.name));
    const rows = metadataRows(dataDir).filter((r) => names.has(r.rtcstats_session!));
    return rows.length >= sessions.length ? rows : undefined;
  };

  function assertComplete(rows: Row[], sessions: Session[], closeCode: number): void {
    assert.equal(rows.length, sessions.length, 'one record per session');
    for (const s of sessions) {
      const row = rows.find((r) => r.rtcstats_session === s.name)!;
      assert.equal(row.close_code, closeCode, `${s.name}: close code`);
      const lines = readDump(row.location);
      assert.deepEqual(lines.slice(2, -1), s.sent, `${s.name}: every frame sent, in order`);
      assert.equal(row.frame_count, s.sent.length);
    }
  }

  before(async () => {
    writeKeyring(keyringFile, { keys: [{ kid: 'ka', secret: TEST_SECRET, state: 'current' }] });
    c = await startCollector(dataDir, {
      RTCSTATS_WORKERS: '2',
      RTCSTATS_JWT_SECRET: '',
      RTCSTATS_KEYRING_FILE: keyringFile,
      RTCSTATS_OBFUSCATE_IPS: 'false',
    });
    await c.line(/All 2 workers listening on port \d+/, 30_000);
    assert.equal(c.output.filter((l) => /Metadata schema migrated/.test(l)).length, 1, 'migrations ran once (in worker 1, before worker 2 started)');
  });
  after(async () => {
    for (const s of open) s.ws.terminate();
    await stopCollector(c);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('spreads sessions over both workers and records every one of them', async () => {
    const sessions = await openSessions(SESSIONS);
    const [one, two] = await onDisk(sessions);
    assert.ok(one > 0 && two > 0, `both workers hold live sessions (${one} and ${two})`);
    for (const s of sessions) s.ws.close(1000);
    for (const s of sessions) assert.equal((await s.close).code, 1000);
    assertComplete(await waitFor(() => rowsOf(sessions), 'records of every session', 30_000), sessions, 1000);
    // A scrape reaches one worker, and each answers for the whole cluster.
    for (let i = 0; i < 4; i++) {
      const text = await within(fetch(`http://127.0.0.1:${c.port}/metrics`).then((r) => r.text()), 'GET /metrics');
      assert.match(text, new RegExp(`^rtcstats_connections_accepted_total\\{protocol="rtcstats"\\} ${SESSIONS}$`, 'm'), `scrape ${i}: both workers' connections counted`);
      // A timestamp or a shared setting is not summed.
      const floor = Number(/^rtcstats_disk_free_floor_bytes (\d+)$/m.exec(text)?.[1]);
      assert.equal(floor, 1024 ** 3, 'RTCSTATS_MIN_FREE_DISK once, not once per worker');
      const last = Number(/^rtcstats_token_last_verified_timestamp_seconds\{kid="ka"\} ([\d.e+]+)$/m.exec(text)?.[1]);
      assert.ok(last > Date.now() / 1000 - 3600 && last <= Date.now() / 1000 + 1, `last verification is a time, not a sum of times (${last})`);
    }
  });

  it('reloads a rotated keyring file in both workers (SIGHUP to the primary)', async () => {
    writeKeyring(keyringFile, { keys: [{ kid: 'kb', secret: OTHER_SECRET, state: 'current' }] });
    const before = c.output.filter((l) => /Keyring reloaded/.test(l)).length;
    c.child.kill('SIGHUP');
    await waitFor(() => (c.output.filter((l) => /Keyring reloaded .*kb/.test(l)).length >= before + 2 ? true : undefined), 'both workers reloading');
    // New-key sessions are accepted by both workers...
    const sessions = await openSessions(SESSIONS, OTHER_SECRET, 'kb');
    const [one, two] = await onDisk(sessions);
    assert.ok(one > 0 && two > 0, `both workers accepted new-key sessions (${one} and ${two})`);
    for (const s of sessions) s.ws.close(1000);
    for (const s of sessions) assert.equal((await s.close).code, 1000);
    // ...and the removed key is refused by both (round-robin: consecutive connections alternate).
    for (let i = 0; i < 4; i++) {
      const ws = await connect(c.url(`/old${tokenQuery(sign({ rtcStats: { session: `old-${i}` } }, TEST_SECRET, { keyid: 'ka' }))}`));
      assert.equal((await closed(ws)).code, 1008);
    }
    await waitFor(() => rowsOf(sessions), 'records of the new-key sessions', 30_000);
  });

  it('replaces a worker killed with SIGKILL and recovers its live dumps; the other worker carries on', async () => {
    const sessions = await openSessions(SESSIONS, OTHER_SECRET, 'kb');
    const [one, two] = await onDisk(sessions);
    assert.ok(one > 0 && two > 0);
    const victim = workerPid(c, 1);
    const replaced = c.line(new RegExp(`Worker 1 \\(pid (?!${victim}\\))\\d+\\) listening`), 30_000);
    process.kill(victim, 'SIGKILL');
    const killed: Session[] = [];
    const survivors: Session[] = [];
    // Exactly the sessions of the dead worker lose their connection (1006: no close frame).
    await within(
      Promise.all(sessions.map((s) => Promise.race([s.close.then(() => killed.push(s)), new Promise((r) => setTimeout(r, 3000)).then(() => undefined)]))),
      'connections of the killed worker to drop',
      20_000,
    );
    for (const s of sessions) if (!killed.includes(s)) survivors.push(s);
    assert.equal(killed.length, one, 'the killed worker held these sessions');
    for (const s of killed) assert.equal((await s.close).code, 1006);
    await replaced;
    assertComplete(await waitFor(() => rowsOf(killed), 'records of the recovered dumps', 30_000), killed, 1006);
    assert.deepEqual(liveFiles(work(1)), [], 'the replacement recovered the dead worker\'s folder');
    // The survivors never noticed.
    for (const s of survivors) {
      s.sent.push(frame(s.name, 99));
      s.ws.send(frame(s.name, 99));
      s.ws.close(1000);
      assert.equal((await s.close).code, 1000);
    }
    assertComplete(await waitFor(() => rowsOf(survivors), 'records of the surviving sessions', 30_000), survivors, 1000);
  });

  it('drains both workers on SIGTERM to the primary: 1001 to every client, every dump complete, exit 0', async () => {
    const sessions = await openSessions(SESSIONS, OTHER_SECRET, 'kb');
    const [one, two] = await onDisk(sessions);
    assert.ok(one > 0 && two > 0, `both workers hold live sessions (${one} and ${two})`);
    c.child.kill('SIGTERM');
    for (const s of sessions) assert.deepEqual(await s.close, { code: 1001, reason: 'server shutting down' });
    assert.deepEqual(await within(c.exited, 'primary exit', 30_000), { code: 0, signal: null });
    assertComplete(rowsOf(sessions)!, sessions, 1001);
    assert.deepEqual([...liveFiles(work(1)), ...liveFiles(work(2))], []);
    assert.equal(c.output.filter((l) => /Draining: closing/.test(l)).length, 2, 'both workers drained');
  });
});

describe('RTCSTATS_WORKERS=2 with a worker that cannot start', () => {
  const dataDir = tempDir('rtcstats-cluster-bad-');
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('stops the cluster with exit code 1 instead of forking it again and again', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/src/main.js')], {
      cwd: dataDir,
      env: { PATH: process.env.PATH ?? '', RTCSTATS_WORKERS: '2', RTCSTATS_PORT: '0', RTCSTATS_DATA_DIR: dataDir, RTCSTATS_KEYRING_FILE: path.join(dataDir, 'missing.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exit = await within(new Promise<number | null>((r) => child.once('exit', (code) => r(code))), 'the primary to give up', 30_000).finally(() => child.kill('SIGKILL'));
    assert.equal(exit, 1, output);
    assert.match(output, /missing\.json: cannot read \(ENOENT\)/);
    assert.match(output, /Worker 1 \(pid \d+\) exited during startup with code 1: stopping/);
    assert.equal((output.match(/Primary \(pid/g) ?? []).length, 1);
  });
});

describe('RTCSTATS_WORKERS=2 when the primary itself is killed', () => {
  const dataDir = tempDir('rtcstats-cluster-orphan-');
  let c: CollectorProcess | undefined;
  const sockets: WebSocket[] = [];
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await stopCollector(c);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('its workers exit instead of serving on unsupervised, and the next start recovers the live dumps of both', async () => {
    c = await startCollector(dataDir, { RTCSTATS_WORKERS: '2', RTCSTATS_OBFUSCATE_IPS: 'false' });
    await c.line(/All 2 workers listening/, 30_000);
    const pids = [workerPid(c, 1), workerPid(c, 2)];
    const sent = new Map<string, string[]>();
    for (let i = 0; i < 6; i++) {
      const name = `orphan-${i}`;
      const ws = await connect(c.url(`/o${tokenQuery(sign({ rtcStats: { session: name } }))}`));
      ws.on('error', () => {});
      sockets.push(ws);
      sent.set(name, [frame(name, 0), frame(name, 1)]);
      for (const f of sent.get(name)!) ws.send(f);
    }
    const live = () => [1, 2].flatMap((slot) => liveFiles(path.join(dataDir, 'work', `worker-${slot}`)).map((f) => path.join(dataDir, 'work', `worker-${slot}`, f)));
    await waitFor(() => (live().filter((f) => linesIn(f) >= 4).length === 6 ? true : undefined), 'frames on disk');
    c.child.kill('SIGKILL');
    await c.exited;
    const gone = (pid: number) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(() => (pids.every(gone) ? true : undefined), 'both workers to exit after the primary died', 15_000);
    assert.equal(live().length, 6, 'their live dumps are left for recovery');

    c = await startCollector(dataDir, { RTCSTATS_WORKERS: '2', RTCSTATS_OBFUSCATE_IPS: 'false' });
    const rows = await waitFor(() => {
      const r = metadataRows(dataDir);
      return r.length >= 6 ? r : undefined;
    }, 'the recovered records', 30_000);
    assert.equal(rows.length, 6);
    for (const row of rows) {
      assert.equal(row.close_code, 1006);
      assert.deepEqual(readDump(row.location).slice(2, -1), sent.get(row.rtcstats_session!));
    }
    assert.deepEqual(live(), []);
  });
});
