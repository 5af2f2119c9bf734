import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { HeadObjectCommand } from '@aws-sdk/client-s3';

import { METADATA_STORE, type MetadataStore } from '../src/metadata/metadata.store.js';
import { DUMP_STORE, type DumpStore } from '../src/storage/dump-store.js';
import { BUCKET, createTestDatabase, getObject, listKeys, PG_PORT, pgQuery, pgUnavailable, startS3, TcpProxy } from './backends.js';
import { connect, sendAndClose, sign, startApp, type TestApp, tokenQuery, waitFor } from './helpers.js';

/**
 * PostgreSQL and S3 each sit behind a TCP proxy the test can take down and bring back on the
 * same port, so the shared PostgreSQL server is never touched.
 */
describe('S3 or PostgreSQL down when sessions end', { skip: pgUnavailable }, () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let s3: Awaited<ReturnType<typeof startS3>>;
  let pgProxy: TcpProxy;
  let s3Proxy: TcpProxy;
  let t: TestApp;
  before(async () => {
    database = await createTestDatabase();
    s3 = await startS3();
    pgProxy = await TcpProxy.start(PG_PORT);
    s3Proxy = await TcpProxy.start(s3.port);
    t = await startApp({
      RTCSTATS_DATABASE_URL: database.url.replace(`:${PG_PORT}/`, `:${pgProxy.port}/`),
      RTCSTATS_S3_BUCKET: BUCKET,
      RTCSTATS_S3_REGION: 'us-east-1',
      RTCSTATS_S3_ENDPOINT: `http://127.0.0.1:${s3Proxy.port}`,
      RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
    });
  });
  after(async () => {
    await t?.close();
    if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
    await pgProxy?.down();
    await s3Proxy?.down();
    await s3?.stop();
    await database?.drop();
  });

  const liveFile = (id: string) => path.join(t.dataDir, 'work', `${id}.jsonl`);

  /** Records one session and returns its dump id once finalizing it has failed. */
  async function sessionDuringOutage(session: string, frames: string[]): Promise<string> {
    const ws = await connect(t.url(`/x${tokenQuery(sign({ rtcStats: { session, conference: 'outage' } }))}`), 'rtcstats#5.0', {
      origin: 'https://o.example',
    });
    assert.equal((await sendAndClose(ws, frames, 1000)).code, 1000);
    const line = await waitFor(() => t.logs.find((l) => l.includes('finalizing failed') && !seen.has(l)), 'the finalize failure');
    seen.add(line);
    return /Dump ([0-9a-f-]{36})/.exec(line)![1];
  }
  const seen = new Set<string>();

  /** The kept live file is the complete dump: header, every frame, the close line. */
  function assertCompleteLiveFile(id: string, frames: string[]): void {
    const lines = fs.readFileSync(liveFile(id), 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'RTCStatsDump');
    assert.equal(JSON.parse(lines[1]).dumpId, id);
    assert.deepEqual(lines.slice(2, -1), frames);
    assert.equal(JSON.parse(lines.at(-1)!)[0], 'close');
  }

  /**
   * What a retry of the finalize does (the durable pipeline's retry path, or a restart's
   * recovery): the same store and insert again, on the kept live file.
   */
  async function refinalize(id: string): Promise<string> {
    const lines = fs.readFileSync(liveFile(id), 'utf8').trimEnd().split('\n');
    const header = JSON.parse(lines[1]);
    const location = await t.app.get<DumpStore>(DUMP_STORE).store(id, liveFile(id));
    await t.app.get<MetadataStore>(METADATA_STORE).insert({
      id,
      startTime: header.startTime,
      endTime: Date.now(),
      closeCode: 1000,
      frameCount: lines.length - 3,
      bytes: 0,
      location,
      user: null,
      session: null,
      conference: 'outage',
      kid: null,
      origin: header.origin,
      userAgent: null,
      clientProtocol: header.clientProtocol,
      path: '/x',
      remoteAddress: null,
    });
    return location;
  }

  it('S3 down: the dump stays local, nothing is recorded; once S3 is back it lands once', async () => {
    await s3Proxy.down();
    const frames = ['["create","pc1",{}]', '["getStats","pc1",{"s3":"down"},1]'];
    const id = await sessionDuringOutage('s3-down', frames);
    assertCompleteLiveFile(id, frames);
    assert.equal(await t.metadata.get(id), undefined);
    assert.deepEqual((await listKeys(s3.client)).filter((k) => k.includes(id)), []);

    await s3Proxy.up();
    const location = await refinalize(id);
    // A second retry (the first one's answer was lost, say) must not upload again: were it to,
    // the object would now end with this marker.
    fs.appendFileSync(liveFile(id), '["marker"]\n');
    await refinalize(id);
    assert.deepEqual((await listKeys(s3.client)).filter((k) => k.includes(id)), [`${id}.gz`]);
    assert.equal(s3Proxy.sent.split(`PUT /${BUCKET}/${id}.gz`).length - 1, 1, 'one upload request');
    const lines = zlib.gunzipSync(await getObject(s3.client, `${id}.gz`)).toString().trimEnd().split('\n');
    assert.deepEqual(lines.slice(2, -1), frames);
    assert.equal((await t.metadata.get(id))!.location, location);
    const rows = await pgQuery(database.url, 'select id from "rtcstats-server" where dump_id = $1', [id]);
    assert.equal(rows.length, 1);
  });

  it('PostgreSQL down: the object is stored but the dump stays local; the retry writes neither twice', async () => {
    await pgProxy.down();
    const frames = ['["getStats","pc1",{"pg":"down"},1]'];
    const id = await sessionDuringOutage('pg-down', frames);
    assertCompleteLiveFile(id, frames);
    const head = () => s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${id}.gz` }));
    const stored = await head();

    await pgProxy.up();
    assert.equal(await t.metadata.get(id), undefined);
    // Were the retry to upload again, the object would end with this marker.
    fs.appendFileSync(liveFile(id), '["marker"]\n');
    await refinalize(id);
    await refinalize(id);
    assert.equal((await head()).ETag, stored.ETag, 'the object was not uploaded again');
    assert.equal(s3Proxy.sent.split(`PUT /${BUCKET}/${id}.gz`).length - 1, 1, 'one upload request');
    const lines = zlib.gunzipSync(await getObject(s3.client, `${id}.gz`)).toString().trimEnd().split('\n');
    assert.equal(JSON.parse(lines.at(-1)!)[0], 'close');
    const rows = await pgQuery(database.url, 'select id from "rtcstats-server" where dump_id = $1', [id]);
    assert.equal(rows.length, 1);
    assert.equal((await t.metadata.get(id))!.conference, 'outage');
  });
});
