/**
 * RTCSTATS_AUTH_TIMEOUT for every TCP connection: a socket must send its request (the upgrade and
 * its token) before its deadline. One periodic sweep for all sockets rather than a timer and a
 * close listener each, since this runs for every connection.
 */
export class HandshakeDeadlines<S extends { readonly destroyed: boolean }> {
  /** Socket -> deadline, in arrival order (so deadlines only grow along the map). */
  private readonly waiting = new Map<S, number>();

  constructor(
    private readonly timeoutMs: number,
    private readonly onExpired: (socket: S) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** How often sweep() should run: a socket is ended at most a quarter of the timeout (or 1 s) late. */
  get sweepIntervalMs(): number {
    return Math.min(1000, this.timeoutMs / 4);
  }

  get size(): number {
    return this.waiting.size;
  }

  add(socket: S): void {
    this.waiting.set(socket, this.now() + this.timeoutMs);
  }

  /** The request arrived: no deadline any more. */
  done(socket: S): void {
    this.waiting.delete(socket);
  }

  /** Hands every socket past its deadline to onExpired, and forgets closed ones met on the way. */
  sweep(): void {
    const now = this.now();
    for (const [socket, deadline] of this.waiting) {
      if (socket.destroyed) {
        this.waiting.delete(socket);
        continue;
      }
      if (deadline > now) break;
      this.waiting.delete(socket);
      this.onExpired(socket);
    }
  }
}
