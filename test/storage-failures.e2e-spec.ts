import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { BUCKET, createTestDatabase, getObject, listKeys, PG_PORT, pgQuery, pgUnavailable, startS3, TcpProxy } from './backends.js';
import { connect, sendAndClose, sign, startApp, tempDir, type TestApp, tokenQuery, waitFor } from './helpers.js';
import { scrape } from './prometheus-text.js';

/** Retries back off from 1 s, doubling: landing after an outage can take a few attempts. */
const RECOVERY_MS = 30_000;

/**
 * PostgreSQL and S3 each sit behind a TCP proxy the test can take down and bring back on the
 * same port, so the shared PostgreSQL server is never touched. The finalization queue's own retry
 * path does the rest: nothing here calls the stores directly.
 */
describe('S3 or PostgreSQL down when sessions end', { skip: pgUnavailable }, () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let pgProxy: TcpProxy;
  let s3Proxy: TcpProxy;
  let env: Record<string, string>;
  const apps: TestApp[] = [];
  before(async () => {
    database = await createTestDatabase();
    s3 = await startS3();
    pgProxy = await TcpProxy.start(PG_PORT);
    s3Proxy = await TcpProxy.start(s3.port);
    env = {
      RTCSTATS_DATABASE_URL: database.url.replace(`:${PG_PORT}/`, `:${pgProxy.port}/`),
      RTCSTATS_S3_BUCKET: BUCKET,
      RTCSTATS_S3_REGION: 'us-east-1',
      RTCSTATS_S3_ENDPOINT: `http://127.0.0.1:${s3Proxy.port}`,
      RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
    };
  });
  after(async () => {
    for (const a of apps) await a.close();
    for (const dir of new Set(apps.map((a) => a.dataDir))) fs.rmSync(dir, { recursive: true, force: true });
    await pgProxy?.down();
    await s3Proxy?.down();
    await s3?.stop();
    await database?.drop();
  });

  async function app(extra: Record<string, string> = {}): Promise<TestApp> {
    const t = await startApp({ ...env, ...extra });
    apps.push(t);
    return t;
  }

  /** Records one session and returns its dump id once the first attempt to finalize it failed. */
  async function sessionDuringOutage(t: TestApp, session: string, frames: string[]): Promise<string> {
    const ws = await connect(t.url(`/x${tokenQuery(sign({ rtcStats: { session, conference: 'outage' } }))}`), 'rtcstats#5.0', {
      origin: 'https://o.example',
    });
    assert.equal((await sendAndClose(ws, frames, 1000)).code, 1000);
    const line = await waitFor(
      () => t.logs.find((l) => /Dump [0-9a-f-]{36}: attempt 1 failed/.test(l) && !seen.has(l)),
      'the first failed finalize attempt',
    );
    seen.add(line);
    return /Dump ([0-9a-f-]{36})/.exec(line)![1];
  }
  const seen = new Set<string>();
  const metrics = (t: TestApp) => scrape(`http://127.0.0.1:${t.port}/metrics`);

  // A session that ended normally waits, complete, as its live file.
  const waitingFile = (t: TestApp, id: string) => path.join(t.dataDir, 'work', `${id}.jsonl`);
  const uploads = (id: string) => s3Proxy.sent.split(`PUT /${BUCKET}/${id}.gz`).length - 1;
  const rows = async (id: string) => pgQuery(database.url, 'select id from "rtcstats-server" where dump_id = $1', [id]);

  /** The kept file is the complete dump: header, every frame, the close line. */
  function assertCompleteLocalDump(file: string, id: string, frames: string[]): void {
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'RTCStatsDump');
    assert.equal(JSON.parse(lines[1]).dumpId, id);
    assert.deepEqual(lines.slice(2, -1), frames);
    assert.equal(JSON.parse(lines.at(-1)!)[0], 'close');
  }

  async function assertLandedOnce(t: TestApp, id: string, frames: string[]): Promise<void> {
    const record = await waitFor(() => t.metadata.get(id), `the record of ${id}`, RECOVERY_MS);
    assert.equal(record.location, `http://127.0.0.1:${s3Proxy.port}/${BUCKET}/${id}.gz`);
    assert.deepEqual((await listKeys(s3.client)).filter((k) => k.includes(id)), [`${id}.gz`]);
    assert.equal(uploads(id), 1, 'one upload request for the dump');
    assert.equal((await rows(id)).length, 1, 'one row for the dump');
    const lines = zlib.gunzipSync(await getObject(s3.client, `${id}.gz`)).toString().trimEnd().split('\n');
    assert.deepEqual(lines.slice(2, -1), frames);
    await waitFor(() => (fs.existsSync(waitingFile(t, id)) ? undefined : true), 'the local file removed');
  }

  it('/readyz flips when PostgreSQL or S3 goes away and comes back (pinged through the store interfaces)', async () => {
    const t = await app();
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${t.port}/readyz`);
      return { status: res.status, body: (await res.json()) as { info: Record<string, { backend?: string }>; error: Record<string, { message?: string }> } };
    };
    const up = await readyz();
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.equal(up.body.info.metadata.backend, 'postgres');
    assert.equal(up.body.info.storage.backend, 's3');
    await pgProxy.down();
    try {
      const down = await readyz();
      assert.equal(down.status, 503);
      assert.deepEqual(Object.keys(down.body.error), ['metadata']);
      assert.ok(!JSON.stringify(down.body).includes(database.url), 'no connection string in the answer');
    } finally {
      await pgProxy.up();
    }
    await waitFor(async () => ((await readyz()).status === 200 ? true : undefined), 'ready again after PostgreSQL is back');
    await s3Proxy.down();
    try {
      const down = await readyz();
      assert.equal(down.status, 503);
      assert.deepEqual(Object.keys(down.body.error), ['storage']);
    } finally {
      await s3Proxy.up();
    }
    await waitFor(async () => ((await readyz()).status === 200 ? true : undefined), 'ready again after S3 is back');
  });

  it('S3 down: the dump stays local and nothing is recorded; once S3 is back it lands, once', async () => {
    const t = await app();
    await s3Proxy.down();
    const frames = ['["create","pc1",{}]', '["getStats","pc1",{"s3":"down"},1]'];
    const id = await sessionDuringOutage(t, 's3-down', frames);
    assertCompleteLocalDump(waitingFile(t, id), id, frames);
    assert.equal(await t.metadata.get(id), undefined);
    assert.deepEqual((await listKeys(s3.client)).filter((k) => k.includes(id)), []);
    // The failure and its retry are counted against the backend that failed.
    const during = await metrics(t);
    assert.ok(during.value('rtcstats_dumps_retried_total', { backend: 's3' }) >= 1);
    assert.ok(during.value('rtcstats_files_errored', { backend: 's3' }) >= 1);
    assert.equal(during.value('rtcstats_dumps_retried_total', { backend: 'postgres' }), 0);

    await s3Proxy.up();
    await assertLandedOnce(t, id, frames);
    assert.equal((await metrics(t)).value('rtcstats_files_processed', { backend: 's3' }), 1);
  });

  it('PostgreSQL down: the object is stored, the dump stays local until the record lands, once', async () => {
    const t = await app();
    await pgProxy.down();
    const frames = ['["getStats","pc1",{"pg":"down"},1]'];
    const id = await sessionDuringOutage(t, 'pg-down', frames);
    assertCompleteLocalDump(waitingFile(t, id), id, frames);
    assert.equal(uploads(id), 1, 'stored before the insert failed');
    const during = await metrics(t);
    assert.ok(during.value('rtcstats_dumps_retried_total', { backend: 'postgres' }) >= 1);
    assert.equal(during.value('rtcstats_dumps_retried_total', { backend: 's3' }), 0);

    await pgProxy.up();
    await assertLandedOnce(t, id, frames);
  });

  it('PostgreSQL down until a restart: recovery finds the object already stored and does not upload it again', async () => {
    const dataDir = tempDir();
    // A short drain: the first process gives up on the dump at shutdown, leaving it complete in work/.
    const first = await app({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_SHUTDOWN_TIMEOUT: '1' });
    await pgProxy.down();
    const frames = ['["getStats","pc1",{"restart":true},1]'];
    const id = await sessionDuringOutage(first, 'pg-down-restart', frames);
    assert.equal(uploads(id), 1);
    await first.close();
    apps.splice(apps.indexOf(first), 1);
    assertCompleteLocalDump(path.join(dataDir, 'work', `${id}.jsonl`), id, frames);
    assert.equal(uploads(id), 1);

    await pgProxy.up();
    const second = await app({ RTCSTATS_DATA_DIR: dataDir });
    await assertLandedOnce(second, id, frames);
    assert.ok(second.logs.some((l) => l.includes('Recovering 1 dump(s)')), second.logs.join('\n'));
  });
});
