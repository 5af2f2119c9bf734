import { TokenBucket } from './token-bucket.js';

/**
 * What a client may use, per connection and in total. Every value comes from the settings
 * (RTCSTATS_MAX_*); see README "Operating" for what each one protects.
 */
export interface LimitsConfig {
  /** Open WebSocket connections of the process; over it: HTTP 503 before the upgrade. */
  readonly maxConnections: number;
  /** Open connections per client address (after the trusted-proxy rules); over it: HTTP 429. */
  readonly maxConnectionsPerIp: number;
  /** Longest time from the TCP connection to a complete upgrade request (slow handshakes). */
  readonly authTimeoutMs: number;
  /** No frame and no pong for this long: closed with 1001. */
  readonly idleTimeoutMs: number;
  /** Sustained frames per second per connection (burst: FRAME_BURST_SECONDS of it). */
  readonly maxFramesPerSecond: number;
  /** Sustained payload bytes per second per connection (burst: BYTE_BURST_SECONDS of it, at least a largest frame). */
  readonly maxBytesPerSecond: number;
  /** Payload bytes one dump may hold: then closed with 1009 `dump too large`, dump kept. */
  readonly maxDumpBytes: number;
  /** Longest connection (rtcstats) or session (Jitsi): then closed with 1001, dump kept. */
  readonly maxSessionDurationMs: number;
  /** Free bytes on the data disk below which new connections get 503. */
  readonly minFreeDiskBytes: number;
}

/** Bursts cover the big first frames and a client flushing what it buffered during a reconnect. */
export const FRAME_BURST_SECONDS = 10;
export const BYTE_BURST_SECONDS = 10;
/** A resuming Jitsi client resends up to 1000 unacknowledged entries at once: always room for them. */
export const RESEND_ALLOWANCE_FRAMES = 1000;

export type FrameBreach = 'rate limit' | 'dump too large';

export interface FrameLimiterOptions {
  readonly maxFramesPerSecond: number;
  readonly maxBytesPerSecond: number;
  readonly maxDumpBytes: number;
  /** The largest single frame accepted (RTCSTATS_MAX_PAYLOAD): the byte burst always holds one. */
  readonly maxPayload: number;
}

/**
 * The per-frame limits of one connection (or Jitsi session): frame rate, byte rate, dump size.
 * A breach is reported once; the caller closes the connection and keeps what was recorded.
 */
export class FrameLimiter {
  private readonly frames: TokenBucket;
  private readonly bytes: TokenBucket;
  private total = 0;

  constructor(
    private readonly options: FrameLimiterOptions,
    now: number,
  ) {
    this.frames = new TokenBucket(options.maxFramesPerSecond, options.maxFramesPerSecond * FRAME_BURST_SECONDS + RESEND_ALLOWANCE_FRAMES, now);
    this.bytes = new TokenBucket(
      options.maxBytesPerSecond,
      Math.max(options.maxBytesPerSecond * BYTE_BURST_SECONDS, options.maxPayload),
      now,
    );
  }

  /** Accounts one frame of `size` bytes at `now`; the breach, or undefined when within limits. */
  frame(size: number, now: number): FrameBreach | undefined {
    this.total += size;
    if (this.total > this.options.maxDumpBytes) return 'dump too large';
    if (!this.frames.take(1, now) || !this.bytes.take(size, now)) return 'rate limit';
    return undefined;
  }
}

export type Expiry = 'idle timeout' | 'session too long';

/** Whether a connection has outlived its limits: no frame and no pong for the idle timeout, or too long a session. */
export function expiry(now: number, startedAt: number, lastActivityAt: number, limits: Pick<LimitsConfig, 'idleTimeoutMs' | 'maxSessionDurationMs'>): Expiry | undefined {
  if (now - startedAt >= limits.maxSessionDurationMs) return 'session too long';
  if (now - lastActivityAt >= limits.idleTimeoutMs) return 'idle timeout';
  return undefined;
}
