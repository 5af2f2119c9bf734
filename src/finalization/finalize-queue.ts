import fs from 'node:fs';
import path from 'node:path';

import { makeDataDir } from '../common/file-modes.js';
import type { DumpRecord, MetadataStore } from '../metadata/metadata.store.js';
import type { DumpStore } from '../storage/dump-store.js';
import { type DumpDraft, type DumpScan, recordFromScan, type SealClose, scanDump, sealDump } from './dump-file.js';

/**
 * A finished dump handed to the queue by any session type (WebSocket, HTTP upload, recovery).
 * `file` is a live file in work/ (sealed into the outbox first unless complete), or a sealed file.
 */
export interface FinalizeJob {
  readonly id: string;
  readonly file: string;
  /** The file already ends with its close line and sits in the outbox. */
  readonly sealed: boolean;
  /** The record as the session knows it; when absent (recovery) it is rebuilt from the file. */
  readonly record?: DumpDraft;
  /**
   * The file ends with its close line and `record` describes it exactly (a session that ended
   * normally): stored from where it is, without a scan or a move to the outbox (after a crash,
   * recovery finds it complete in work/ and seals nothing). Otherwise the counts are taken from
   * the sealed file.
   */
  readonly complete?: boolean;
  /** Close line for an unsealed file; absent after a crash (1006, dated by the file's mtime). */
  readonly close?: SealClose;
}

export interface FinalizeLog {
  /** The per-dump "stored" line; absent when that level is not logged (the line is then not built). */
  log?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Told about each step's outcome (metrics); every method is called outside the hot path. */
export interface FinalizeObserver {
  stored(seconds: number): void;
  storeFailed(): void;
  recorded(seconds: number): void;
  recordFailed(): void;
  /** backend: the dump store's (where the dump now is). */
  finalized(backend: string): void;
  /** backend: the store whose call failed, or `work_files` for the local sealing and clean-up steps. */
  attemptFailed(backend: string): void;
  retryScheduled(backend: string): void;
}

/** Records per group commit at most. */
const MAX_GROUP = 256;
/**
 * How long a stored dump's record waits for the records of the dumps stored after it, to share
 * their commit: in SQLite a commit of one row costs about four times as much CPU per row as one of
 * sixteen (the table's seven index pages are written to the WAL with each commit).
 */
const GROUP_WAIT_MS = 20;

/** The failure label of an attempt that failed outside both stores (sealing, removing the outbox file). */
export const LOCAL_STEP_FAILURE = 'work_files';

export interface FinalizeQueueOptions {
  readonly observer?: FinalizeObserver;
  readonly dumps: DumpStore;
  readonly metadata: MetadataStore;
  readonly outboxDir: string;
  readonly concurrency: number;
  readonly log: FinalizeLog;
  /** First retry delay; doubles per failed attempt up to maxRetryMs. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** How long a record waits for others to share its commit (default GROUP_WAIT_MS). */
  readonly groupWaitMs?: number;
  /**
   * Told once per dump when it is stored and recorded, while its file still exists (analysis
   * forwarding takes its copy here). Must not throw; its outcome never affects the dump.
   */
  readonly onRecorded?: (record: DumpRecord, file: string) => Promise<void>;
}

export interface FinalizeStats {
  /** Waiting for a free slot. */
  readonly queued: number;
  /** Being sealed and stored now (at most `concurrency`), or recorded. */
  readonly running: number;
  /** Failed at least once, waiting for the next attempt. */
  readonly retrying: number;
  readonly finalized: number;
  readonly failedAttempts: number;
  readonly concurrency: number;
}

interface Task {
  job: FinalizeJob;
  file: string;
  sealed: boolean;
  record: DumpDraft | undefined;
  location: string | undefined;
  /** onRecorded was called (a retry of the removal must not call it again). */
  announced: boolean;
  /** Counts against `concurrency` (until its dump is stored). */
  holdsSlot: boolean;
  attempts: number;
  /** The backend whose call failed in the current attempt (metrics label). */
  failedBackend: string | undefined;
  timer: NodeJS.Timeout | undefined;
  waiters: Array<{ resolve: (r: DumpRecord) => void; reject: (e: Error) => void }>;
}

/**
 * The one path from a finished session to a stored, recorded dump: seal into the outbox, store,
 * record, remove. Every step is idempotent (the dump id is the key), so a failed step is retried
 * with backoff from where it stopped and a crash anywhere is finished by recovery, never duplicated.
 * Talks only to the DumpStore and MetadataStore interfaces; at most `concurrency` jobs run at once.
 */
export class FinalizeQueue {
  private readonly tasks = new Map<string, Task>();
  private readonly waiting: Task[] = [];
  private running = 0;
  /** Jobs holding one of the `concurrency` slots. */
  private busy = 0;
  private retrying = 0;
  private finalized = 0;
  private failedAttempts = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  /** Records waiting for the next group commit, and whether one is running. */
  private readonly group: Array<{ record: DumpRecord; resolve: () => void; reject: (e: unknown) => void }> = [];
  private committing = false;
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly groupWaitMs: number;

  constructor(private readonly options: FinalizeQueueOptions) {
    this.retryMs = options.retryMs ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 60_000;
    this.groupWaitMs = options.groupWaitMs ?? GROUP_WAIT_MS;
    makeDataDir(options.outboxDir);
  }

  get stats(): FinalizeStats {
    return {
      queued: this.waiting.length,
      running: this.running,
      retrying: this.retrying,
      finalized: this.finalized,
      failedAttempts: this.failedAttempts,
      concurrency: this.options.concurrency,
    };
  }

  /** Jobs not yet finished (queued, running or waiting to retry). */
  get depth(): number {
    return this.tasks.size;
  }

  /** Queues a job; a job for a dump id already in the queue is not queued twice. Never throws. */
  submit(job: FinalizeJob): void {
    this.enqueue(job);
  }

  /** Queues a job and resolves once its dump is stored and recorded (rejects if the queue stops first). */
  submitAndWait(job: FinalizeJob): Promise<DumpRecord> {
    return new Promise((resolve, reject) => {
      const task = this.enqueue(job);
      if (this.stopped) reject(new Error('shutting down; the dump is kept for recovery'));
      else task.waiters.push({ resolve, reject });
    });
  }

  /** Resolves when no job is left (retries included). */
  idle(): Promise<void> {
    if (this.tasks.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Starts nothing more; jobs not finished stay in work/ or outbox/ for recovery at the next start. */
  stop(): number {
    this.stopped = true;
    const left = this.tasks.size;
    for (const task of this.tasks.values()) {
      clearTimeout(task.timer);
      for (const w of task.waiters.splice(0)) w.reject(new Error('shutting down; the dump is kept for recovery'));
    }
    this.waiting.length = 0;
    this.retrying = 0;
    return left;
  }

  private enqueue(job: FinalizeJob): Task {
    const known = this.tasks.get(job.id);
    if (known !== undefined) return known;
    const task: Task = {
      job,
      file: job.file,
      sealed: job.sealed || job.complete === true,
      record: job.complete === true ? job.record : undefined,
      location: undefined,
      announced: false,
      holdsSlot: false,
      failedBackend: undefined,
      attempts: 0,
      timer: undefined,
      waiters: [],
    };
    this.tasks.set(job.id, task);
    if (this.stopped) return task;
    this.waiting.push(task);
    this.pump();
    return task;
  }

  private pump(): void {
    while (!this.stopped && this.busy < this.options.concurrency && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.running++;
      this.busy++;
      task.holdsSlot = true;
      this.attempt(task).then(
        () => this.succeeded(task),
        (err: unknown) => this.failed(task, err),
      );
    }
  }

  private async attempt(task: Task): Promise<void> {
    const { id } = task.job;
    task.failedBackend = undefined;
    let scan: DumpScan | undefined;
    if (!task.sealed) {
      const target = path.join(this.options.outboxDir, `${id}.jsonl`);
      try {
        scan = await sealDump(task.file, target, task.job.close);
        if (scan.header === undefined || scan.frames === 0) {
          await this.setAside(task, scan);
          return;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (!fs.existsSync(target)) {
          // The live file was never created (the disk refused even the first write).
          this.options.log.error(`Dump ${id}: live file ${task.file} does not exist; nothing was recorded`);
          for (const w of task.waiters.splice(0)) w.reject(new Error('nothing was recorded'));
          return;
        }
      }
      task.file = target;
      task.sealed = true;
    }
    if (task.record === undefined) {
      scan ??= await scanDump(task.file);
      if (scan.header === undefined || scan.frames === 0) {
        await this.setAside(task, scan);
        return;
      }
      const fromFile = recordFromScan(id, scan);
      if (fromFile === undefined) throw new Error(`${task.file} is not a complete dump (no close line)`);
      // What the session knew (claims, exact times) wins; the counts are those of the stored file.
      task.record =
        task.job.record === undefined
          ? fromFile
          : { ...task.job.record, frameCount: fromFile.frameCount, bytes: fromFile.bytes, closeCode: fromFile.closeCode };
    }
    const observer = this.options.observer;
    if (task.location === undefined) {
      const started = performance.now();
      try {
        task.location = await this.options.dumps.store(id, task.file);
      } catch (err) {
        task.failedBackend = this.options.dumps.backend;
        observer?.storeFailed();
        throw err;
      }
      observer?.stored((performance.now() - started) / 1000);
    }
    const record: DumpRecord = { ...task.record, location: task.location };
    // The costly part (gzip, store) is done: the slot goes to the next dump while this one waits
    // for its group commit, so that the dumps stored meanwhile share one.
    this.releaseSlot(task);
    const started = performance.now();
    try {
      // A record that failed before goes alone: a row the database refuses must not fail others.
      await (task.attempts === 0 ? this.recordInGroup(record) : this.options.metadata.insert(record));
    } catch (err) {
      task.failedBackend = this.options.metadata.backend;
      observer?.recordFailed();
      throw err;
    }
    observer?.recorded((performance.now() - started) / 1000);
    if (!task.announced) {
      task.announced = true;
      await this.options.onRecorded?.(record, task.file);
    }
    this.removeSource(task.file);
    for (const w of task.waiters.splice(0)) w.resolve(record);
    this.options.log.log?.(
      `Dump ${id} stored: ${record.frameCount} frames, ${record.bytes} bytes, close code ${record.closeCode}, at ${record.location}`,
    );
  }

  /** Inline: one metadata call of a few microseconds, where the thread pool costs a round trip. */
  private removeSource(file: string): void {
    const { dumps } = this.options;
    if (dumps.recycle !== undefined) {
      dumps.recycle(file);
      return;
    }
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /**
   * A file with no complete frame holds nothing received (the connection died before its first
   * frame was written whole): removed, like a connection that sent nothing. A file without a dump
   * header is not ours to interpret: moved aside, never deleted.
   */
  private async setAside(task: Task, scan: DumpScan): Promise<void> {
    const { id } = task.job;
    if (scan.header !== undefined) {
      await fs.promises.rm(task.file, { force: true });
      this.options.log.warn(`Dump ${id}: no complete frame was recorded; nothing to store`);
    } else {
      const dir = path.join(path.dirname(this.options.outboxDir), 'unrecognized');
      makeDataDir(dir);
      await fs.promises.rename(task.file, path.join(dir, path.basename(task.file)));
      this.options.log.error(`Dump ${id}: not a dump file (no RTCStatsDump header); moved to ${dir}`);
    }
    for (const w of task.waiters.splice(0)) w.reject(new Error('no complete frame to store'));
  }

  /**
   * Group commit: the records that become ready within groupWaitMs of the first are inserted in one
   * transaction (one commit instead of one each); a full group at once. A failed group fails each
   * of its records, which are then retried one by one.
   */
  private recordInGroup(record: DumpRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.group.push({ record, resolve, reject });
      this.scheduleCommit();
    });
  }

  private scheduleCommit(): void {
    // A running commit takes the records that arrive meanwhile when it is done.
    if (this.committing) return;
    if (this.group.length < MAX_GROUP) this.commitTimer ??= setTimeout(() => void this.commit(), this.groupWaitMs);
    else void this.commit();
  }

  private async commit(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    this.committing = true;
    while (this.group.length > 0) {
      const batch = this.group.splice(0, MAX_GROUP);
      try {
        await this.options.metadata.insertMany(batch.map((p) => p.record));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.committing = false;
  }

  private releaseSlot(task: Task): void {
    if (!task.holdsSlot) return;
    task.holdsSlot = false;
    this.busy--;
    this.pump();
  }

  private succeeded(task: Task): void {
    this.running--;
    this.releaseSlot(task);
    this.finalized++;
    this.options.observer?.finalized(this.options.dumps.backend);
    this.tasks.delete(task.job.id);
    this.pump();
    this.checkIdle();
  }

  private failed(task: Task, err: unknown): void {
    this.running--;
    this.releaseSlot(task);
    this.failedAttempts++;
    const backend = task.failedBackend ?? LOCAL_STEP_FAILURE;
    this.options.observer?.attemptFailed(backend);
    task.attempts++;
    const delay = Math.min(this.maxRetryMs, this.retryMs * 2 ** (task.attempts - 1));
    // Jitter spreads the retries of many dumps that failed together (e.g. the store was down).
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    const message = err instanceof Error ? err.message : String(err);
    this.options.log.warn(
      `Dump ${task.job.id}: attempt ${task.attempts} failed (${message}); kept at ${task.file}, retrying in ${wait} ms`,
    );
    if (!this.stopped) {
      this.options.observer?.retryScheduled(backend);
      this.retrying++;
      task.timer = setTimeout(() => {
        this.retrying--;
        task.timer = undefined;
        if (this.stopped) return;
        this.waiting.push(task);
        this.pump();
      }, wait);
    }
    this.pump();
  }

  private checkIdle(): void {
    if (this.tasks.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
