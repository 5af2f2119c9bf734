import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { UploadDumpWriter, UploadRejected } from './upload-dump-writer.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-writer-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function writer() {
  return new UploadDumpWriter(path.join(root, `u${n++}.jsonl`), {
    header: (meta) => ({ ...meta, dumpId: 'new-id' }),
    transform: (frame) => frame.toString().replace('10.0.0.1', '10.0.0.x'),
  });
}

/** Feeds the text in small chunks, as a network would. */
async function feed(w: UploadDumpWriter, text: string, size = 7): Promise<void> {
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += size) await w.write(buf.subarray(i, i + size));
}

describe('UploadDumpWriter', () => {
  it('rewrites line 2, transforms every frame, keeps the final close line as it came', async () => {
    const w = writer();
    await feed(w, 'RTCStatsDump\r\n{"url":"/a"}\n[1,"10.0.0.1"]\n["close",null,1000,5]\n[2]\n["close",null,1001,7]\n');
    const dump = await w.end();
    assert.deepEqual(dump, { meta: { url: '/a' }, frames: 3, frameBytes: 14 + 21 + 3, closeCode: 1001 });
    assert.equal(
      fs.readFileSync(w.file, 'utf8'),
      'RTCStatsDump\n{"url":"/a","dumpId":"new-id"}\n[1,"10.0.0.x"]\n["close",null,1000,5]\n[2]\n["close",null,1001,7]\n',
    );
  });

  it('adds a 1005 close line when the upload has none, also without a final newline', async () => {
    const w = writer();
    await feed(w, 'RTCStatsDump\n{}\n[1]\n[2]');
    assert.equal((await w.end()).closeCode, undefined);
    assert.equal(fs.readFileSync(w.file, 'utf8'), 'RTCStatsDump\n{"dumpId":"new-id"}\n[1]\n[2]\n["close",null,1005,0]\n');
  });

  it('refuses a bad line 1 or line 2 (400) and a dump without frames (422)', async () => {
    for (const [text, status] of [
      ['RTCStats\n{}\n[1]\n', 400],
      ['RTCStatsDump\n[]\n[1]\n', 400],
      ['RTCStatsDump\n{"a":\n', 400],
      ['RTCStatsDump\n', 400],
      ['RTCStatsDump\n{}\n', 422],
      ['RTCStatsDump\n{}\n["close",null,1000,1]\n', 422],
    ] as const) {
      const w = writer();
      await assert.rejects(
        (async () => {
          await feed(w, text);
          await w.end();
        })(),
        (err: unknown) => err instanceof UploadRejected && err.status === status,
        text,
      );
      await w.discard();
      assert.equal(fs.existsSync(w.file), false);
    }
  });
});
