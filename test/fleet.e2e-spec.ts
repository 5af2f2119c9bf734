import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import { BUCKET, createTestDatabase, listKeys, pgQuery, pgUnavailable, startS3 } from './backends.js';
import { type CollectorProcess, startCollector, stopCollector } from './collector-process.js';
import { closed, connect, OTHER_SECRET, sign, TEST_SECRET, tempDir, tokenQuery, waitFor, within, writeKeyring } from './helpers.js';

const SESSIONS = 100;
const HOSTS = ['collector-a', 'collector-b'];
const frames = (session: string) => Array.from({ length: 5 }, (_, n) => `["getstats","PC_0",{"s":"${session}","n":${n}},${n}]`);

interface RecordRow {
  dump_id: string;
  rtcstats_session: string;
  host_identifier: string;
  blob_url: string;
  close_code: number;
}

/**
 * Two collectors as two machines would run them: separate processes with their own data
 * directories and ports, each a cluster of two workers, on one PostgreSQL database, one bucket and
 * one keyring file (a shared secret mount), behind a round-robin client standing in for the load balancer.
 */
describe('two collector instances on one PostgreSQL database and one S3 bucket', { skip: pgUnavailable }, () => {
  const shared = tempDir('rtcstats-fleet-');
  const keyringFile = path.join(shared, 'keyring.json');
  let instances: CollectorProcess[] = [];
  let cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    await Promise.all(instances.map((c) => stopCollector(c)));
    for (const fn of cleanup.reverse()) await fn();
    fs.rmSync(shared, { recursive: true, force: true });
  });

  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let s3: Awaited<ReturnType<typeof startS3>> | undefined;
  const envOf = (host: string): Record<string, string> => ({
      RTCSTATS_WORKERS: '2',
      RTCSTATS_HOST_ID: host,
      RTCSTATS_JWT_SECRET: '',
      RTCSTATS_KEYRING_FILE: keyringFile,
      // Each instance notices the changed file itself, as on a secret mount.
      RTCSTATS_KEYRING_WATCH: 'true',
      RTCSTATS_DATABASE_URL: db!.url,
      RTCSTATS_S3_BUCKET: BUCKET,
      RTCSTATS_S3_ENDPOINT: s3!.endpoint,
      RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
      RTCSTATS_S3_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_EC2_METADATA_DISABLED: 'true',
  });

  it('stores and records each of 100 sessions once, with the host that took it; migrations ran once; a rotation of the shared keyring reaches both', async () => {
    const database = await createTestDatabase();
    db = database;
    cleanup.push(() => database.drop());
    const s3server = await startS3();
    s3 = s3server;
    cleanup.push(() => s3server.stop());
    writeKeyring(keyringFile, { keys: [{ kid: 'ka', secret: TEST_SECRET, state: 'current' }] });
    const dataDirs = HOSTS.map((h) => path.join(shared, h));
    for (const d of dataDirs) fs.mkdirSync(d);
    // Both at the same instant, on an empty database.
    instances = await Promise.all(HOSTS.map((h, i) => startCollector(dataDirs[i], envOf(h))));
    await Promise.all(instances.map((c) => c.line(/All 2 workers listening/, 30_000)));
    const migratedLines = instances.flatMap((c) => c.output.filter((l) => /Metadata schema migrated/.test(l)));
    assert.equal(migratedLines.length, 1, `one process of the four migrated: ${migratedLines.join(' | ')}`);
    const history = await pgQuery<{ name: string }>(database.url, 'select name from "rtcstats-server_migrations"');
    assert.equal(new Set(history.map((h) => h.name)).size, history.length, 'each migration recorded once');

    // The load balancer: session i goes to instance i % 2, ten at a time.
    const runSessions = async (prefix: string, secret: string, kid: string) => {
      for (let batch = 0; batch < SESSIONS; batch += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, k) => {
            const i = batch + k;
            const session = `${prefix}-${i}`;
            const ws = await connect(instances[i % 2].url(`/fleet${tokenQuery(sign({ rtcStats: { user: 'u', session } }, secret, { keyid: kid }))}`));
            const done = closed(ws);
            for (const f of frames(session)) ws.send(f);
            ws.close(1000);
            assert.equal((await done).code, 1000);
          }),
        );
      }
    };
    const recorded = (prefix: string) =>
      waitFor(async () => {
        const rows = await pgQuery<RecordRow>(
          database.url,
          `select dump_id, rtcstats_session, host_identifier, blob_url, close_code from "rtcstats-server" where rtcstats_session like $1`,
          [`${prefix}-%`],
        );
        return rows.length >= SESSIONS ? rows : undefined;
      }, `${SESSIONS} records`, 60_000);

    await runSessions('before', TEST_SECRET, 'ka');
    const rows = await recorded('before');
    assert.equal(rows.length, SESSIONS, 'recorded once each');
    assert.equal(new Set(rows.map((r) => r.rtcstats_session)).size, SESSIONS);
    for (const r of rows) {
      const i = Number(r.rtcstats_session.split('-')[1]);
      assert.equal(r.host_identifier, HOSTS[i % 2], `${r.rtcstats_session}: recorded by the instance that took it`);
      assert.equal(r.close_code, 1000);
      assert.ok(r.blob_url.includes(`${r.dump_id}.gz`), r.blob_url);
    }
    const keys = await listKeys(s3server.client);
    assert.deepEqual(keys, rows.map((r) => `${r.dump_id}.gz`).sort(), 'stored once each in the one bucket');

    // Rotation of the shared file: kb becomes current, ka stays valid as previous for a while.
    writeKeyring(keyringFile, {
      keys: [
        { kid: 'ka', secret: TEST_SECRET, state: 'previous', notAfter: new Date(Date.now() + 3600_000).toISOString() },
        { kid: 'kb', secret: OTHER_SECRET, state: 'current' },
      ],
    });
    await within(
      Promise.all(instances.map((c) => waitFor(() => (c.output.filter((l) => /Keyring reloaded .*kb/.test(l)).length >= 2 ? true : undefined), 'both workers of an instance reloading', 20_000))),
      'the rotation on both instances',
      30_000,
    );
    await runSessions('after', OTHER_SECRET, 'kb');
    const after = await recorded('after');
    assert.deepEqual(new Set(after.map((r) => r.host_identifier)), new Set(HOSTS), 'both instances accept the new key');
    assert.equal((await listKeys(s3server.client)).length, 2 * SESSIONS);
  });

  it('loses nothing through a worker crash and a rolling deploy of one instance while sessions are live', async () => {
    assert.equal(instances.length, 2, 'runs on the instances of the previous test');
    const a = instances[0];
    const live: Array<{ name: string; ws: WebSocket; sent: string[]; close: Promise<{ code: number; reason: string }>; on: number }> = [];
    for (let i = 0; i < 12; i++) {
      const name = `deploy-${i}`;
      const on = i % 2;
      const ws = await connect(instances[on].url(`/fleet${tokenQuery(sign({ rtcStats: { session: name } }, OTHER_SECRET, { keyid: 'kb' }))}`));
      ws.on('error', () => {});
      const sent = frames(name);
      for (const f of sent) ws.send(f);
      live.push({ name, ws, sent, close: closed(ws, 60_000), on });
    }
    const workDir = (i: number, slot: number) => path.join(shared, HOSTS[i], 'work', `worker-${slot}`);
    const liveOn = (i: number, slot: number) => (fs.existsSync(workDir(i, slot)) ? fs.readdirSync(workDir(i, slot)).filter((f) => f.endsWith('.jsonl')) : []);
    // Every frame on disk (header 2 lines + 5 frames), so a crash now may lose none.
    const written = () =>
      [0, 1].flatMap((i) => [1, 2].flatMap((slot) => liveOn(i, slot).map((f) => fs.readFileSync(path.join(workDir(i, slot), f), 'utf8').split('\n').length - 1)));
    await waitFor(() => (written().filter((n) => n >= 7).length === 12 ? true : undefined), 'every frame of every session on disk');

    // A worker of instance A crashes: its clients drop (1006), a replacement recovers their dumps.
    const victim = Number(/pid (\d+)/.exec(a.output.filter((l) => /Worker 1 \(pid \d+\) listening/.test(l)).at(-1)!)![1]);
    const onVictim = liveOn(0, 1).length;
    assert.ok(onVictim > 0);
    process.kill(victim, 'SIGKILL');
    await a.line(new RegExp(`Worker 1 \\(pid (?!${victim}\\))\\d+\\) listening`), 30_000);

    // Rolling deploy of instance A: SIGTERM drains it (1001), then it starts again on the same data directory.
    a.child.kill('SIGTERM');
    assert.deepEqual(await within(a.exited, 'instance A to drain', 30_000), { code: 0, signal: null });
    instances[0] = await startCollector(path.join(shared, HOSTS[0]), envOf(HOSTS[0]));
    await instances[0].line(/All 2 workers listening/, 30_000);
    // Instance B's sessions end normally.
    for (const s of live.filter((x) => x.on === 1)) s.ws.close(1000);

    const codes = await Promise.all(live.map((s) => s.close.then((c) => c.code)));
    const onA = live.filter((s) => s.on === 0);
    assert.deepEqual(codes.filter((_, i) => live[i].on === 1), [1000, 1000, 1000, 1000, 1000, 1000]);
    assert.equal(codes.filter((c, i) => live[i].on === 0 && c === 1006).length, onVictim, 'the crashed worker\'s clients saw 1006');
    assert.equal(codes.filter((c, i) => live[i].on === 0 && c === 1001).length, onA.length - onVictim, 'the drained worker\'s clients saw 1001');

    const rows = await waitFor(async () => {
      const r = await pgQuery<RecordRow & { frame_count: number }>(
        db!.url,
        `select dump_id, rtcstats_session, host_identifier, blob_url, close_code, frame_count from "rtcstats-server" where rtcstats_session like 'deploy-%'`,
      );
      return r.length >= live.length ? r : undefined;
    }, 'a record for every session', 60_000);
    assert.equal(rows.length, live.length, 'one record each');
    for (const s of live) {
      const row = rows.find((r) => r.rtcstats_session === s.name)!;
      assert.equal(row.host_identifier, HOSTS[s.on]);
      assert.equal(row.frame_count, s.sent.length, `${s.name}: every frame`);
      assert.equal(row.close_code, codes[live.indexOf(s)]);
    }
    const keys = new Set(await listKeys(s3!.client));
    for (const r of rows) assert.ok(keys.has(`${r.dump_id}.gz`), `${r.rtcstats_session} stored`);
    assert.equal([1, 2].reduce((n, slot) => n + liveOn(0, slot).length + liveOn(1, slot).length, 0), 0, 'nothing left in work/');

    for (const c of instances) c.child.kill('SIGTERM');
    for (const c of instances) assert.deepEqual(await within(c.exited, 'exit', 30_000), { code: 0, signal: null });
  });
});
