import cluster from 'node:cluster';

export interface SupervisorLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Environment variable through which a forked worker learns its slot (see AppConfig.workerSlot). */
export const WORKER_SLOT_ENV = 'RTCSTATS_WORKER_SLOT';

const MAX_RESPAWN_DELAY_MS = 30_000;

/** What the supervisor needs of a cluster worker (node:cluster's Worker has it). */
export interface WorkerLike {
  readonly process: { readonly pid?: number; kill(signal: NodeJS.Signals): unknown };
  once(event: 'listening', listener: (address: { port: number }) => void): unknown;
  once(event: 'exit', listener: (code: number | null, signal: string | null) => void): unknown;
}

export interface SupervisorDeps {
  fork(slot: number): WorkerLike;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout): void;
}

const clusterDeps: SupervisorDeps = {
  fork: (slot) => cluster.fork({ [WORKER_SLOT_ENV]: String(slot) }),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer),
};

/**
 * The cluster primary: forks one worker per slot, replaces a worker that dies, forwards SIGHUP
 * and drains every worker on SIGTERM/SIGINT. It serves no request and touches no dump itself.
 *
 * Slot 1 is forked first and the others once it listens: its boot is the designated step that
 * migrates the metadata schema and generates a missing keyring, so the rest start on both.
 * A slot names the worker's work/ and outbox/ folders; a replacement gets the slot of the dead
 * worker and recovers those folders at its start, after the dead one is gone, so no two processes
 * ever finalize the same file.
 */
export class ClusterSupervisor {
  private readonly workers = new Map<number, WorkerLike>();
  /** Slots whose worker has listened once: a later death is a crash to repair, not a boot failure. */
  private readonly started = new Set<number>();
  private readonly respawns = new Map<number, number>();
  private readonly pending = new Set<NodeJS.Timeout>();
  private stopping = false;
  private failed = false;
  private done!: (code: number) => void;
  private readonly finished = new Promise<number>((resolve) => (this.done = resolve));

  constructor(
    private readonly count: number,
    private readonly log: SupervisorLog,
    private readonly deps: SupervisorDeps = clusterDeps,
  ) {}

  /** Starts the workers; resolves with the primary's exit code once every worker is gone after a stop. */
  run(): Promise<number> {
    this.fork(1);
    return this.finished;
  }

  /** Drains every worker (each closes its sessions with 1001 and finishes its dumps). */
  stop(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.log.warn(`${signal} received again: workers are already draining (RTCSTATS_SHUTDOWN_TIMEOUT bounds it)`);
      return;
    }
    this.stopping = true;
    for (const timer of this.pending) this.deps.clearTimeout(timer);
    this.log.log(`${signal} received: draining ${this.workers.size} worker(s)`);
    for (const worker of this.workers.values()) worker.process.kill('SIGTERM');
    this.finishIfEmpty();
  }

  /** Passes a signal (SIGHUP: reload the keyring) to every worker. */
  forward(signal: NodeJS.Signals): void {
    for (const worker of this.workers.values()) worker.process.kill(signal);
  }

  private fork(slot: number): void {
    const worker = this.deps.fork(slot);
    this.workers.set(slot, worker);
    worker.once('listening', (address) => {
      this.respawns.delete(slot);
      const first = !this.started.has(slot);
      this.started.add(slot);
      this.log.log(`Worker ${slot} (pid ${worker.process.pid}) listening`);
      if (first && slot === 1 && !this.stopping) for (let s = 2; s <= this.count; s++) this.fork(s);
      if (first && this.started.size === this.count) {
        this.log.log(`All ${this.count} workers listening on port ${address.port}`);
      }
    });
    worker.once('exit', (code, signal) => this.onExit(slot, worker, code, signal));
  }

  private onExit(slot: number, worker: WorkerLike, code: number | null, signal: string | null): void {
    if (this.workers.get(slot) === worker) this.workers.delete(slot);
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    if (this.stopping) {
      if (code !== 0) {
        this.failed = true;
        this.log.error(`Worker ${slot} (pid ${worker.process.pid}) ended its drain with ${how}`);
      }
      this.finishIfEmpty();
      return;
    }
    if (!this.started.has(slot)) {
      // It never listened: a bad setting or an unusable data directory, which a new fork repeats.
      this.log.error(`Worker ${slot} (pid ${worker.process.pid}) exited during startup with ${how}: stopping`);
      this.failed = true;
      this.stop('SIGTERM');
      return;
    }
    const attempt = (this.respawns.get(slot) ?? 0) + 1;
    this.respawns.set(slot, attempt);
    // Immediately the first time; a worker that keeps dying waits longer each time.
    const delay = attempt === 1 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 500 * 2 ** (attempt - 2));
    this.log.warn(
      `Worker ${slot} (pid ${worker.process.pid}) died with ${how}: starting a replacement` +
        `${delay > 0 ? ` in ${delay} ms` : ''}, which recovers its live dumps`,
    );
    const timer = this.deps.setTimeout(() => {
      this.pending.delete(timer);
      this.fork(slot);
    }, delay);
    this.pending.add(timer);
  }

  private finishIfEmpty(): void {
    if (this.stopping && this.workers.size === 0) this.done(this.failed ? 1 : 0);
  }
}
