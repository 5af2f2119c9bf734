import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';

import { ClusterSupervisor, type SupervisorDeps, type WorkerLike } from './cluster-supervisor.js';

class FakeWorker extends EventEmitter implements WorkerLike {
  readonly signals: string[] = [];
  readonly process: { pid: number; kill(signal: NodeJS.Signals): void };
  constructor(
    readonly slot: number,
    pid: number,
  ) {
    super();
    this.process = { pid, kill: (signal) => this.signals.push(signal) };
  }
  listen(): void {
    this.emit('listening', { port: 8080 });
  }
  die(code: number | null, signal: string | null = null): void {
    this.emit('exit', code, signal);
  }
}

function harness(count: number) {
  const forked: FakeWorker[] = [];
  const timers: Array<{ fn: () => void; ms: number; cleared: boolean }> = [];
  const lines: string[] = [];
  const deps: SupervisorDeps = {
    fork: (slot) => {
      const w = new FakeWorker(slot, 100 + forked.length);
      forked.push(w);
      return w;
    },
    setTimeout: (fn, ms) => {
      timers.push({ fn, ms, cleared: false });
      return timers.length as unknown as NodeJS.Timeout;
    },
    clearTimeout: (t) => {
      timers[(t as unknown as number) - 1].cleared = true;
    },
  };
  const log = { log: (m: string) => lines.push(`log ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
  const supervisor = new ClusterSupervisor(count, log, deps);
  let exitCode: number | undefined;
  void supervisor.run().then((c) => (exitCode = c));
  const live = (slot: number) => forked.filter((w) => w.slot === slot).at(-1)!;
  return { supervisor, forked, timers, lines, live, exit: () => exitCode };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ClusterSupervisor', () => {
  it('forks worker 1 alone, the others once it listens (it migrates and generates the keyring first)', () => {
    const h = harness(3);
    assert.deepEqual(h.forked.map((w) => w.slot), [1]);
    h.live(1).listen();
    assert.deepEqual(h.forked.map((w) => w.slot), [1, 2, 3]);
    h.live(2).listen();
    h.live(3).listen();
    assert.ok(h.lines.includes('log All 3 workers listening on port 8080'));
  });

  it('replaces a worker that dies with one of the same slot, at once, then after a growing delay while it keeps dying', () => {
    const h = harness(2);
    h.live(1).listen();
    h.live(2).listen();
    h.live(2).die(null, 'SIGKILL');
    assert.equal(h.timers.at(-1)!.ms, 0);
    h.timers.at(-1)!.fn();
    assert.deepEqual(h.forked.map((w) => w.slot), [1, 2, 2]);
    // The replacement dies before listening: not a boot failure of the cluster, a crash loop.
    h.live(2).die(1);
    assert.equal(h.timers.at(-1)!.ms, 500);
    h.timers.at(-1)!.fn();
    h.live(2).die(1);
    assert.equal(h.timers.at(-1)!.ms, 1000);
    h.timers.at(-1)!.fn();
    // Listening again resets the delay.
    h.live(2).listen();
    h.live(2).die(null, 'SIGKILL');
    assert.equal(h.timers.at(-1)!.ms, 0);
    assert.equal(h.exit(), undefined, 'the primary keeps running');
  });

  it('drains every worker on stop and exits 0 once all exited 0; a pending replacement is cancelled', async () => {
    const h = harness(2);
    h.live(1).listen();
    h.live(2).listen();
    h.live(1).die(null, 'SIGKILL');
    h.supervisor.stop('SIGTERM');
    assert.equal(h.timers.at(-1)!.cleared, true);
    assert.deepEqual(h.live(2).signals, ['SIGTERM']);
    h.supervisor.stop('SIGINT');
    assert.deepEqual(h.live(2).signals, ['SIGTERM'], 'a second signal does not signal again');
    h.live(2).die(0);
    await tick();
    assert.equal(h.exit(), 0);
    assert.equal(h.forked.length, 2, 'nothing forked after the stop');
  });

  it('exits 1 when a worker ends its drain badly', async () => {
    const h = harness(2);
    h.live(1).listen();
    h.live(2).listen();
    h.supervisor.stop('SIGTERM');
    h.live(1).die(0);
    h.live(2).die(1);
    await tick();
    assert.equal(h.exit(), 1);
  });

  it('stops everything with 1 when a worker fails during the first start', async () => {
    const h = harness(2);
    h.live(1).die(1);
    await tick();
    assert.equal(h.exit(), 1);
    assert.equal(h.forked.length, 1);
  });

  it('forwards SIGHUP to every worker', () => {
    const h = harness(2);
    h.live(1).listen();
    h.supervisor.forward('SIGHUP');
    assert.deepEqual(h.forked.map((w) => w.signals), [['SIGHUP'], ['SIGHUP']]);
  });
});
