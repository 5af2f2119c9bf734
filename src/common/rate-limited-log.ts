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
  ) {}

  /** `kind` groups the lines (e.g. the rejection reason); `message` is written as is. */
  warn(kind: string, message: string): void {
    const t = this.now();
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

  /** Writes the counts of intervals that have passed (called periodically). */
  flush(): void {
    const t = this.now();
    for (const [kind, state] of this.kinds) {
      if (t - state.windowStart < this.intervalMs) continue;
      this.summarize(state);
      this.kinds.delete(kind);
    }
  }

  private summarize(state: { windowStart: number; suppressed: number; last: string }): void {
    if (state.suppressed === 0) return;
    const seconds = Math.round(this.intervalMs / 1000);
    this.emit(`${state.last} (repeated ${state.suppressed} more time(s) in ${seconds} s)`);
  }
}
