import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';

import type { DumpRecord, MetadataStore } from '../src/metadata/metadata.store.js';
import type { DumpStore } from '../src/storage/dump-store.js';
import { BACKENDS, type BackendInstance } from './backends.js';
import { connect, liveFilesGone, sendAndClose, sign, startApp, tempDir, type TestApp, tokenQuery, waitForRecords } from './helpers.js';

function record(overrides: Partial<DumpRecord> = {}): DumpRecord {
  return {
    id: crypto.randomUUID(),
    startTime: Date.UTC(2026, 10, 28, 7, 0, 0, 123),
    endTime: Date.UTC(2026, 10, 28, 7, 5, 0, 456),
    closeCode: 1000,
    frameCount: 42,
    bytes: 5_000_000_000, // past 2^32: bigint columns must keep it
    location: '/data/dumps/x.jsonl.gz',
    user: 'alice',
    session: 'session-1',
    conference: 'room-1',
    kid: 'k-2026-11',
    origin: 'https://app.example.com',
    userAgent: 'Mozilla/5.0 test',
    clientProtocol: 'rtcstats#5.0',
    path: '/app/room',
    remoteAddress: '203.0.113.x',
    statsSessionId: 'jitsi-stats-session',
    conferenceName: 'jitsi-conference',
    displayName: 'Alice',
    meetingId: 'meeting-1',
    ...overrides,
  };
}

// The same test code runs against each storage setup.
for (const backend of BACKENDS) {
  describe(`metadata store on ${backend.name}`, { skip: backend.skip }, () => {
    let inst: BackendInstance;
    let dataDir: string;
    let store: MetadataStore;
    before(async () => {
      inst = await backend.setup({ RTCSTATS_HOST_IDENTIFIER: 'collector-7' });
      dataDir = tempDir();
      store = await inst.openMetadata(dataDir);
    });
    after(async () => {
      await store?.close();
      await inst?.cleanup();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('round-trips every field and adds the table-assigned ones', async () => {
      const r = record();
      await store.insert(r);
      const got = await store.get(r.id);
      assert.ok(got);
      const { rowId, createdAt, hostIdentifier, embedUrl, ...fields } = got;
      assert.deepEqual(fields, r);
      assert.ok(Number.isInteger(rowId) && rowId > 0);
      assert.ok(Math.abs(createdAt - Date.now()) < 60_000, 'created_at defaults to now');
      assert.equal(hostIdentifier, 'collector-7');
      assert.equal(embedUrl, null);
      assert.equal(await store.get(crypto.randomUUID()), undefined);
    });

    it('insert is idempotent on the dump id: a second insert changes nothing', async () => {
      const r = record({ user: 'idem' });
      await store.insert(r);
      await store.insert({ ...r, frameCount: 999, location: 'elsewhere' });
      const rows = await store.find({ user: 'idem' });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].frameCount, 42);
      assert.equal(rows[0].location, r.location);
    });

    it('insertMany records a group, idempotent per dump id (ids already recorded are skipped)', async () => {
      const first = record({ user: 'group' });
      await store.insert(first);
      const others = Array.from({ length: 3 }, () => record({ user: 'group' }));
      await store.insertMany([{ ...first, location: 'elsewhere' }, ...others]);
      await store.insertMany(others);
      const rows = await store.find({ user: 'group' });
      assert.deepEqual(rows.map((x) => x.id).sort(), [first, ...others].map((x) => x.id).sort());
      assert.equal(rows.find((x) => x.id === first.id)!.location, first.location);
      const { rowId: _r, createdAt: _c, hostIdentifier: _h, embedUrl: _e, ...fields } = (await store.get(others[1].id))!;
      assert.deepEqual(fields, others[1]);
    });

    it('finds by user, session and conference, newest session first', async () => {
      const base = Date.UTC(2026, 0, 1);
      const a = record({ conference: 'find-room', user: 'u1', session: 's1', startTime: base, endTime: base + 1 });
      const b = record({ conference: 'find-room', user: 'u2', session: 's2', startTime: base + 1000, endTime: base + 2000 });
      const c = record({ conference: 'other-room', session: 's3', user: null });
      for (const x of [a, b, c]) await store.insert(x);
      assert.deepEqual((await store.find({ conference: 'find-room' })).map((x) => x.id), [b.id, a.id]);
      assert.deepEqual((await store.find({ conference: 'find-room', user: 'u1' })).map((x) => x.id), [a.id]);
      assert.deepEqual((await store.find({ session: 's3' })).map((x) => x.user), [null]);
      assert.equal((await store.find({ conference: 'find-room' }, 1)).length, 1);
    });

    it("records an analysis answer in the reference's rtcstats_analysis and rtcstats_observations", async () => {
      const r = record({ conference: 'analysed' });
      await store.insert(r);
      const observation = { type: 'packetLoss', severity: 'warning', category: 'network', firstSeenAt: 12.5, source: { pid: 'pc-1' } };
      await store.recordAnalysis(r.id, {
        embedUrl: 'https://rtcstats.example/embed/abc',
        rtcstatsId: 'rs-1',
        data: {
          schemaVersion: '1',
          analysisVersion: '2.1',
          observationsVersion: '3',
          uploadTimestamp: '2026-11-28T07:06:00.000Z',
          experienceScore: 4.5,
          audioScore: 4,
          videoScore: 3.5,
          connectivityScore: 5,
          observationsScore: 2,
          observationsCount: { warning: 1 },
          aiSummary: { text: 'fine' },
          userAgentData: { platform: 'Linux' },
          observations: [observation, { type: 'freeze', severity: 'info', category: 'video', firstSeenAt: 30 }],
        },
      });
      const got = await store.get(r.id);
      assert.equal(got!.embedUrl, 'https://rtcstats.example/embed/abc');
      const [analysis] = await inst.query<Record<string, unknown>>(
        dataDir,
        'select * from rtcstats_analysis where dump_id = $1',
        [got!.rowId],
      );
      assert.equal(analysis.rtcstats_id, 'rs-1');
      assert.equal(analysis.analysis_version, '2.1');
      assert.equal(Number(analysis.experience_score), 4.5);
      assert.equal(new Date(analysis.upload_timestamp as string).toISOString(), '2026-11-28T07:06:00.000Z');
      const count = analysis.observations_count;
      assert.deepEqual(typeof count === 'string' ? JSON.parse(count) : count, { warning: 1 });
      const observations = await inst.query<Record<string, unknown>>(
        dataDir,
        'select * from rtcstats_observations where analysis_id = $1 order by first_seen_at',
        [analysis.id],
      );
      assert.deepEqual(
        observations.map((o) => [o.pid, o.type, o.severity, o.category, Number(o.first_seen_at)]),
        [
          ['pc-1', 'packetLoss', 'warning', 'network', 12.5],
          [null, 'freeze', 'info', 'video', 30],
        ],
      );
      const stored = observations[0].observation;
      assert.deepEqual(typeof stored === 'string' ? JSON.parse(stored) : stored, observation);
    });
  });

  describe(`dump store on ${backend.name}`, { skip: backend.skip }, () => {
    let inst: BackendInstance;
    let dataDir: string;
    let store: DumpStore;
    before(async () => {
      inst = await backend.setup();
      dataDir = tempDir();
      store = await inst.openDumps(dataDir);
    });
    after(async () => {
      store?.close?.();
      await inst?.cleanup();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('stores the gzip of the file and returns a location it can be read back from', async () => {
      const id = crypto.randomUUID();
      const file = path.join(dataDir, 'live.jsonl');
      const content = 'RTCStatsDump\n{"origin":"https://a.example"}\n' + '["getStats","pc",{},1]\n'.repeat(1000);
      fs.writeFileSync(file, content);
      const location = await store.store(id, file);
      assert.match(location, new RegExp(`${id}\\.(jsonl\\.)?gz$`));
      assert.equal(zlib.gunzipSync(await inst.readStored(location)).toString(), content);
      assert.ok(fs.existsSync(file), 'the store never deletes the source: the finalizer does, after the record');
    });

    it('is idempotent per dump id: a second store writes nothing and returns the same location', async () => {
      const id = crypto.randomUUID();
      const file = path.join(dataDir, 'twice.jsonl');
      fs.writeFileSync(file, 'first\n');
      const before = (await inst.storedNames(dataDir)).length;
      const first = await store.store(id, file);
      fs.writeFileSync(file, 'second\n');
      const second = await store.store(id, file);
      assert.equal(second, first);
      assert.equal(zlib.gunzipSync(await inst.readStored(first)).toString(), 'first\n', 'the object was not written again');
      assert.equal((await inst.storedNames(dataDir)).length, before + 1);
    });

    it('stores a dump larger than one multipart part intact', async () => {
      const id = crypto.randomUUID();
      const file = path.join(dataDir, 'large.jsonl');
      // Random bytes barely compress: the gzip is over 5 MiB, so S3 takes it as a multipart upload.
      const content = crypto.randomBytes(6 * 1024 * 1024);
      fs.writeFileSync(file, content);
      const location = await store.store(id, file);
      assert.ok(zlib.gunzipSync(await inst.readStored(location)).equals(content));
    });
  });

  describe(`collector on ${backend.name}`, { skip: backend.skip }, () => {
    let inst: BackendInstance;
    let t: TestApp;
    before(async () => {
      inst = await backend.setup();
      t = await startApp(inst.env);
    });
    after(async () => {
      await t?.close();
      await inst?.cleanup();
      if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
    });

    it('records a session: the record, the stored dump with origin and user agent, the live file gone', async () => {
      const token = sign({ rtcStats: { user: 'e2e-user', session: 'e2e-session', conference: 'e2e-room' } });
      const ws = await connect(t.url(`/call${tokenQuery(token)}`), 'rtcstats#5.0', {
        origin: 'https://app.example.com',
        headers: { 'User-Agent': 'Mozilla/5.0 (e2e)' },
      });
      const frames = ['["create","pc1",{}]', '["getStats","pc1",{"a":1},1000]'];
      assert.equal((await sendAndClose(ws, frames, 1000)).code, 1000);
      const [r] = await waitForRecords(t, 1, { session: 'e2e-session' });
      assert.equal(r.conference, 'e2e-room');
      assert.equal(r.frameCount, 2);
      const lines = zlib.gunzipSync(await inst.readStored(r.location)).toString().trimEnd().split('\n');
      assert.equal(lines[0], 'RTCStatsDump');
      const header = JSON.parse(lines[1]);
      assert.equal(header.origin, 'https://app.example.com');
      assert.equal(header.userAgent, 'Mozilla/5.0 (e2e)');
      assert.equal(header.dumpId, r.id);
      assert.deepEqual(lines.slice(2, 4), frames);
      // Removed once the record is durable, which is a moment after it becomes visible.
      await liveFilesGone(t);
    });
  });
}
