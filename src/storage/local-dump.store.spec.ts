import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import { LocalDumpStore } from './local-dump.store.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'local-dump-store-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

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

  it('stores dumps of every size byte for byte: inline (small), one thread-pool gzip (up to 1 MiB), streamed (larger)', async () => {
    const dir = path.join(root, 'sizes');
    const store = new LocalDumpStore(dir);
    const line = (i: number) => `["getStats","PC_${i % 3}",{"t":${i},"bytesSent":${i * 1234},"id":"${crypto.randomBytes(8).toString('hex')}"},1000]\n`;
    for (const size of [0, 100, 64 * 1024, 64 * 1024 + 1, 700_000, 1024 * 1024, 1024 * 1024 + 1, 3_000_000]) {
      let text = '';
      for (let i = 0; text.length < size; i++) text += line(i);
      const bytes = Buffer.from(text).subarray(0, size);
      const src = path.join(root, `src-${size}`);
      fs.writeFileSync(src, bytes);
      const stored = await store.store(`size-${size}`, src);
      assert.ok(zlib.gunzipSync(fs.readFileSync(stored)).equals(bytes), `${size} bytes`);
    }
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.partial')), []);
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
