/**
 * Sessions a client may resume: a session whose socket went away is parked for the grace period;
 * a reconnect within it claims the session back (same dump, no gap), after it the session ends.
 * Plain TypeScript with injected timers. Keys include the token's identity, so a statsSessionId
 * alone does not let another caller continue someone else's dump.
 */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class ResumeRegistry<S> {
  private readonly entries = new Map<string, { session: S; timer: unknown }>();

  constructor(
    private readonly graceMs: number,
    private readonly timers: Timers,
    private readonly onExpire: (session: S) => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  sessions(): S[] {
    return [...this.entries.values()].map((e) => e.session);
  }

  /** Registers a new, attached session (replacing nothing: the key must be free). */
  add(key: string, session: S): void {
    if (this.entries.has(key)) throw new Error('session key already registered');
    this.entries.set(key, { session, timer: undefined });
  }

  get(key: string): S | undefined {
    return this.entries.get(key)?.session;
  }

  /** Takes the session back for a (new) socket, cancelling its grace timer. */
  claim(key: string): S | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.timer !== undefined) this.timers.clear(e.timer);
    e.timer = undefined;
    return e.session;
  }

  /** The socket went away: the session ends unless claimed within the grace period. */
  park(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined || e.timer !== undefined) return;
    if (this.graceMs === 0) {
      this.entries.delete(key);
      this.onExpire(e.session);
      return;
    }
    e.timer = this.timers.set(() => {
      if (this.entries.get(key) !== e) return;
      this.entries.delete(key);
      this.onExpire(e.session);
    }, this.graceMs);
  }

  /** The session ended for good (conference left, close request, malformed, shutdown). */
  remove(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    if (e.timer !== undefined) this.timers.clear(e.timer);
    this.entries.delete(key);
  }
}
