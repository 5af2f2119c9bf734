import fs from 'node:fs';

import type { WebSocket } from 'ws';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import { Liveness } from '../common/liveness.js';
import {
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_INVALID_PAYLOAD,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_POLICY_VIOLATION,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_UNSUPPORTED_DATA,
} from '../common/protocol.constants.js';
import type { Expiry, FrameBreach, FrameLimiter } from '../limits/limits.js';
import { expiry, type LimitsConfig } from '../limits/limits.js';
import type { DumpRecord } from '../metadata/metadata.store.js';
import type { ConnectionInfo } from './connection-info.js';
import { dumpHeader } from './connection-info.js';

/**
 * The one place a frame may be rewritten before it is written (IP obfuscation).
 * It receives the frame exactly as received and returns what to store.
 */
export type FrameTransform = (frame: Buffer) => Buffer | string;

export interface DumpSessionOptions {
  /** Live dump path (in the work folder); created at the first frame. */
  readonly file: string;
  readonly transform: FrameTransform | null;
  readonly writeBufferBytes: number;
  readonly now: () => number;
  /** Per-frame limits (rate, dump size); undefined: none. */
  readonly limiter?: FrameLimiter;
  /** Told once when a limit closes the session (for the metric and the log). */
  readonly onLimit?: (breach: FrameBreach | Expiry) => void;
}

/** How each limit closes an rtcstats connection (the dump is kept in every case). */
export const LIMIT_CLOSE: Record<FrameBreach | Expiry, number> = {
  'rate limit': CLOSE_POLICY_VIOLATION,
  'dump too large': CLOSE_MESSAGE_TOO_BIG,
  'idle timeout': CLOSE_GOING_AWAY,
  'session too long': CLOSE_GOING_AWAY,
};

export interface SessionResult {
  readonly info: ConnectionInfo;
  readonly file: string;
  readonly endTime: number;
  /** Server time of the last frame (the start time when none came). */
  readonly lastFrameAt: number;
  readonly closeCode: number;
  readonly frameCount: number;
  readonly bytes: number;
  /** False when nothing was written (no frames) or the file could not be written completely. */
  readonly stored: boolean;
  readonly error: Error | undefined;
  /** Extra metadata columns (Jitsi sessions: statsSessionId and identity). */
  readonly extra?: Pick<DumpRecord, 'statsSessionId' | 'conferenceName' | 'displayName' | 'meetingId'>;
}

const NL = Buffer.from('\n');

// Close codes ws sends to the peer for protocol errors (every other WS_ERR_* is a 1002).
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CLOSE_MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CLOSE_INVALID_PAYLOAD,
};

function protocolErrorCode(code: string | undefined): number | undefined {
  if (code === undefined || !code.startsWith('WS_ERR_')) return undefined;
  return WS_ERROR_CLOSE_CODES[code] ?? CLOSE_PROTOCOL_ERROR;
}

/**
 * Records one accepted WebSocket connection into a dump file (format v3).
 * Hot path: one synchronous listener per frame, no parsing, no allocation beyond what
 * the transform needs; the socket is paused while the file stream is over its buffer.
 */
export class DumpSession {
  private out: fs.WriteStream | null = null;
  private frames = 0;
  private bytes = 0;
  private lastFrameAt: number;
  /** Last frame or pong: what the idle timeout measures. */
  private lastActivityAt: number;
  /** Set when a limit closed the session: later frames are not recorded. */
  private limitedBy: FrameBreach | Expiry | undefined;
  private paused = false;
  private closeCode: number | undefined;
  private writeError: Error | undefined;
  private readonly liveness: Liveness;
  /** Resolves when the session has ended and its file is complete (or was never created). */
  readonly done: Promise<SessionResult>;
  private resolveDone!: (r: SessionResult) => void;

  constructor(
    readonly info: ConnectionInfo,
    private readonly ws: WebSocket,
    private readonly options: DumpSessionOptions,
  ) {
    this.lastFrameAt = info.startTime;
    this.lastActivityAt = info.startTime;
    this.liveness = new Liveness(ws, () => this.paused);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.onMessage = this.onMessage.bind(this);
    this.resume = this.resume.bind(this);
  }

  /** Attaches the listeners and lets frames held during the auth decision flow in. */
  start(): void {
    const ws = this.ws;
    ws.on('message', this.onMessage);
    ws.on('pong', () => {
      this.liveness.answered();
      this.lastActivityAt = this.options.now();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      this.closeCode ??= protocolErrorCode(err.code);
    });
    ws.once('close', (code: number) => this.finish(this.closeCode ?? code));
    ws.resume();
  }

  get frameCount(): number {
    return this.frames;
  }

  get byteCount(): number {
    return this.bytes;
  }

  /** Closes the session (1001) when it was idle too long or has lasted too long; true when it did. */
  expire(now: number, limits: Pick<LimitsConfig, 'idleTimeoutMs' | 'maxSessionDurationMs'>): boolean {
    if (this.limitedBy !== undefined) return false;
    const lastActivity = Math.max(this.lastActivityAt, this.lastFrameAt);
    // While the server holds the socket paused (disk backpressure) the client cannot be idle.
    const expired = this.paused ? undefined : expiry(now, this.info.startTime, lastActivity, limits);
    if (expired === undefined) return false;
    this.limit(expired);
    return true;
  }

  private limit(breach: FrameBreach | Expiry): void {
    this.limitedBy = breach;
    this.options.onLimit?.(breach);
    this.close(LIMIT_CLOSE[breach], breach);
  }

  /** Heartbeat: false (and terminated) when the peer did not answer the previous ping; see Liveness. */
  heartbeat(): boolean {
    return this.liveness.check();
  }

  /** Server-initiated close (shutdown, revocation); the dump is finalized normally. */
  close(code: number, reason: string): void {
    this.closeCode ??= code;
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.close(CLOSE_UNSUPPORTED_DATA, 'binary frames are not supported');
      return;
    }
    if (this.writeError !== undefined || this.limitedBy !== undefined) return;
    const now = this.options.now();
    // The frame that breaks a limit is not recorded; everything before it is kept.
    const breach = this.options.limiter?.frame(data.length, now);
    if (breach !== undefined) {
      this.limit(breach);
      return;
    }
    const out = this.out ?? this.open();
    this.frames++;
    this.bytes += data.length;
    this.lastFrameAt = now;
    out.write(this.options.transform === null ? data : this.options.transform(data));
    if (!out.write(NL) && !this.paused) {
      this.paused = true;
      this.ws.pause();
      out.once('drain', this.resume);
    }
  }

  private resume(): void {
    this.paused = false;
    this.ws.resume();
  }

  private open(): fs.WriteStream {
    const out = fs.createWriteStream(this.options.file, {
      flags: 'wx',
      mode: DATA_FILE_MODE,
      highWaterMark: this.options.writeBufferBytes,
    });
    out.on('error', (err) => {
      this.writeError ??= err;
      // A failed stream never drains: read on (frames are dropped now) so the close handshake completes.
      if (this.paused) this.resume();
      this.close(CLOSE_INTERNAL_ERROR, 'cannot record session');
    });
    out.write(dumpHeader(this.info));
    this.out = out;
    return out;
  }

  private finish(code: number): void {
    const endTime = this.options.now();
    const result = (stored: boolean): SessionResult => ({
      info: this.info,
      file: this.options.file,
      endTime,
      lastFrameAt: this.lastFrameAt,
      closeCode: code,
      frameCount: this.frames,
      bytes: this.bytes,
      stored,
      error: this.writeError,
    });
    const out = this.out;
    if (out === null) {
      this.resolveDone(result(false));
      return;
    }
    if (this.writeError !== undefined) {
      this.resolveDone(result(false));
      return;
    }
    out.end(`${JSON.stringify(['close', null, code, endTime - this.lastFrameAt])}\n`);
    out.once('finish', () => this.resolveDone(result(this.writeError === undefined)));
    out.once('error', () => this.resolveDone(result(false)));
  }
}
