import { Injectable } from '@nestjs/common';

/**
 * Set once, at the first instant of a shutdown: from then on new WebSocket upgrades and uploads
 * are refused with 503 and /healthcheck answers 503 `draining`, so load balancers stop sending.
 */
@Injectable()
export class DrainState {
  private startedAt: number | undefined;

  get draining(): boolean {
    return this.startedAt !== undefined;
  }

  /** Returns false when draining had already started. */
  start(now = Date.now()): boolean {
    if (this.startedAt !== undefined) return false;
    this.startedAt = now;
    return true;
  }
}
