import type { ThrottlerStorage } from '@nestjs/throttler';

import type { Clock } from './clock.js';

interface Window {
  hits: number;
  endsAt: number;
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
 * in-memory storage, but on an injected clock (that one reads Date.now everywhere), so limits
 * are tested by moving the clock, not by sleeping. The first hit opens a window of `ttl` ms; the
 * hit that goes over `limit` blocks the key for `blockDuration` ms; after the block a new window starts.
 */
export class RateWindows implements ThrottlerStorage {
  private readonly windows = new Map<string, Window>();
  private increments = 0;

  constructor(private readonly now: Clock = Date.now) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<RateRecord> {
    const now = this.now();
    if (++this.increments % SWEEP_EVERY === 0) this.sweep(now);
    const id = `${throttlerName}:${key}`;
    let w = this.windows.get(id);
    if (w !== undefined && w.blockedUntil > now) {
      return { totalHits: w.hits, timeToExpire: seconds(w.endsAt - now), isBlocked: true, timeToBlockExpire: seconds(w.blockedUntil - now) };
    }
    if (w === undefined || w.endsAt <= now || w.blockedUntil !== 0) {
      w = { hits: 0, endsAt: now + ttl, blockedUntil: 0 };
      this.windows.set(id, w);
    }
    w.hits++;
    if (w.hits > limit) w.blockedUntil = now + blockDuration;
    const isBlocked = w.blockedUntil > now;
    return { totalHits: w.hits, timeToExpire: seconds(w.endsAt - now), isBlocked, timeToBlockExpire: isBlocked ? seconds(w.blockedUntil - now) : 0 };
  }

  /** Whether `key` is blocked now, and for how many more seconds (0: not blocked). */
  blockedSeconds(key: string, throttlerName: string): number {
    const w = this.windows.get(`${throttlerName}:${key}`);
    return w === undefined ? 0 : seconds(w.blockedUntil - this.now());
  }

  private sweep(now: number): void {
    for (const [id, w] of this.windows) if (w.endsAt <= now && w.blockedUntil <= now) this.windows.delete(id);
  }
}
