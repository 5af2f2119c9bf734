import type { ThrottlerStorage } from '@nestjs/throttler';

import type { Clock } from './clock.js';

interface Entry {
  /** Hit windows per throttler name. */
  windows: Map<string, { hits: number; endsAt: number }>;
  /** A block covers the key for every throttler name (as in @nestjs/throttler's storage). */
  blockedUntil: number;
}

interface RateRecord {
  totalHits: number;
  timeToExpire: number;
  isBlocked: boolean;
  timeToBlockExpire: number;
}

const SWEEP_EVERY = 1024;
const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Fixed-window hit counters with blocking, the storage behind the per-API-key limit of
 * POST /tokens and the per-IP limit of failed API keys. Same contract as @nestjs/throttler's
 * in-memory storage (hits counted per key and throttler name, a block applies to the key under
 * every name), but on an injected clock, as that one reads Date.now everywhere: limits are tested
 * by moving the clock, not by sleeping. The first hit opens a window of `ttl` ms; the hit that goes
 * over `limit` blocks the key for `blockDuration` ms; when the block ends, the key's counts start over.
 */
export class RateWindows implements ThrottlerStorage {
  private readonly entries = new Map<string, Entry>();
  private increments = 0;

  constructor(private readonly now: Clock = Date.now) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<RateRecord> {
    const now = this.now();
    if (++this.increments % SWEEP_EVERY === 0) this.sweep(now);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { windows: new Map(), blockedUntil: 0 };
      this.entries.set(key, entry);
    }
    let w = entry.windows.get(throttlerName);
    if (entry.blockedUntil > now) {
      const left = w === undefined ? 0 : w.endsAt - now;
      return { totalHits: w?.hits ?? 0, timeToExpire: seconds(left), isBlocked: true, timeToBlockExpire: seconds(entry.blockedUntil - now) };
    }
    if (entry.blockedUntil !== 0) {
      entry.blockedUntil = 0;
      entry.windows.clear();
      w = undefined;
    }
    if (w === undefined || w.endsAt <= now) {
      w = { hits: 0, endsAt: now + ttl };
      entry.windows.set(throttlerName, w);
    }
    w.hits++;
    if (w.hits > limit) entry.blockedUntil = now + blockDuration;
    const isBlocked = entry.blockedUntil > now;
    return { totalHits: w.hits, timeToExpire: seconds(w.endsAt - now), isBlocked, timeToBlockExpire: isBlocked ? seconds(entry.blockedUntil - now) : 0 };
  }

  private sweep(now: number): void {
    for (const [key, e] of this.entries) {
      if (e.blockedUntil > now) continue;
      for (const [name, w] of e.windows) if (w.endsAt <= now) e.windows.delete(name);
      if (e.windows.size === 0) this.entries.delete(key);
    }
  }
}
