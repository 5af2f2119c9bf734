import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it, mock } from 'node:test';
import zlib from 'node:zlib';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import { LocalDumpStore } from './local-dump.store.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'local-dump-store-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const line = (i: number) => `["getStats","PC_${i % 3}",{"t":${i},"bytesSent":${i * 1234},"id":"${crypto.randomBytes(8).toString('hex')}"},1000]\n`;
/** `size` bytes of dump-like lines (random ids: they compress about threefold at level 1). */
function dumpBytes(size: number): Buffer {
  const parts: string[] = [];
  for (let i = 0, n = 0; n < size; i++) {
    parts.push(line(i));
    n += parts[parts.length - 1].length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** A tmpfs of `size` mounted at a new folder, or the reason it cannot be (not root). */
function mountTmpfs(name: string, size: string): { dir: string; unmount: () => void } | string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); needs root`;
  }
  return { dir, unmount: () => execFileSync('umount', [dir]) };
}

describe('LocalDumpStore', () => {
  it('is idempotent: storing an id twice leaves one object with the latest content', async () => {
    const dir = path.join(root, 'idem');
    const store = new LocalDumpStore(dir);
    const src = path.join(root, 'src-idem');
    fs.writeFileSync(src, 'RTCStatsDump\n{}\n[1]\n');
    const a = await store.store('id1', src);
    const b = await store.store('id1', src);
    assert.equal(a, b);
    assert.deepEqual(fs.readdirSync(dir), ['id1.jsonl.gz']);
    assert.equal(zlib.gunzipSync(fs.readFileSync(a)).toString(), 'RTCStatsDump\n{}\n[1]\n');
  });

  it('stores dumps of every size byte for byte: inline (small), one slice (up to 1 MiB), several slices (larger)', async () => {
    const dir = path.join(root, 'sizes');
    const store = new LocalDumpStore(dir);
    for (const size of [0, 100, 64 * 1024, 64 * 1024 + 1, 700_000, 1024 * 1024, 1024 * 1024 + 1, 2 * 1024 * 1024, 3_000_000]) {
      const bytes = dumpBytes(size);
      const src = path.join(root, `src-${size}`);
      fs.writeFileSync(src, bytes);
      const stored = await store.store(`size-${size}`, src);
      assert.ok(zlib.gunzipSync(fs.readFileSync(stored)).equals(bytes), `${size} bytes`);
    }
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.partial')), []);
  });

  it('reads a large dump in 1 MiB slices through one reused buffer (memory per store is bounded)', async (t) => {
    const dir = path.join(root, 'slices');
    const store = new LocalDumpStore(dir);
    const bytes = dumpBytes(3 * 1024 * 1024 + 5);
    const src = path.join(root, 'src-slices');
    fs.writeFileSync(src, bytes);
    const reads = t.mock.method(fs, 'read');
    const stored = await store.store('slices', src);
    t.mock.restoreAll();
    assert.ok(zlib.gunzipSync(fs.readFileSync(stored)).equals(bytes));
    const args = reads.mock.calls.map((c) => c.arguments as unknown[]);
    const lengths = args.map((a) => a[3] as number);
    assert.deepEqual(lengths, [1024 * 1024, 1024 * 1024, 1024 * 1024, 5]);
    const buffers = new Set(args.map((a) => (a[1] as Buffer).buffer));
    assert.equal(buffers.size, 1, 'every slice goes into the same buffer');
  });

  it('sizes the gzip output chunk to the dump: a mid-size dump gets one chunk that holds its gzip, not the largest chunk', async (t) => {
    const dir = path.join(root, 'chunk');
    const store = new LocalDumpStore(dir);
    const text = Array.from({ length: 6000 }, (_, i) => `["getStats","PC_${i % 3}",{"t":${i},"bytesSent":${i * 1234}},1000]\n`).join('');
    const src = path.join(root, 'src-chunk');
    fs.writeFileSync(src, text);
    const created = t.mock.method(zlib, 'createGzip');
    const stored = await store.store('chunk', src);
    t.mock.restoreAll();
    assert.equal(created.mock.callCount(), 1);
    const { chunkSize } = (created.mock.calls[0].arguments as unknown[])[0] as zlib.ZlibOptions;
    const gzipped = fs.statSync(stored).size;
    assert.ok(text.length > 300_000 && gzipped <= chunkSize! && chunkSize! < 256 * 1024, `${text.length} B, gzip ${gzipped} B, chunk ${chunkSize} B`);
    assert.equal(zlib.gunzipSync(fs.readFileSync(stored)).toString(), text);
  });

  it('a read error in the middle of a large dump fails the store: no .partial, the source intact, the next stores exact', async () => {
    const dir = path.join(root, 'read-error');
    const store = new LocalDumpStore(dir);
    const bytes = dumpBytes(2 * 1024 * 1024 + 100);
    const src = path.join(root, 'src-read-error');
    fs.writeFileSync(src, bytes);
    const original = fs.read;
    let calls = 0;
    const failing = mock.method(fs, 'read', (...args: Parameters<typeof fs.read>) => {
      // The second slice: the first is already in the gzip stream.
      if (++calls === 2) {
        const callback = args[args.length - 1] as (err: NodeJS.ErrnoException) => void;
        process.nextTick(() => callback(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })));
        return;
      }
      return (original as (...a: unknown[]) => void)(...args);
    });
    try {
      await assert.rejects(store.store('re1', src), { code: 'EIO' });
    } finally {
      failing.mock.restore();
    }
    assert.equal(calls, 2);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing partial is left');
    assert.ok(fs.readFileSync(src).equals(bytes), 'the source is kept for the retry');
    // The retry, and another dump through the same (reused) buffer, are stored byte for byte.
    const retried = await store.store('re1', src);
    assert.ok(zlib.gunzipSync(fs.readFileSync(retried)).equals(bytes));
    const other = dumpBytes(1024 * 1024 + 7);
    fs.writeFileSync(src, other);
    assert.ok(zlib.gunzipSync(fs.readFileSync(await store.store('re2', src))).equals(other));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['re1.jsonl.gz', 're2.jsonl.gz']);
  });

  it('a disk that fills up while a large dump is gzipped fails the store with ENOSPC, leaves no .partial, and stores it once there is room', async (t) => {
    const mounted = mountTmpfs('full-dumps', '1m');
    if (typeof mounted === 'string') {
      t.skip(mounted);
      return;
    }
    try {
      const store = new LocalDumpStore(mounted.dir);
      // About 1.3 MB of gzip (random ids compress little): the first slices' output fits, a later one does not.
      const bytes = Buffer.concat([dumpBytes(1024 * 1024), crypto.randomBytes(1024 * 1024), dumpBytes(1024 * 1024)]);
      const src = path.join(root, 'src-full');
      fs.writeFileSync(src, bytes);
      const writes = t.mock.method(fs, 'writev');
      await assert.rejects(store.store('full1', src), { code: 'ENOSPC' });
      assert.ok(writes.mock.calls.length >= 2, 'failed after a slice was written, not at the first write');
      t.mock.restoreAll();
      assert.deepEqual(fs.readdirSync(mounted.dir), [], 'nothing partial is left');
      assert.ok(fs.readFileSync(src).equals(bytes), 'the source is kept for the retry');
      // Room again (a smaller dump of the same id, as after an operator freed space): stored once, exact.
      const smaller = bytes.subarray(0, 1024 * 1024 + 300_000);
      fs.writeFileSync(src, smaller);
      const stored = await store.store('full1', src);
      assert.ok(zlib.gunzipSync(fs.readFileSync(stored)).equals(smaller));
      assert.deepEqual(fs.readdirSync(mounted.dir), ['full1.jsonl.gz']);
    } finally {
      mounted.unmount();
    }
  });

  it('leaves no .partial when the directory becomes unwritable, and works again once it is back', async () => {
    const dir = path.join(root, 'broken');
    const store = new LocalDumpStore(dir);
    const src = path.join(root, 'src-broken');
    fs.writeFileSync(src, 'x\n');
    // As root, permissions do not stop writes: a file where the directory was does.
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'not a directory');
    await assert.rejects(store.store('id2', src), /ENOTDIR/);
    fs.rmSync(dir);
    fs.mkdirSync(dir);
    await assert.rejects(store.store('id2', path.join(root, 'missing-source')), /ENOENT/);
    assert.deepEqual(fs.readdirSync(dir), [], 'a failed store leaves nothing behind');
    await store.store('id2', src);
    assert.deepEqual(fs.readdirSync(dir), ['id2.jsonl.gz']);
  });

  it('stores each dump exactly, whatever ran before or beside it (the read buffers are reused)', async () => {
    const dir = path.join(root, 'reuse');
    const store = new LocalDumpStore(dir);
    const line = (i: number, n: number): string => `[${i},"${String(i % 10).repeat(n)}"]\n`;
    const body = (i: number): string => `RTCStatsDump\n{}\n${Array.from({ length: 40 * (i + 1) }, (_, j) => line(i + j, 97)).join('')}`;
    const write = (name: string, text: string): string => {
      const file = path.join(root, name);
      fs.writeFileSync(file, text);
      return file;
    };
    // Ten at once (more than the spare buffers), sizes from 4 KB to 40 KB, then a short one after
    // the largest: a shared or stale buffer would mix bytes of one dump into another.
    const texts = Array.from({ length: 10 }, (_, i) => body(9 - i));
    const stored = await Promise.all(texts.map((t, i) => store.store(`r${i}`, write(`src-reuse-${i}`, t))));
    stored.forEach((location, i) => assert.equal(zlib.gunzipSync(fs.readFileSync(location)).toString(), texts[i]));
    const short = await store.store('r-short', write('src-reuse-short', 'RTCStatsDump\n{}\n[1]\n'));
    assert.equal(zlib.gunzipSync(fs.readFileSync(short)).toString(), 'RTCStatsDump\n{}\n[1]\n');
    const empty = await store.store('r-empty', write('src-reuse-empty', ''));
    assert.equal(zlib.gunzipSync(fs.readFileSync(empty)).toString(), '');
  });

  it('reuses the emptied file of a recorded dump as a later temp file instead of creating one', async () => {
    const dir = path.join(root, 'recycle');
    const spareDir = path.join(root, 'recycle-spare');
    const store = new LocalDumpStore(dir, 1, true, spareDir);
    const first = path.join(root, 'src-recycle-1');
    fs.writeFileSync(first, 'RTCStatsDump\n{}\n["first dump"]\n', { mode: 0o644 });
    await store.store('rc1', first);
    const inode = fs.statSync(first).ino;
    store.recycle(first);
    assert.equal(fs.existsSync(first), false);
    assert.deepEqual(fs.readdirSync(dir), ['rc1.jsonl.gz']);
    const spares = fs.readdirSync(spareDir);
    assert.equal(spares.length, 1);
    assert.equal(fs.statSync(path.join(spareDir, spares[0])).size, 0, 'the dump is readable only in its .gz');

    const second = path.join(root, 'src-recycle-2');
    fs.writeFileSync(second, 'RTCStatsDump\n{}\n["second dump"]\n');
    const stored = await store.store('rc2', second);
    const stat = fs.statSync(stored);
    assert.equal(stat.ino, inode, 'written into the spare, not a new file');
    assert.equal(stat.mode & 0o777, DATA_FILE_MODE, 'with the data file mode, whatever the source had');
    assert.equal(zlib.gunzipSync(fs.readFileSync(stored)).toString(), 'RTCStatsDump\n{}\n["second dump"]\n');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['rc1.jsonl.gz', 'rc2.jsonl.gz']);
    assert.deepEqual(fs.readdirSync(spareDir), []);
  });

  it('keeps a bounded number of spares (the other sources are deleted), and a restart removes them', () => {
    const dir = path.join(root, 'spares');
    const spareDir = path.join(root, 'spares-spare');
    const store = new LocalDumpStore(dir, 1, true, spareDir);
    const sources = Array.from({ length: 40 }, (_, i) => {
      const file = path.join(root, `src-spare-${i}`);
      fs.writeFileSync(file, `dump ${i}\n`);
      return file;
    });
    for (const file of sources) store.recycle(file);
    assert.ok(sources.every((f) => !fs.existsSync(f)));
    assert.deepEqual(fs.readdirSync(dir), []);
    const spares = fs.readdirSync(spareDir);
    assert.ok(spares.length > 0 && spares.length < sources.length, `${spares.length} spares`);
    assert.ok(spares.every((f) => fs.statSync(path.join(spareDir, f)).size === 0));
    store.recycle(path.join(root, 'src-spare-missing'));
    new LocalDumpStore(dir, 1, true, spareDir);
    assert.deepEqual(fs.readdirSync(spareDir), []);
  });

  it('deletes, never empties, a source that has another name (a hard link keeps its bytes)', () => {
    const dir = path.join(root, 'linked');
    const spareDir = path.join(root, 'linked-spare');
    const store = new LocalDumpStore(dir, 1, true, spareDir);
    const src = path.join(root, 'src-linked');
    const link = path.join(root, 'src-linked-link');
    fs.writeFileSync(src, 'RTCStatsDump\n{}\n["kept"]\n');
    fs.linkSync(src, link);
    store.recycle(src);
    assert.equal(fs.existsSync(src), false);
    assert.equal(fs.readFileSync(link, 'utf8'), 'RTCStatsDump\n{}\n["kept"]\n');
    assert.deepEqual(fs.readdirSync(spareDir), []);
  });

  it('without a spare folder, deletes the sources it is given', () => {
    const dir = path.join(root, 'no-spares');
    const store = new LocalDumpStore(dir);
    const src = path.join(root, 'src-no-spare');
    fs.writeFileSync(src, 'x\n');
    store.recycle(src);
    assert.equal(fs.existsSync(src), false);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('removes temp files a crash left behind when it starts', () => {
    const dir = path.join(root, 'stale');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'id3.jsonl.gz.partial'), 'half');
    fs.writeFileSync(path.join(dir, 'id4.jsonl.gz'), 'kept');
    new LocalDumpStore(dir);
    assert.deepEqual(fs.readdirSync(dir), ['id4.jsonl.gz']);
  });

  it('leaves temp files alone in a cluster worker (another worker may be writing them)', () => {
    const dir = path.join(root, 'worker');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'id5.jsonl.gz.partial'), 'being written');
    new LocalDumpStore(dir, 1, false);
    assert.deepEqual(fs.readdirSync(dir), ['id5.jsonl.gz.partial']);
  });
});
