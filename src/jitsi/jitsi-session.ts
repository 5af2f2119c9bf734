/**
 * One Jitsi stats session (one statsSessionId, one dump), independent of the sockets that carry
 * it: sequence tracking and de-duplication, acknowledgement cadence, identity, and the
 * server-written lines that record each disconnect, reconnect and the end. Plain TypeScript with
 * an injected clock and sink, so resume logic is tested without sockets or files.
 */
import type { Entry } from './jitsi-protocol.js';

/** Where a session's dump lines go (a file in production). */
export interface LineSink {
  /** Writes one line (no newline); false when the sink wants the producer to pause. */
  write(line: string): boolean;
}

export interface AckPolicy {
  /** Acknowledge after this many new entries... */
  readonly everyEntries: number;
  /** ...or when this long has passed since the last acknowledgement with entries unacknowledged. */
  readonly intervalMs: number;
}

/** Identity fields kept in the metadata record (from the client's identity entries). */
export interface JitsiIdentity {
  conferenceName: string | null;
  displayName: string | null;
  meetingId: string | null;
}

export type SessionState = 'attached' | 'detached' | 'ended';

const MAX_IDENTITY_FIELD = 256;

function field(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value.slice(0, MAX_IDENTITY_FIELD) : null;
}

/** The summary written on the session's last line and handed to the finalizer. */
export interface SessionEnd {
  readonly code: number;
  readonly reason: string;
  readonly endTime: number;
  readonly entries: number;
  readonly bytes: number;
}

export class JitsiSession {
  private stateValue: SessionState = 'attached';
  /** Highest sequence number stored (0: none yet). */
  private last = 0;
  private unacked = 0;
  private lastAckAt: number;
  private entries = 0;
  private bytes = 0;
  private duplicates = 0;
  private gaps = 0;
  private disconnects = 0;
  private endValue: SessionEnd | undefined;
  private closeCode: number | undefined;
  readonly identity: JitsiIdentity = { conferenceName: null, displayName: null, meetingId: null };

  constructor(
    readonly statsSessionId: string,
    private readonly sink: LineSink,
    private readonly ack: AckPolicy,
    private readonly now: () => number,
  ) {
    this.lastAckAt = now();
    this.startedAt = this.lastAckAt;
  }

  /** When the session (its dump) began: RTCSTATS_MAX_SESSION_DURATION counts from here. */
  readonly startedAt: number;

  /** Client bytes stored (a plain read: checked per message). */
  get byteCount(): number {
    return this.bytes;
  }

  get entryCount(): number {
    return this.entries;
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** Highest sequence number stored: what a reconnecting client is told it can skip. */
  get lastSeq(): number {
    return this.last;
  }

  /** Close code of the socket that last carried the session (recorded when it is not resumed). */
  get lastCloseCode(): number | undefined {
    return this.closeCode;
  }

  get ended(): SessionEnd | undefined {
    return this.endValue;
  }

  get stats() {
    return { entries: this.entries, bytes: this.bytes, duplicates: this.duplicates, gaps: this.gaps, disconnects: this.disconnects };
  }

  /**
   * Stores one entry unless its sequence number was already stored (a resend after a reconnect).
   * `line` is what to write (already transformed); `size` counts the client's bytes.
   * Returns whether the sink wants a pause, and the sequence number to acknowledge now, if any.
   */
  receive(entry: Entry, line: string, size: number): { duplicate: boolean; pause: boolean; gap: boolean; ack: number | undefined } {
    if (this.stateValue === 'ended') throw new Error(`session ${this.statsSessionId} has ended`);
    const { seq } = entry;
    if (seq !== undefined && seq <= this.last) {
      this.duplicates++;
      return { duplicate: true, pause: false, gap: false, ack: undefined };
    }
    // The first entry of a session may start anywhere (a breakout room continues the numbering).
    const gap = seq !== undefined && this.last !== 0 && seq > this.last + 1;
    if (gap) this.gaps++;
    if (entry.identity !== undefined) this.mergeIdentity(entry.identity);
    const pause = !this.sink.write(line);
    this.entries++;
    this.bytes += size;
    let ack: number | undefined;
    if (seq !== undefined) {
      this.last = seq;
      this.unacked++;
      if (this.unacked >= this.ack.everyEntries) ack = this.acked();
    }
    return { duplicate: false, pause, gap, ack };
  }

  /** The sequence number to acknowledge when the interval has passed with entries unacknowledged. */
  ackDue(): number | undefined {
    if (this.unacked === 0 || this.stateValue !== 'attached') return undefined;
    return this.now() - this.lastAckAt >= this.ack.intervalMs ? this.acked() : undefined;
  }

  private acked(): number {
    this.unacked = 0;
    this.lastAckAt = this.now();
    return this.last;
  }

  private mergeIdentity(value: Record<string, unknown>): void {
    this.identity.conferenceName = field(value.confName) ?? this.identity.conferenceName;
    this.identity.displayName = field(value.displayName) ?? this.identity.displayName;
    this.identity.meetingId = field(value.meetingUniqueId) ?? this.identity.meetingId;
  }

  /** The socket carrying the session went away; the client may resume it. */
  detach(code: number, reason: string): void {
    if (this.stateValue !== 'attached') return;
    this.stateValue = 'detached';
    this.closeCode = code;
    this.disconnects++;
    this.serverLine('disconnect', { code, reason, lastSeq: this.last });
  }

  /**
   * A (new) socket carries the session again. Returns the sequence number for the `sn` greeting;
   * the client resends what follows it. Entries received since the last acknowledgement count as
   * acknowledged by that greeting.
   */
  attach(details: Record<string, unknown>): number {
    if (this.stateValue === 'ended') throw new Error(`session ${this.statsSessionId} has ended`);
    if (this.stateValue === 'attached') {
      // Superseded: the client reconnected before the server saw the old socket go.
      this.disconnects++;
      this.serverLine('disconnect', { code: null, reason: 'superseded by a new connection', lastSeq: this.last });
    }
    this.stateValue = 'attached';
    this.serverLine('reconnect', { ...details, lastSeq: this.last });
    this.unacked = 0;
    this.lastAckAt = this.now();
    return this.last;
  }

  /** Ends the session: writes the last line. Idempotent (the first end wins). */
  end(code: number, reason: string): SessionEnd {
    if (this.endValue !== undefined) return this.endValue;
    this.stateValue = 'ended';
    const endTime = this.now();
    this.serverLine('sessionClose', { code, reason, lastSeq: this.last, ...this.stats });
    this.endValue = { code, reason, endTime, entries: this.entries, bytes: this.bytes };
    return this.endValue;
  }

  private serverLine(method: string, value: Record<string, unknown>): void {
    this.sink.write(JSON.stringify([method, null, value, this.now()]));
  }
}
