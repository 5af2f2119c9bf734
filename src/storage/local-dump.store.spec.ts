import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';

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
