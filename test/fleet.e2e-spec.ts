import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

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

  it('stores and records each of 100 sessions once, with the host that took it; migrations ran once; a rotation of the shared keyring reaches both', async () => {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const s3 = await startS3();
    cleanup.push(() => s3.stop());
    writeKeyring(keyringFile, { keys: [{ kid: 'ka', secret: TEST_SECRET, state: 'current' }] });
    const env = (host: string): Record<string, string> => ({
      RTCSTATS_WORKERS: '2',
      RTCSTATS_HOST_ID: host,
      RTCSTATS_JWT_SECRET: '',
      RTCSTATS_KEYRING_FILE: keyringFile,
      // Each instance notices the changed file itself, as on a secret mount.
      RTCSTATS_KEYRING_WATCH: 'true',
      RTCSTATS_DATABASE_URL: db.url,
      RTCSTATS_S3_BUCKET: BUCKET,
      RTCSTATS_S3_ENDPOINT: s3.endpoint,
      RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
      RTCSTATS_S3_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const dataDirs = HOSTS.map((h) => path.join(shared, h));
    for (const d of dataDirs) fs.mkdirSync(d);
    // Both at the same instant, on an empty database.
    instances = await Promise.all(HOSTS.map((h, i) => startCollector(dataDirs[i], env(h))));
    await Promise.all(instances.map((c) => c.line(/All 2 workers listening/, 30_000)));
    const migratedLines = instances.flatMap((c) => c.output.filter((l) => /Metadata schema migrated/.test(l)));
    assert.equal(migratedLines.length, 1, `one process of the four migrated: ${migratedLines.join(' | ')}`);
    const history = await pgQuery<{ name: string }>(db.url, 'select name from "rtcstats-server_migrations"');
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
          db.url,
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
    const keys = await listKeys(s3.client);
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
    assert.equal((await listKeys(s3.client)).length, 2 * SESSIONS);

    for (const c of instances) c.child.kill('SIGTERM');
    for (const c of instances) assert.deepEqual(await within(c.exited, 'exit', 30_000), { code: 0, signal: null });
  });
});
