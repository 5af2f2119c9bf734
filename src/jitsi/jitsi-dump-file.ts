import fs from 'node:fs';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import type { LineSink } from './jitsi-session.js';

/**
 * The live dump of one Jitsi session: created at the first line (with the connectionInfo header),
 * appended through a buffered stream. A write error is kept and reported at the end; the lines
 * after it are dropped (the finalizer then keeps the partial file for recovery).
 */
export class JitsiDumpFile implements LineSink {
  private out: fs.WriteStream | null = null;
  private errorValue: Error | undefined;

  constructor(
    readonly file: string,
    private readonly header: string,
    private readonly bufferBytes: number,
    private readonly onError: (err: Error) => void,
  ) {}

  get error(): Error | undefined {
    return this.errorValue;
  }

  write(line: string): boolean {
    if (this.errorValue !== undefined) return true;
    const out = this.out ?? this.open();
    return out.write(`${line}\n`);
  }

  /** Calls fn once the stream has room again. */
  onDrain(fn: () => void): void {
    if (this.out === null || !this.out.writableNeedDrain) fn();
    else this.out.once('drain', fn);
  }

  private open(): fs.WriteStream {
    const out = fs.createWriteStream(this.file, { flags: 'wx', mode: DATA_FILE_MODE, highWaterMark: this.bufferBytes });
    out.on('error', (err) => {
      if (this.errorValue !== undefined) return;
      this.errorValue = err;
      this.onError(err);
    });
    out.write(`${this.header}\n`);
    this.out = out;
    return out;
  }

  /** Ends the file; resolves whether it is complete. */
  finish(): Promise<boolean> {
    const out = this.out;
    if (out === null) return Promise.resolve(false);
    return new Promise((resolve) => {
      if (this.errorValue !== undefined) {
        out.destroy();
        resolve(false);
        return;
      }
      out.once('error', () => resolve(false));
      out.end(() => resolve(this.errorValue === undefined));
    });
  }
}
