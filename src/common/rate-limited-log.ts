/**
 * Repeated warnings of one kind (a client retrying a bad token 1000 times) become one line per
 * kind per interval: the first occurrence is written at once, the rest of the interval are
 * counted and summed up in one line when the interval has passed (at the next occurrence or flush).
 */
export class RateLimitedLog {
  private readonly kinds = new Map<string, { windowStart: number; suppressed: number; last: string }>();

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (message: string) => void,
    private readonly now: () => number = Date.now,
    /** Distinct kinds tracked at once; a new kind beyond them is grouped under its `fallback`. */
    private readonly maxKinds = 64,
  ) {}

  /**
   * `kind` groups the lines (e.g. the rejection reason and detail); `message` is written as is.
   * `fallback` (e.g. the reason alone) groups new kinds once `maxKinds` are tracked, so no input
   * can make the number of lines per interval grow without bound.
   */
  warn(kind: string, message: string, fallback = kind): void {
    const t = this.now();
    if (!this.kinds.has(kind) && this.kinds.size >= this.maxKinds) kind = `\u0000${fallback}`;
    const state = this.kinds.get(kind);
    if (state === undefined || t - state.windowStart >= this.intervalMs) {
      if (state !== undefined) this.summarize(state);
      this.kinds.set(kind, { windowStart: t, suppressed: 0, last: message });
      this.emit(message);
      return;
    }
    state.suppressed++;
    state.last = message;
  }

  /** Writes the counts of intervals that have passed (called periodically), or all of them (`all`: at shutdown). */
  flush(all = false): void {
    const t = this.now();
    for (const [kind, state] of this.kinds) {
      if (!all && t - state.windowStart < this.intervalMs) continue;
      this.summarize(state, t);
      this.kinds.delete(kind);
    }
  }

  private summarize(state: { windowStart: number; suppressed: number; last: string }, t = this.now()): void {
    if (state.suppressed === 0) return;
    const seconds = Math.max(1, Math.round(Math.min(t - state.windowStart, this.intervalMs) / 1000));
    this.emit(`${state.last} (repeated ${state.suppressed} more time(s) in ${seconds} s)`);
  }
}
