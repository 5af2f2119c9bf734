import fs from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import type { DumpStore } from './dump-store.js';

const PARTIAL = '.partial';
/**
 * Dumps up to this size (most short sessions) are read, gzipped and written on the event loop: a
 * few hundred microseconds at most, far less than the thread-pool round trips they would need
 * (on one core each costs tens of microseconds). The fsync always runs in the pool.
 */
const INLINE_BYTES = 64 * 1024;
/**
 * Larger dumps are read in slices of this size into a reused buffer, each handed to one gzip
 * stream in the thread pool, the output written when a slice's worth has gathered and at the end:
 * a dump up to this size takes one read, one gzip call, one write and the sync, a larger one that
 * per MiB, with memory per store bounded whatever the size.
 */
const SLICE_BYTES = 1024 * 1024;
/**
 * Slice buffers kept. A fresh Buffer per dump is garbage outside the JS heap, which V8 collects
 * only after tens of MiB of it pile up: a burst of 50 closes of 1 MB dumps raised peak RSS by about
 * 30 MiB. Reused, it is at most this many MiB, each touched only as far as the largest dumps reach.
 */
const SPARE_READ_BUFFERS = 4;
/**
 * Largest output chunk of the gzip stream: each chunk it fills is one thread-pool round trip, and
 * level 1 shrinks rtcstats JSON about fourfold, so a slice's output is about one chunk (the default
 * 16 KiB would take one per 16 KiB).
 */
const GZIP_CHUNK = 256 * 1024;
/**
 * The output chunk for a dump of `size` bytes: about a third of it, so that a smaller dump's gzip
 * still fits one chunk without allocating a whole GZIP_CHUNK per store. The chunks are garbage
 * outside the JS heap once written; after a burst of closes they are what brings V8's next full
 * collection forward.
 */
function gzipChunk(size: number): number {
  return Math.min(GZIP_CHUNK, Math.ceil(size / 3 / 16384) * 16384);
}
/**
 * Emptied source files kept to become temp files. Creating a file costs more than renaming one,
 * far more on ext4 without a journal, where each new inode is searched past every recently deleted
 * one: deleting a source file per dump and creating a temp file per dump made each create walk
 * thousands of them under load.
 */
const MAX_SPARES = 16;
const fsync = promisify(fs.fsync);

/** One thread-pool read of up to `length` bytes at `position` into the start of `buffer`. */
function read(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buffer, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
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

function removeIfPresent(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Writes all of `parts` at the end of `fd` (writev may write less than asked). */
async function writeAllv(fd: number, parts: Buffer[]): Promise<void> {
  let left = parts.reduce((n, p) => n + p.length, 0);
  while (left > 0) {
    const n = await new Promise<number>((resolve, reject) => fs.writev(fd, parts, (err, written) => (err ? reject(err) : resolve(written))));
    left -= n;
    if (left === 0) break;
    // A regular file takes less only when the disk is full; the next call would fail or loop.
    if (n === 0) throw Object.assign(new Error('no space left for the dump'), { code: 'ENOSPC' });
    // Drop what was written, keep the rest.
    let skip = n;
    while (skip >= parts[0].length) skip -= parts.shift()!.length;
    parts[0] = parts[0].subarray(skip);
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
    let src: number | undefined;
    let out: number | undefined;
    try {
      src = fs.openSync(file, 'r');
      const { size } = fs.fstatSync(src);
      out = fs.openSync(temp, 'w', DATA_FILE_MODE);
      if (size <= INLINE_BYTES) this.gzipInline(src, size, out);
      else await this.gzipSliced(src, size, out);
      await fsync(out);
    } catch (err) {
      fs.rmSync(temp, { force: true });
      throw err;
    } finally {
      if (src !== undefined) fs.closeSync(src);
      if (out !== undefined) fs.closeSync(out);
    }
    fs.renameSync(temp, target);
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

  /** A small file: read, gzipped and written on the event loop. */
  private gzipInline(src: number, size: number, out: number): void {
    const buffer = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(src, buffer, done, size - done, done);
      if (n === 0) break; // truncated meanwhile: store what is there
      done += n;
    }
    const gz = zlib.gzipSync(buffer.subarray(0, done), { level: this.gzipLevel });
    for (let written = 0; written < gz.length; ) written += fs.writeSync(out, gz, written);
  }

  /**
   * A larger file: read slice by slice into a reused buffer (one thread-pool read each), each slice
   * compressed by one gzip stream in the pool, its output written when a slice's worth has gathered
   * and at the end. A stream pipeline (read stream, gzip, write stream, then a sync through another
   * descriptor) cost 15-25 % more CPU than this for 1.5 MB dumps on one core (more and smaller
   * round trips between threads, stream machinery, a fresh buffer per read).
   */
  private async gzipSliced(src: number, size: number, out: number): Promise<void> {
    const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(SLICE_BYTES);
    const gz = zlib.createGzip({ level: this.gzipLevel, chunkSize: gzipChunk(size) });
    let parts: Buffer[] = [];
    let gathered = 0;
    gz.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      gathered += chunk.length;
    });
    // Listens for 'error' from now on; awaited once the last slice is in.
    const ended = finished(gz);
    ended.catch(() => undefined);
    const flush = (): Promise<void> => {
      const ready = parts;
      parts = [];
      gathered = 0;
      return writeAllv(out, ready);
    };
    let reusable = false;
    try {
      for (let pos = 0; ; ) {
        const n = await read(src, buffer, Math.min(SLICE_BYTES, size - pos), pos);
        pos += n;
        // The last slice, or the file was truncated meanwhile: store what is there.
        if (n === 0 || pos >= size) {
          gz.end(buffer.subarray(0, n));
          break;
        }
        // The slice must be consumed before the buffer takes the next one.
        await new Promise<void>((resolve, reject) => gz.write(buffer.subarray(0, n), (err) => (err ? reject(err) : resolve())));
        if (gathered >= SLICE_BYTES) await flush();
      }
      await ended;
      reusable = true;
      await flush();
    } finally {
      gz.destroy();
      // After a failure zlib might still be reading the buffer: it is not handed out again.
      if (reusable && this.spare.length < SPARE_READ_BUFFERS) this.spare.push(buffer);
    }
  }
}
