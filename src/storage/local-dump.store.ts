import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import { type DumpStore, STORE_GZIP_CHUNK, STORE_READ_CHUNK } from './dump-store.js';

const PARTIAL = '.partial';
/** Dumps up to this size are read and gzipped whole (bounded memory per store), larger ones streamed. */
const WHOLE_FILE_BYTES = 1024 * 1024;
/**
 * Dumps up to this size (most short sessions) are read, gzipped and written on the event loop: a
 * few hundred microseconds at most, far less than the thread-pool round trips they would need
 * (on one core each costs tens of microseconds). The fsync always runs in the pool.
 */
const INLINE_BYTES = 64 * 1024;
/**
 * Read buffers kept for dumps up to WHOLE_FILE_BYTES. A fresh Buffer per dump is garbage outside
 * the JS heap, which V8 collects only after tens of MiB of it pile up: a burst of 50 closes of 1 MB
 * dumps raised peak RSS by about 30 MiB. Reused, it is at most this many MiB, each touched only as
 * far as the largest dumps reach.
 */
const SPARE_READ_BUFFERS = 4;
/** Output chunk of the thread-pool gzip of a dump up to WHOLE_FILE_BYTES. */
const GZIP_CHUNK = 256 * 1024;
/**
 * Emptied source files kept to become temp files. Creating a file costs more than renaming one,
 * far more on ext4 without a journal, where each new inode is searched past every recently deleted
 * one: deleting a source file per dump and creating a temp file per dump made each create walk
 * thousands of them under load.
 */
const MAX_SPARES = 16;
const gzip = promisify(zlib.gzip);
const read = promisify(fs.read);
const write = promisify(fs.write);
const fsync = promisify(fs.fsync);

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

function removeIfPresent(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Reads a whole file of `size` bytes from `fd` into `buf`: inline when small, else in one thread-pool read per chunk. */
async function readAll(fd: number, buf: Buffer, size: number): Promise<Buffer> {
  let done = 0;
  while (done < size) {
    const n = size <= INLINE_BYTES ? fs.readSync(fd, buf, done, size - done, done) : (await read(fd, buf, done, size - done, done)).bytesRead;
    if (n === 0) break; // truncated meanwhile: store what is there
    done += n;
  }
  return buf.subarray(0, done);
}

async function writeAll(fd: number, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    done += data.length <= INLINE_BYTES ? fs.writeSync(fd, data, done) : (await write(fd, data, done)).bytesWritten;
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
  private readonly spareFiles: string[] = [];
  private spareSeq = 0;
  /** Where recycled source files wait to become temp files; undefined: sources are deleted. */
  private spareDir: string | undefined;

  /**
   * `removeStale`: clear temp files of an earlier run at start. Not in a cluster worker, which
   * starts while other workers write theirs; the primary clears them before forking any.
   * `spareDir`: this process's own folder for spare files (emptied at start), on the same file
   * system as `dir` and as the source files.
   */
  constructor(
    private readonly dir: string,
    private readonly gzipLevel = 1,
    removeStale = true,
    spareDir?: string,
  ) {
    makeDataDir(dir);
    if (removeStale) removeStalePartials(dir);
    if (spareDir !== undefined) {
      fs.rmSync(spareDir, { recursive: true, force: true });
      makeDataDir(spareDir);
      this.spareDir = spareDir;
    }
  }

  /** Writes and removes a probe file: the directory exists and takes a write. */
  async ping(): Promise<void> {
    const probe = path.join(this.dir, `.ping-${process.pid}${PARTIAL}`);
    await fs.promises.writeFile(probe, '', { mode: DATA_FILE_MODE });
    await fs.promises.rm(probe, { force: true });
  }

  async store(id: string, file: string): Promise<string> {
    const target = path.join(this.dir, `${id}.jsonl.gz`);
    if (fs.existsSync(target)) return target;
    const temp = `${target}${PARTIAL}`;
    this.takeSpare(temp);
    try {
      // Dumps up to 1 MiB (most sessions): one read, one gzip call, one write, the sync on the same
      // descriptor; each step inline when small, one thread-pool round trip otherwise (the default
      // 16 KiB gzip chunks would take one per chunk). Streams cost more to set up than that.
      const gz = await this.gzipWhole(file);
      if (gz !== undefined) {
        const fd = fs.openSync(temp, 'w', DATA_FILE_MODE);
        try {
          await writeAll(fd, gz);
          await fsync(fd);
        } finally {
          fs.closeSync(fd);
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
      fs.renameSync(temp, target);
    } catch (err) {
      fs.rmSync(temp, { force: true });
      throw err;
    }
    return target;
  }

  /**
   * Moved into the spare folder, then emptied (the stored dump's bytes stay readable nowhere but
   * in its .gz): a crash leaves at most a file there, which the next start removes. Without
   * a spare folder, with enough spares, or when the file has another name, it is deleted.
   */
  recycle(file: string): void {
    if (this.spareDir === undefined || this.spareFiles.length >= MAX_SPARES) {
      removeIfPresent(file);
      return;
    }
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (stat === undefined) return;
    // Another name for the same bytes (analysis forwarding hard-links a stored dump's file) keeps them.
    if (stat.nlink > 1) {
      removeIfPresent(file);
      return;
    }
    const spare = path.join(this.spareDir, `${this.spareSeq++}${PARTIAL}`);
    try {
      fs.renameSync(file, spare);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EXDEV') throw err;
      removeIfPresent(file);
      return;
    }
    try {
      fs.truncateSync(spare, 0);
      // A source of an older run may have another mode; the stored dump must have ours.
      if ((stat.mode & 0o777) !== DATA_FILE_MODE) fs.chmodSync(spare, DATA_FILE_MODE);
    } catch {
      fs.rmSync(spare, { force: true });
      return;
    }
    this.spareFiles.push(spare);
  }

  /** Puts a spare file at `temp`, where the store then writes without creating a file. */
  private takeSpare(temp: string): void {
    const spare = this.spareFiles.pop();
    if (spare === undefined) return;
    try {
      fs.renameSync(spare, temp);
    } catch (err) {
      // Gone (removed by hand): the store creates the file. On another file system: no more spares.
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') return;
      this.spareDir = undefined;
      for (const f of [spare, ...this.spareFiles.splice(0)]) fs.rmSync(f, { force: true });
    }
  }

  /** The gzip of the whole file when it is at most WHOLE_FILE_BYTES; undefined when larger. */
  private async gzipWhole(file: string): Promise<Buffer | undefined> {
    const fd = fs.openSync(file, 'r');
    let buffer: Buffer | undefined;
    try {
      const { size } = fs.fstatSync(fd);
      if (size > WHOLE_FILE_BYTES) return undefined;
      // Small dumps (most of them) get a buffer of their size; larger ones one of the reused buffers.
      buffer = size <= INLINE_BYTES ? Buffer.allocUnsafe(size) : (this.spare.pop() ?? Buffer.allocUnsafeSlow(WHOLE_FILE_BYTES));
      const data = await readAll(fd, buffer, size);
      if (data.length <= INLINE_BYTES) return zlib.gzipSync(data, { level: this.gzipLevel });
      // One output chunk that holds the whole result of a typical dump (level 1 shrinks rtcstats
      // JSON about fourfold): one round trip, where zlib's default 16 KiB chunks take one per chunk.
      return await gzip(data, { level: this.gzipLevel, chunkSize: GZIP_CHUNK });
    } finally {
      fs.closeSync(fd);
      if (buffer !== undefined && buffer.length === WHOLE_FILE_BYTES && this.spare.length < SPARE_READ_BUFFERS) this.spare.push(buffer);
    }
  }
}
