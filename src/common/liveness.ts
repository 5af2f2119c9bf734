import type { WebSocket } from 'ws';

/**
 * Ping/pong liveness of one socket. While the server itself holds the socket paused (disk
 * backpressure) its pongs cannot be read, so a slow disk is never taken for a dead peer.
 */
export class Liveness {
  private alive = true;

  constructor(
    private readonly ws: Pick<WebSocket, 'ping' | 'terminate'>,
    private readonly pausedByServer: () => boolean,
  ) {}

  /** A pong arrived. */
  answered(): void {
    this.alive = true;
  }

  /** Once per ping interval: false (and terminated) when the previous ping went unanswered. */
  check(): boolean {
    if (this.pausedByServer()) {
      this.alive = true;
      return true;
    }
    if (!this.alive) {
      this.ws.terminate();
      return false;
    }
    this.alive = false;
    this.ws.ping();
    return true;
  }
}
