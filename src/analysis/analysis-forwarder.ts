import fs from 'node:fs';
import path from 'node:path';

import { makeDataDir } from '../common/file-modes.js';
import type { AnalysisConfig } from '../config/app-config.js';
import type { MetadataStore } from '../metadata/metadata.store.js';
import { AnalysisUploadError, uploadForAnalysis } from './analysis-uploader.js';

export interface ForwarderLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface AnalysisForwarderOptions extends AnalysisConfig {
  /** Where dumps wait for their upload (hard links to the live files, so those can go). */
  spoolDir: string;
  /** Upload attempts per dump (the first included). */
  attempts?: number;
  /** Wait before the second attempt; each further one waits 4x longer. */
  backoffMs?: number;
  /** Dumps waiting beyond this are not forwarded (the service is far behind or down). */
  maxPending?: number;
  chunkBytes?: number;
  timeoutMs?: number;
  random?: () => number;
  fetch?: typeof globalThis.fetch;
}

/**
 * Forwards stored dumps to an rtcstats.com-style analysis service, one at a time, off the
 * finalize path. Whatever happens here never touches the stored dump or its record: failures
 * are retried a bounded number of times, then logged and dropped.
 */
export class AnalysisForwarder {
  private readonly queue: { id: string; file: string }[] = [];
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly maxPending: number;

  constructor(
    private readonly options: AnalysisForwarderOptions,
    private readonly metadata: MetadataStore,
    private readonly logger: ForwarderLog,
  ) {
    this.attempts = options.attempts ?? 3;
    this.backoffMs = options.backoffMs ?? 2_000;
    this.maxPending = options.maxPending ?? 1_000;
    // Files of a previous process are not forwarded: their state is unknown.
    fs.rmSync(options.spoolDir, { recursive: true, force: true });
    makeDataDir(options.spoolDir);
  }

  /**
   * Takes the stored dump's live file (the obfuscated dump, exactly what was stored) for
   * forwarding when sampled. Cheap and never throws: the caller may delete `file` afterwards.
   */
  async submit(id: string, file: string): Promise<void> {
    if (this.stopping.signal.aborted) return;
    if ((this.options.random ?? Math.random)() >= this.options.sample) return;
    if (this.queue.length >= this.maxPending) {
      this.logger.warn(`Dump ${id}: not forwarded for analysis, ${this.queue.length} dumps already waiting`);
      return;
    }
    const spooled = path.join(this.options.spoolDir, path.basename(file));
    try {
      await fs.promises.link(file, spooled).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err;
        await fs.promises.copyFile(file, spooled);
      });
    } catch (err) {
      this.logger.warn(`Dump ${id}: not forwarded for analysis (${(err as Error).message})`);
      return;
    }
    this.queue.push({ id, file: spooled });
    this.running ??= this.work().finally(() => (this.running = undefined));
  }

  /** Resolves when nothing is waiting or being sent. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Stops at once: in-flight uploads are aborted, waiting dumps dropped. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.idle();
    fs.rmSync(this.options.spoolDir, { recursive: true, force: true });
  }

  private async work(): Promise<void> {
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      try {
        if (!this.stopping.signal.aborted) await this.forward(next.id, next.file);
      } catch (err) {
        this.logger.error(`Dump ${next.id}: not forwarded for analysis (${(err as Error).message})`);
      } finally {
        await fs.promises.rm(next.file, { force: true });
      }
    }
  }

  private async forward(id: string, file: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const handle = await fs.promises.open(file, 'r');
      try {
        const result = await uploadForAnalysis(handle, id, {
          url: this.options.url,
          token: this.options.token,
          chunkBytes: this.options.chunkBytes,
          timeoutMs: this.options.timeoutMs,
          fetch: this.options.fetch,
          signal: this.stopping.signal,
        });
        try {
          await this.metadata.recordAnalysis(id, result);
        } catch (err) {
          // Not retried: a second upload would analyse the dump twice.
          this.logger.error(`Dump ${id}: analysis received but not recorded (${(err as Error).message})`);
          return;
        }
        this.logger.log(`Dump ${id} forwarded for analysis${result.embedUrl ? `: ${result.embedUrl}` : ''}`);
        return;
      } catch (err) {
        const retriable = !(err instanceof AnalysisUploadError) || err.retriable;
        const last = attempt >= this.attempts || !retriable || this.stopping.signal.aborted;
        const message = (err as Error).message;
        if (last) {
          this.logger.error(`Dump ${id}: forwarding for analysis failed after ${attempt} attempt(s), giving up (${message})`);
          return;
        }
        this.logger.warn(`Dump ${id}: forwarding for analysis failed (attempt ${attempt}/${this.attempts}: ${message}), retrying`);
      } finally {
        await handle.close();
      }
      await this.sleep(this.backoffMs * 4 ** (attempt - 1));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopping.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }
}
