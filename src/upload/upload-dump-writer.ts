import fs from 'node:fs';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import { DUMP_MAGIC } from '../finalization/dump-file.js';

/** Why an uploaded file is refused: a bad dump (400) or one with nothing to keep (422). */
export class UploadRejected extends Error {
  constructor(
    readonly status: 400 | 422,
    message: string,
  ) {
    super(message);
  }
}

export interface UploadedDump {
  /** The client's line-2 object, as uploaded. */
  readonly meta: Record<string, unknown>;
  readonly frames: number;
  readonly frameBytes: number;
  /** Close code of the uploaded close line, or undefined when the upload had none. */
  readonly closeCode: number | undefined;
}

const NL = 0x0a;
const MAX_META_LINE = 64 * 1024;
const CLOSE_PREFIX = '["close",null,';

export interface UploadDumpWriterOptions {
  /** Builds line 2 of the stored dump from the uploaded one (dump id, token claims, obfuscation). */
  readonly header: (meta: Record<string, unknown>) => Record<string, unknown>;
  /** Applied to every frame before it is written (IP obfuscation), as on the WebSocket path. */
  readonly transform: ((frame: Buffer) => Buffer | string) | null;
}

/**
 * Turns an uploaded dump, streamed in chunks, into a dump file of ours: line 1 checked, line 2
 * replaced by our header, frames written one by one through the same obfuscation as live frames.
 * A close line is only taken as such when it is the last line; a missing one becomes 1005.
 */
export class UploadDumpWriter {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private line = 0;
  private meta: Record<string, unknown> | undefined;
  private frames = 0;
  private frameBytes = 0;
  /** The previous frame line, held back until we know whether it is the final close line. */
  private pending: Buffer | undefined;
  private readonly out: fs.WriteStream;
  private failed: Error | undefined;

  constructor(
    readonly file: string,
    private readonly options: UploadDumpWriterOptions,
  ) {
    this.out = fs.createWriteStream(file, { flags: 'wx', mode: DATA_FILE_MODE });
    this.out.on('error', (err) => (this.failed ??= err));
  }

  /** Feeds a chunk; resolves when the output can take more (backpressure). */
  async write(chunk: Buffer): Promise<void> {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(NL, pos);
      if (nl === -1) {
        this.keep(chunk.subarray(pos));
        break;
      }
      this.keep(chunk.subarray(pos, nl));
      const line = Buffer.concat(this.carry, this.carryLen);
      this.carry = [];
      this.carryLen = 0;
      this.onLine(line);
      pos = nl + 1;
    }
    if (this.failed !== undefined) throw this.failed;
    if (this.out.writableNeedDrain) await new Promise<void>((r) => this.out.once('drain', () => r()));
  }

  /** Completes the file (synced) and returns what it holds; throws UploadRejected for a bad dump. */
  async end(): Promise<UploadedDump> {
    if (this.carryLen > 0) {
      const line = Buffer.concat(this.carry, this.carryLen);
      this.carry = [];
      this.carryLen = 0;
      this.onLine(line);
    }
    if (this.meta === undefined) throw new UploadRejected(400, 'the file is not an rtcstats dump (line 1 RTCStatsDump, line 2 a JSON object)');
    let closeCode: number | undefined;
    const last = this.pending;
    this.pending = undefined;
    if (last !== undefined) {
      closeCode = closeCodeOf(last);
      if (closeCode === undefined) this.frame(last);
    }
    if (this.frames === 0) throw new UploadRejected(422, 'the dump holds no frames');
    // An uploaded close line is kept as it came; 1005 (no status) stands for a missing one.
    this.out.write(closeCode !== undefined && last !== undefined ? Buffer.concat([last, Buffer.from('\n')]) : '["close",null,1005,0]\n');
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(resolve);
    });
    if (this.failed !== undefined) throw this.failed;
    const handle = await fs.promises.open(this.file, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { meta: this.meta, frames: this.frames, frameBytes: this.frameBytes, closeCode };
  }

  /** Stops writing and removes the file. */
  async discard(): Promise<void> {
    // The file is opened asynchronously: removed before the open completes, it would be created after.
    if (!this.out.closed) {
      const closed = new Promise<void>((resolve) => this.out.once('close', () => resolve()));
      this.out.destroy();
      await closed;
    }
    await fs.promises.rm(this.file, { force: true });
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.line < 2 && this.carryLen + piece.length > MAX_META_LINE) {
      throw new UploadRejected(400, 'the file is not an rtcstats dump (header line too long)');
    }
    this.carry.push(piece);
    this.carryLen += piece.length;
  }

  private onLine(line: Buffer): void {
    this.line++;
    if (this.line === 1) {
      if (line.toString('utf8').replace(/\r$/, '') !== DUMP_MAGIC) throw new UploadRejected(400, 'line 1 is not RTCStatsDump');
      return;
    }
    if (this.line === 2) {
      let meta: unknown;
      try {
        meta = JSON.parse(line.toString('utf8'));
      } catch {
        meta = undefined;
      }
      if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new UploadRejected(400, 'line 2 is not a JSON object');
      this.meta = meta as Record<string, unknown>;
      this.out.write(`${DUMP_MAGIC}\n${JSON.stringify(this.options.header(this.meta))}\n`);
      return;
    }
    if (line.length === 0) return;
    if (this.pending !== undefined) this.frame(this.pending);
    this.pending = line;
  }

  private frame(line: Buffer): void {
    this.frames++;
    this.frameBytes += line.length;
    this.out.write(this.options.transform === null ? line : this.options.transform(line));
    this.out.write('\n');
  }
}

function closeCodeOf(line: Buffer): number | undefined {
  if (line.length > 64 || !line.toString('utf8').startsWith(CLOSE_PREFIX)) return undefined;
  try {
    const parsed: unknown = JSON.parse(line.toString('utf8'));
    return Array.isArray(parsed) && parsed.length === 4 && typeof parsed[2] === 'number' ? parsed[2] : undefined;
  } catch {
    return undefined;
  }
}
