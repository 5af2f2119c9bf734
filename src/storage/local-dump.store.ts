import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import { type DumpStore, STORE_GZIP_CHUNK, STORE_READ_CHUNK } from './dump-store.js';

const PARTIAL = '.partial';
/** Dumps up to this size are read and gzipped whole (bounded memory per store), larger ones streamed. */
const WHOLE_FILE_BYTES = 1024 * 1024;
/**
 * Read buffers kept for the whole-file path. A fresh Buffer per dump is garbage outside the JS
 * heap, which V8 collects only after tens of MiB of it pile up: a burst of 50 closes of 1 MB dumps
 * raised peak RSS by about 30 MiB. Reused, it is at most this many MiB, touched only as far as the
 * largest dumps reach.
 */
const SPARE_READ_BUFFERS = 4;
/** zlib's default output chunk, the size for short dumps. */
const MIN_GZIP_CHUNK = 16 * 1024;

async function writeAll(handle: fs.promises.FileHandle, chunk: Buffer): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
}

/**
 * A crash mid-store leaves a temp file; its source is still in work/ or outbox/ and is stored
 * again (over the same temp name), so a leftover is only clutter. Call while nothing stores here.
 */
export function removeStalePartials(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(PARTIAL)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Keeps finished dumps as `<dir>/<id>.jsonl.gz`, written to a temp name, synced, then renamed.
 * Idempotent per id: the rename is atomic, so an existing target is a complete earlier store and
 * is not written again.
 */
export class LocalDumpStore implements DumpStore {
  readonly backend = 'local';
  private readonly spare: Buffer[] = [];

  /**
   * `removeStale`: clear temp files of an earlier run at start. Not in a cluster worker, which
   * starts while other workers write theirs; the primary clears them before forking any.
   */
  constructor(
    private readonly dir: string,
    private readonly gzipLevel = 1,
    removeStale = true,
  ) {
    makeDataDir(dir);
    if (removeStale) removeStalePartials(dir);
  }

  /** Writes and removes a probe file: the directory exists and takes a write. */
  async ping(): Promise<void> {
    const probe = path.join(this.dir, `.ping-${process.pid}${PARTIAL}`);
    await fs.promises.writeFile(probe, '', { mode: DATA_FILE_MODE });
    await fs.promises.rm(probe, { force: true });
  }

  async store(id: string, file: string): Promise<string> {
    const target = path.join(this.dir, `${id}.jsonl.gz`);
    const exists = await fs.promises.access(target).then(
      () => true,
      () => false,
    );
    if (exists) return target;
    const temp = `${target}${PARTIAL}`;
    try {
      const { size } = await fs.promises.stat(file);
      if (size <= WHOLE_FILE_BYTES) {
        // Small dumps (most sessions): one read, one gzip call, one write, the sync on the same
        // handle; three streams cost more to set up than gzipping a short dump.
        const gz = await this.gzipWhole(file, size);
        const handle = await fs.promises.open(temp, 'w', DATA_FILE_MODE);
        try {
          for (const chunk of gz) await writeAll(handle, chunk);
          await handle.sync();
        } finally {
          await handle.close();
        }
      } else {
        const out = fs.createWriteStream(temp, { flags: 'w', mode: DATA_FILE_MODE });
        await pipeline(
          fs.createReadStream(file, { highWaterMark: STORE_READ_CHUNK }),
          zlib.createGzip({ level: this.gzipLevel, chunkSize: STORE_GZIP_CHUNK }),
          out,
        );
        const handle = await fs.promises.open(temp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await fs.promises.rename(temp, target);
    } catch (err) {
      await fs.promises.rm(temp, { force: true });
      throw err;
    }
    return target;
  }

  /** gzip of a small file, read into a reused buffer (each one serves one store at a time). */
  private async gzipWhole(file: string, size: number): Promise<Buffer[]> {
    const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(WHOLE_FILE_BYTES);
    try {
      const handle = await fs.promises.open(file, 'r');
      let length = 0;
      try {
        for (;;) {
          const { bytesRead } = await handle.read(buffer, length, size - length, length);
          if (bytesRead === 0) break;
          length += bytesRead;
          if (length === size) break;
        }
      } finally {
        await handle.close();
      }
      // The compressed chunks as zlib made them (up to STORE_GZIP_CHUNK each): zlib.gzip would copy them
      // into one more Buffer, doubling the garbage a burst of stores leaves for the GC.
      const chunks: Buffer[] = [];
      // No larger than the dump: most are a few KB, and each chunk is allocated whole.
      const chunkSize = Math.min(STORE_GZIP_CHUNK, Math.max(MIN_GZIP_CHUNK, length));
      const deflate = zlib.createGzip({ level: this.gzipLevel, chunkSize });
      deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
      await new Promise<void>((resolve, reject) => {
        deflate.once('end', resolve);
        deflate.once('error', reject);
        deflate.end(buffer.subarray(0, length));
      });
      return chunks;
    } finally {
      if (this.spare.length < SPARE_READ_BUFFERS) this.spare.push(buffer);
    }
  }
}
