import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

import Database from 'better-sqlite3';

import type { DumpQuery, DumpRecord, MetadataStore, StoredDumpRecord } from '../metadata/metadata.store.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import type { DumpStore } from '../storage/dump-store.js';
import { LocalDumpStore } from '../storage/local-dump.store.js';
import { closeLine, type DumpDraft } from './dump-file.js';
import { FinalizeQueue, type FinalizeQueueOptions } from './finalize-queue.js';
import { recoveryJobs } from './recovery.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'finalize-queue-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let dirs = 0;
function layout() {
  const base = path.join(root, `d${dirs++}`);
  const work = path.join(base, 'work');
  const outbox = path.join(base, 'outbox');
  const dumps = path.join(base, 'dumps');
  fs.mkdirSync(work, { recursive: true });
  return { base, work, outbox, dumps };
}

function header(id: string): string {
  return `RTCStatsDump\n${JSON.stringify({ url: '/p', startTime: 1000, remoteAddresses: [], fileFormat: 3, dumpId: id, kid: null, rtcStats: { user: 'u', session: null, conference: null } })}\n`;
}

/** A live file as a session leaves it: complete (with close line) or torn by a crash. */
function liveFile(work: string, id: string, frames: number, complete: boolean): string {
  const file = path.join(work, `${id}.jsonl`);
  const lines = Array.from({ length: frames }, (_, i) => `["g","PC_0",{"n":${i}},1]`);
  fs.writeFileSync(file, header(id) + lines.join('\n') + '\n' + (complete ? closeLine(1000, 1) : '["g","PC_0",{"n":'));
  return file;
}

function draft(id: string, frames: number): DumpDraft {
  return {
    id, startTime: 1000, endTime: 2000, closeCode: 1000, frameCount: frames, bytes: 1, user: 'u', session: null,
    conference: null, kid: null, origin: null, userAgent: null, clientProtocol: null, path: '/p', remoteAddress: null,
  };
}

const quiet = { log: () => {}, warn: () => {}, error: () => {} };

const stored = (r: DumpRecord): StoredDumpRecord => ({ ...r, rowId: 0, createdAt: 0, hostIdentifier: null, embedUrl: null });

/** In-memory MetadataStore double that fails its first `failures` inserts; keyed by id like the real one. */
class FlakyMetadata implements MetadataStore {
  readonly rows = new Map<string, DumpRecord>();
  inserts = 0;
  constructor(public failures = 0) {}
  /** The ids of each insertMany call. */
  readonly groups: string[][] = [];
  async insert(record: DumpRecord): Promise<void> {
    await this.insertMany([record]);
  }
  /** Ids the store refuses (like a row the database rejects): a group holding one fails whole. */
  readonly refused = new Set<string>();
  /** When set, inserts wait for it (a slow database). */
  gate: Promise<void> | undefined;
  async insertMany(records: readonly DumpRecord[]): Promise<void> {
    this.inserts += records.length;
    this.groups.push(records.map((r) => r.id));
    await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('metadata store down');
    }
    if (records.some((r) => this.refused.has(r.id))) throw new Error('row refused');
    for (const record of records) if (!this.rows.has(record.id)) this.rows.set(record.id, record);
  }
  async get(id: string) { const r = this.rows.get(id); return r && stored(r); }
  async find(_q: DumpQuery) { return [...this.rows.values()].map(stored); }
  async recordAnalysis() { throw new Error('not used by the queue'); }
  async close() {}
  readonly backend = 'memory';
  async ping() {}
}

/** DumpStore double around the real local store: fails (even synchronously) first, tracks concurrency. */
class FlakyStore implements DumpStore {
  calls = 0;
  active = 0;
  maxActive = 0;
  readonly backend = 'flaky';
  constructor(private readonly inner: DumpStore, public failures = 0, private readonly throwSync = false) {}
  ping(): Promise<void> { return this.inner.ping(); }
  store(id: string, file: string): Promise<string> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      if (this.throwSync) throw new Error('store exploded');
      return Promise.reject(new Error('store down'));
    }
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return this.inner.store(id, file).finally(() => this.active--);
  }
}

/** DumpStore double whose stores all finish at the same moment (when `open()` is called). */
class GatedStore implements DumpStore {
  readonly backend = 'gated';
  private waiting: Array<() => void> = [];
  constructor(private readonly inner: DumpStore) {}
  ping(): Promise<void> { return this.inner.ping(); }
  async store(id: string, file: string): Promise<string> {
    const location = await this.inner.store(id, file);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return location;
  }
  get pending(): number { return this.waiting.length; }
  open(): void { for (const resolve of this.waiting.splice(0)) resolve(); }
  /** Lets the oldest waiting store finish. */
  openOne(): void { this.waiting.shift()?.(); }
}

function queue(opts: Partial<FinalizeQueueOptions> & Pick<FinalizeQueueOptions, 'dumps' | 'metadata' | 'outboxDir'>): FinalizeQueue {
  return new FinalizeQueue({ concurrency: 2, log: quiet, retryMs: 10, maxRetryMs: 40, ...opts });
}

/**
 * Far below the 5 s a blocking busy_timeout costs, far above what a preempted process loses on a
 * shared 2-core machine (the 100 ms bound of the issue is checked end to end in durability.e2e-spec).
 */
const MAX_STALL_MS = 1000;

describe('FinalizeQueue', () => {
  it('retries a failing store and a failing metadata store until both succeed: one object, one record, nothing left', async () => {
    const d = layout();
    const dumps = new FlakyStore(new LocalDumpStore(d.dumps), 3, true);
    const metadata = new FlakyMetadata(2);
    // What the metrics are labelled with: the backend that failed, and the dump store of the finalized dump.
    const events: string[] = [];
    const observer = {
      stored: () => {},
      storeFailed: () => {},
      recorded: () => {},
      recordFailed: () => {},
      finalized: (backend: string) => events.push(`finalized ${backend}`),
      attemptFailed: (backend: string) => events.push(`failed ${backend}`),
      retryScheduled: (backend: string) => events.push(`retry ${backend}`),
    };
    const q = queue({ dumps, metadata, outboxDir: d.outbox, observer });
    const file = liveFile(d.work, 'a1', 5, true);
    q.submit({ id: 'a1', file, sealed: false, record: draft('a1', 5), complete: true });
    await q.idle();
    assert.equal(metadata.rows.size, 1);
    assert.equal(metadata.inserts, 3);
    assert.equal(dumps.calls, 4, 'a stored dump is not stored again when only the insert failed');
    assert.deepEqual(fs.readdirSync(d.dumps), ['a1.jsonl.gz']);
    assert.deepEqual(fs.readdirSync(d.work), []);
    assert.deepEqual(fs.readdirSync(d.outbox), []);
    assert.equal(q.stats.failedAttempts, 5);
    assert.equal(q.stats.finalized, 1);
    assert.deepEqual(events, [
      ...Array(3).fill(['failed flaky', 'retry flaky']).flat(),
      ...Array(2).fill(['failed memory', 'retry memory']).flat(),
      'finalized flaky',
    ]);
    const stored = zlib.gunzipSync(fs.readFileSync(metadata.rows.get('a1')!.location)).toString();
    assert.match(stored, /\["close",null,1000,1\]\n$/);
  });

  it('never runs more than `concurrency` jobs at once and reports its depth', async () => {
    const d = layout();
    const dumps = new FlakyStore(new LocalDumpStore(d.dumps));
    const metadata = new FlakyMetadata();
    const q = queue({ dumps, metadata, outboxDir: d.outbox, concurrency: 3 });
    for (let i = 0; i < 20; i++) {
      const id = `c${i}`;
      q.submit({ id, file: liveFile(d.work, id, 50, true), sealed: false, record: draft(id, 50), complete: true });
    }
    assert.equal(q.depth, 20);
    assert.equal(q.stats.running, 3);
    assert.equal(q.stats.queued, 17);
    await q.idle();
    assert.equal(dumps.maxActive <= 3, true, `max concurrent stores ${dumps.maxActive}`);
    assert.equal(metadata.rows.size, 20);
    assert.equal(q.depth, 0);
  });

  it('stores a complete dump straight from work/, without moving it through the outbox', async () => {
    const d = layout();
    const seen: string[] = [];
    const spare = path.join(d.base, 'spare');
    const local = new LocalDumpStore(d.dumps, 1, true, spare);
    const dumps: DumpStore = {
      backend: 'local',
      ping: () => local.ping(),
      store: (id, file) => {
        seen.push(file);
        return local.store(id, file);
      },
      recycle: (file) => local.recycle(file),
    };
    const metadata = new FlakyMetadata();
    const q = queue({ dumps, metadata, outboxDir: d.outbox });
    const file = liveFile(d.work, 'direct', 3, true);
    q.submit({ id: 'direct', file, sealed: false, record: draft('direct', 3), complete: true });
    await q.idle();
    assert.deepEqual(seen, [file]);
    assert.deepEqual(fs.readdirSync(d.work), []);
    assert.deepEqual(fs.readdirSync(d.dumps), ['direct.jsonl.gz']);
    const spares = fs.readdirSync(spare);
    assert.equal(spares.length, 1, 'the source was handed to the store to reuse, not deleted');
    assert.equal(fs.statSync(path.join(spare, spares[0])).size, 0);
    assert.deepEqual(fs.readdirSync(d.outbox), []);
    assert.equal(metadata.rows.get('direct')!.frameCount, 3);
  });

  it('tells onRecorded once per dump, after the record, while the file still exists', async () => {
    const d = layout();
    const metadata = new FlakyMetadata(1);
    const seen: string[] = [];
    const q = queue({
      dumps: new LocalDumpStore(d.dumps),
      metadata,
      outboxDir: d.outbox,
      onRecorded: async (record, file) => {
        assert.ok(metadata.rows.has(record.id), 'recorded before');
        seen.push(`${record.id} ${fs.readFileSync(file, 'utf8').split('\n')[0]}`);
      },
    });
    q.submit({ id: 'an1', file: liveFile(d.work, 'an1', 2, true), sealed: false, record: draft('an1', 2), complete: true });
    await q.idle();
    assert.deepEqual(seen, ['an1 RTCStatsDump']);
    assert.deepEqual(fs.readdirSync(d.outbox), []);
  });

  it('does not queue the same dump id twice', async () => {
    const d = layout();
    const metadata = new FlakyMetadata();
    const q = queue({ dumps: new LocalDumpStore(d.dumps), metadata, outboxDir: d.outbox });
    const file = liveFile(d.work, 'twice', 2, true);
    q.submit({ id: 'twice', file, sealed: false, record: draft('twice', 2), complete: true });
    q.submit({ id: 'twice', file, sealed: false });
    await q.idle();
    assert.equal(metadata.inserts, 1);
  });

  it('stop() leaves unfinished dumps in work/ and outbox/, and recovery finishes them exactly once', async () => {
    const d = layout();
    const metadata = new FlakyMetadata(1000);
    const q = queue({ dumps: new LocalDumpStore(d.dumps), metadata, outboxDir: d.outbox });
    liveFile(d.work, 'left1', 3, true);
    liveFile(d.work, 'left2', 3, false);
    for (const job of recoveryJobs(d.work, d.outbox)) q.submit(job);
    const waited = q.submitAndWait({ id: 'left1', file: path.join(d.work, 'left1.jsonl'), sealed: false });
    // Both got as far as the (failing) insert: sealed and stored.
    const tried = () => new Set(metadata.groups.flat());
    while (!tried().has('left1') || !tried().has('left2')) await new Promise((r) => setTimeout(r, 5));
    assert.equal(q.stop(), 2);
    await assert.rejects(waited, /kept for recovery/);
    // Both are sealed in the outbox (stored, not recorded): the next run finishes them.
    assert.deepEqual(fs.readdirSync(d.outbox).sort(), ['left1.jsonl', 'left2.jsonl']);
    const real = await openSqliteMetadataStore(path.join(d.base, 'm.sqlite'));
    try {
      const next = queue({ dumps: new LocalDumpStore(d.dumps), metadata: real, outboxDir: d.outbox });
      for (const job of recoveryJobs(d.work, d.outbox)) next.submit(job);
      await next.idle();
      const rows = await real.find({}, 100);
      assert.deepEqual(rows.map((r) => r.id).sort(), ['left1', 'left2']);
      assert.equal(rows.find((r) => r.id === 'left2')!.closeCode, 1006);
      assert.equal(rows.find((r) => r.id === 'left2')!.frameCount, 3);
      assert.deepEqual(fs.readdirSync(d.outbox), []);
      assert.deepEqual(fs.readdirSync(d.dumps).sort(), ['left1.jsonl.gz', 'left2.jsonl.gz']);
    } finally {
      await real.close();
    }
  });

  it('recovery after a crash at each step records every dump exactly once (real local store and SQLite)', async () => {
    const d = layout();
    const metadata = await openSqliteMetadataStore(path.join(d.base, 'm.sqlite'));
    const store = new LocalDumpStore(d.dumps);
    try {
      fs.mkdirSync(d.outbox, { recursive: true });
      // 1: crashed while live. 2: sealed but the live file not yet removed. 3: stored, not recorded.
      // 4: stored and recorded, outbox file not yet removed. 5: an interrupted seal's temp file.
      // 6, 7: sessions that ended normally are stored from work/: 6 stored, not recorded; 7 stored
      // and recorded, not yet removed. Their own close line is kept (no 1006 appended).
      liveFile(d.work, 's1', 4, false);
      liveFile(d.work, 's2', 4, true);
      fs.copyFileSync(path.join(d.work, 's2.jsonl'), path.join(d.outbox, 's2.jsonl'));
      liveFile(d.outbox, 's3', 4, true);
      await store.store('s3', path.join(d.outbox, 's3.jsonl'));
      liveFile(d.outbox, 's4', 4, true);
      const loc = await store.store('s4', path.join(d.outbox, 's4.jsonl'));
      await metadata.insert({ ...draft('s4', 4), location: loc });
      liveFile(d.work, 's5', 4, false);
      fs.writeFileSync(path.join(d.outbox, 's5.jsonl.tmp'), 'half a copy');
      fs.writeFileSync(path.join(d.dumps, 's1.jsonl.gz.partial'), 'half a gzip');
      liveFile(d.work, 's6', 4, true);
      await store.store('s6', path.join(d.work, 's6.jsonl'));
      liveFile(d.work, 's7', 4, true);
      await metadata.insert({ ...draft('s7', 4), location: await store.store('s7', path.join(d.work, 's7.jsonl')) });

      for (let run = 0; run < 2; run++) {
        const q = queue({ dumps: new LocalDumpStore(d.dumps), metadata, outboxDir: d.outbox });
        for (const job of recoveryJobs(d.work, d.outbox)) q.submit(job);
        await q.idle();
      }
      const rows = await metadata.find({}, 100);
      assert.deepEqual(rows.map((r) => r.id).sort(), ['s1', 's2', 's3', 's4', 's5', 's6', 's7']);
      assert.deepEqual(fs.readdirSync(d.work), []);
      assert.deepEqual(fs.readdirSync(d.outbox), []);
      assert.deepEqual(fs.readdirSync(d.dumps).sort(), ['s1', 's2', 's3', 's4', 's5', 's6', 's7'].map((id) => `${id}.jsonl.gz`));
      const s6 = rows.find((r) => r.id === 's6')!;
      assert.deepEqual([s6.closeCode, s6.frameCount, s6.user], [1000, 4, 'u']);
      const s6Lines = zlib.gunzipSync(fs.readFileSync(s6.location)).toString().split('\n');
      assert.deepEqual(s6Lines.slice(-2), ['["close",null,1000,1]', '']);
      const s1 = zlib.gunzipSync(fs.readFileSync(path.join(d.dumps, 's1.jsonl.gz'))).toString().split('\n');
      assert.equal(s1.at(-2), '["close",null,1006,0]');
      assert.equal(s1.length, 2 + 4 + 1 + 1);
    } finally {
      await metadata.close();
    }
  });

  it('a dumps folder that fills up while a large dump is gzipped: nothing is recorded, the dump waits; once there is room, one object and one record (real local store and SQLite)', async (t) => {
    const d = layout();
    fs.mkdirSync(d.dumps);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d.dumps], { stdio: 'pipe' });
    } catch (err) {
      t.skip(`cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); needs root`);
      return;
    }
    const metadata = await openSqliteMetadataStore(path.join(d.base, 'm.sqlite'));
    try {
      // About 4 MB whose gzip is about 2 MB (random ids): the first slices' output fits, a later one does not.
      const frames = Array.from({ length: 40_000 }, (_, i) => `["g","PC_0",{"n":${i},"id":"${crypto.randomBytes(24).toString('hex')}"},1]`);
      const content = header('big') + frames.join('\n') + '\n' + closeLine(1000, 1);
      const file = path.join(d.work, 'big.jsonl');
      fs.writeFileSync(file, content);
      const q = queue({ dumps: new LocalDumpStore(d.dumps), metadata, outboxDir: d.outbox });
      const done = q.submitAndWait({ id: 'big', file, sealed: false, record: draft('big', frames.length), complete: true });
      while (q.stats.failedAttempts < 2) await sleep(5);
      assert.deepEqual(await metadata.find({}, 10), [], 'nothing is recorded while the dump cannot be stored');
      assert.equal(fs.readFileSync(file, 'utf8'), content, 'the dump waits in work/, whole');
      assert.ok(!fs.readdirSync(d.dumps).includes('big.jsonl.gz'));
      execFileSync('mount', ['-o', 'remount,size=16m', d.dumps]);
      const record = await done;
      await q.idle();
      const rows = await metadata.find({}, 10);
      assert.deepEqual(rows.map((r) => [r.id, r.frameCount, r.location]), [['big', frames.length, record.location]]);
      assert.equal(zlib.gunzipSync(fs.readFileSync(record.location)).toString(), content);
      assert.deepEqual(fs.readdirSync(d.dumps), ['big.jsonl.gz']);
      assert.deepEqual(fs.readdirSync(d.work), []);
    } finally {
      await metadata.close();
      execFileSync('umount', [d.dumps]);
    }
  });

  it('records of dumps stored one after another share one commit', async () => {
    const d = layout();
    const dumps = new GatedStore(new LocalDumpStore(d.dumps));
    const metadata = new FlakyMetadata();
    const q = queue({ dumps, metadata, outboxDir: d.outbox, concurrency: 3, groupWaitMs: 1000 });
    const ids = ['t0', 't1', 't2'];
    for (const id of ids) q.submit({ id, file: liveFile(d.work, id, 3, true), sealed: false, record: draft(id, 3), complete: true });
    while (dumps.pending < ids.length) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < ids.length; i++) {
      dumps.openOne();
      // Several turns of the event loop between the stores: each would otherwise commit alone.
      for (let turn = 0; turn < 5; turn++) await new Promise((r) => setImmediate(r));
    }
    await q.idle();
    assert.deepEqual(metadata.groups.map((g) => [...g].sort()), [ids]);
  });

  it('records the dumps stored in the same turn as one group; a failed group retries each record alone, none twice', async () => {
    const d = layout();
    const dumps = new GatedStore(new LocalDumpStore(d.dumps));
    const metadata = new FlakyMetadata(1);
    const q = queue({ dumps, metadata, outboxDir: d.outbox, concurrency: 5 });
    const ids = ['g0', 'g1', 'g2', 'g3', 'g4'];
    for (const id of ids) q.submit({ id, file: liveFile(d.work, id, 3, true), sealed: false, record: draft(id, 3), complete: true });
    while (dumps.pending < ids.length) await new Promise((r) => setTimeout(r, 5));
    dumps.open();
    await q.idle();
    assert.deepEqual([...metadata.groups[0]].sort(), ids, 'one group commit for the five');
    assert.deepEqual(metadata.groups.slice(1).map((g) => g.length), [1, 1, 1, 1, 1], 'then each alone');
    assert.deepEqual(metadata.groups.slice(1).flat().sort(), ids);
    assert.deepEqual([...metadata.rows.keys()].sort(), ids);
    assert.deepEqual(fs.readdirSync(d.work), []);
    assert.equal(q.stats.finalized, 5);
  });

  it('a dump waiting for its record does not hold a slot: the next dump is stored meanwhile', async () => {
    const d = layout();
    const dumps = new FlakyStore(new LocalDumpStore(d.dumps));
    const metadata = new FlakyMetadata();
    let open!: () => void;
    metadata.gate = new Promise((r) => (open = r));
    const q = queue({ dumps, metadata, outboxDir: d.outbox, concurrency: 1 });
    for (const id of ['w0', 'w1']) q.submit({ id, file: liveFile(d.work, id, 3, true), sealed: false, record: draft(id, 3), complete: true });
    // Without the slot released, w1 would wait for w0's record: never stored while the gate is shut.
    const w1 = path.join(d.dumps, 'w1.jsonl.gz');
    for (let i = 0; i < 1000 && !fs.existsSync(w1); i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(fs.readdirSync(d.dumps).sort(), ['w0.jsonl.gz', 'w1.jsonl.gz']);
    assert.equal(metadata.rows.size, 0, 'both stored while the first record waits');
    assert.equal(dumps.maxActive, 1, 'still one store at a time');
    open();
    await q.idle();
    assert.deepEqual([...metadata.rows.keys()].sort(), ['w0', 'w1']);
  });

  it('a record the database refuses does not hold back the others of its group', async () => {
    const d = layout();
    const dumps = new GatedStore(new LocalDumpStore(d.dumps));
    const metadata = new FlakyMetadata();
    metadata.refused.add('p1');
    const q = queue({ dumps, metadata, outboxDir: d.outbox, concurrency: 3 });
    for (const id of ['p0', 'p1', 'p2']) q.submit({ id, file: liveFile(d.work, id, 3, true), sealed: false, record: draft(id, 3), complete: true });
    while (dumps.pending < 3) await new Promise((r) => setTimeout(r, 5));
    dumps.open();
    while (q.stats.finalized < 2) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual([...metadata.rows.keys()].sort(), ['p0', 'p2']);
    assert.ok(metadata.groups.slice(1).every((g) => g.length === 1), 'retried alone');
    assert.ok(q.stats.failedAttempts >= 2, 'the refused record is retried');
    metadata.refused.clear();
    await q.idle();
    assert.deepEqual([...metadata.rows.keys()].sort(), ['p0', 'p1', 'p2']);
  });

  it('retries inserts while another connection holds the SQLite write lock, without stalling the event loop', async () => {
    const d = layout();
    const file = path.join(d.base, 'm.sqlite');
    const metadata = await openSqliteMetadataStore(file);
    const locker = new Database(file);
    try {
      locker.exec('BEGIN IMMEDIATE');
      const q = queue({ dumps: new LocalDumpStore(d.dumps), metadata, outboxDir: d.outbox, retryMs: 20, maxRetryMs: 50 });
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      for (let i = 0; i < 5; i++) {
        const id = `l${i}`;
        q.submit({ id, file: liveFile(d.work, id, 3, true), sealed: false, record: draft(id, 3), complete: true });
      }
      while (q.stats.failedAttempts < 15) await new Promise((r) => setTimeout(r, 10));
      locker.exec('COMMIT');
      await q.idle();
      delay.disable();
      assert.ok(delay.max / 1e6 < MAX_STALL_MS, `event loop stalled ${(delay.max / 1e6).toFixed(1)} ms`);
      assert.equal((await metadata.find({}, 100)).length, 5);
    } finally {
      locker.close();
      await metadata.close();
    }
  });
});
