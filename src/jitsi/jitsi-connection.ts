/**
 * One WebSocket of a Jitsi client: greets it, routes each message to the session its
 * statsSessionId names (several per socket, each isolated), acknowledges entries, and on close
 * parks its sessions for resume. No Nest imports: the host (JitsiIngestion) supplies the context.
 */
import type { WebSocket } from 'ws';

import { Liveness } from '../common/liveness.js';
import type { Expiry, FrameBreach, FrameLimiter } from '../limits/limits.js';

import {
  CLOSE_CONFERENCE_LEFT,
  CLOSE_DUMP_ERROR,
  CLOSE_NORMAL,
  isBrowserFlavour,
  parseJitsiMessage,
  snMessage,
} from './jitsi-protocol.js';
import type { JitsiDumpFile } from './jitsi-dump-file.js';
import type { JitsiSession } from './jitsi-session.js';
import type { ResumeRegistry } from './resume-registry.js';

/** A session and where its dump goes; `owner` is the socket currently carrying it. */
export interface SessionHandle {
  readonly key: string;
  readonly session: JitsiSession;
  readonly file: JitsiDumpFile;
  owner: JitsiConnection | null;
  /** The dump's id: named in every log line about the session (the logger makes it a field). */
  readonly dumpId?: string;
}

/** ` (dump <id>)` for a log line about a session. */
export function dumpNote(handle: SessionHandle | undefined): string {
  return handle?.dumpId === undefined ? '' : ` (dump ${handle.dumpId})`;
}

export interface JitsiLog {
  log(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface JitsiContext {
  readonly registry: ResumeRegistry<SessionHandle>;
  /** Creates, registers and returns a new session owned by conn. */
  create(statsSessionId: string, conn: JitsiConnection): SessionHandle;
  /** Ends a session for good and hands its dump to the finalizer. */
  end(handle: SessionHandle, code: number, reason: string): void;
  /** IP obfuscation of one dump line (`[method, pcId, value, ...]`), or null when off. */
  readonly transform: ((line: string) => string) | null;
  readonly log: JitsiLog;
  /** Per-connection and per-session limits; undefined: none. */
  readonly limits?: JitsiLimits;
}

export interface JitsiLimits {
  /** Message and byte rate of one socket (the dump size is counted per session, below). */
  limiter(now: number): FrameLimiter;
  readonly maxDumpBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxSessionDurationMs: number;
  readonly now: () => number;
  /** A limit was hit: the host ends the sessions concerned and closes the socket as the flavour needs. */
  hit(conn: JitsiConnection, breach: FrameBreach | Expiry, session?: SessionHandle): void;
}

/** Per-socket limit: JVB sends one session per conference on one socket; browsers use one or two. */
export const MAX_SESSIONS_PER_CONNECTION = 256;

export interface ConnectionParams {
  readonly id: string;
  readonly protocol: string;
  /** The token's identity (kid and claims): part of every session key. */
  readonly identityKey: string;
  readonly kid: string | null;
  /** statsSessionId from the URL: the session a reconnecting browser client resumes. */
  readonly statsSessionId: string | undefined;
  /** Recorded on the session's reconnect line (no token in it). */
  readonly details: Record<string, unknown>;
  /**
   * The connection's token(s). Jitsi Meet copies its whole config, rtcstatsEndpoint and so the
   * token included, into the identity entry: any occurrence in an entry is masked before storing.
   */
  readonly secrets: readonly string[];
}

/** Replaces each occurrence of a secret by "obfuscated" (a scan per line; a split only on a hit). */
export function maskSecrets(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const s of secrets) if (s.length >= 8 && out.includes(s)) out = out.split(s).join('obfuscated');
  return out;
}

export class JitsiConnection {
  readonly sessions = new Map<string, SessionHandle>();
  /** statsSessionIds ended on this socket (malformed, close request): later messages are dropped. */
  private readonly endedIds = new Set<string>();
  private readonly browser: boolean;
  private pauses = 0;
  private readonly liveness: Liveness;
  private invalidLogged = false;
  private closed = false;
  private readonly limiter: FrameLimiter | undefined;
  /** Last message or pong: what the idle timeout measures. */
  private lastActivityAt: number;
  private limited = false;

  constructor(
    private readonly ws: WebSocket,
    readonly params: ConnectionParams,
    private readonly ctx: JitsiContext,
  ) {
    this.browser = isBrowserFlavour(params.protocol);
    this.onMessage = this.onMessage.bind(this);
    const now = ctx.limits?.now() ?? 0;
    this.limiter = ctx.limits?.limiter(now);
    this.lastActivityAt = now;
    this.liveness = new Liveness(ws, () => this.pauses > 0);
  }

  get kid(): string | null {
    return this.params.kid;
  }

  /** Attaches listeners and greets the client: it sends nothing before the `sn` greeting. */
  start(): void {
    const ws = this.ws;
    ws.on('message', this.onMessage);
    ws.on('pong', () => {
      this.liveness.answered();
      if (this.ctx.limits !== undefined) this.lastActivityAt = this.ctx.limits.now();
    });
    ws.once('close', (code: number, reason: Buffer) => this.onClose(code, reason.toString('utf8').slice(0, 100)));
    let greet = 0;
    const id = this.params.statsSessionId;
    if (id !== undefined) {
      const handle = this.ctx.registry.claim(this.key(id));
      if (handle !== undefined) {
        greet = this.adopt(handle);
        this.ctx.log.log(`Jitsi session ${id} resumed on connection ${this.params.id} after seq ${greet}${dumpNote(handle)}`);
      }
    }
    if (this.browser) ws.send(snMessage(greet, true));
    ws.resume();
  }

  private key(statsSessionId: string): string {
    return `${this.params.identityKey}\n${statsSessionId}`;
  }

  /** Takes a session over from a parked state or from a socket that has not noticed it is dead. */
  private adopt(handle: SessionHandle): number {
    if (handle.owner !== null && handle.owner !== this) handle.owner.sessions.delete(handle.session.statsSessionId);
    handle.owner = this;
    this.sessions.set(handle.session.statsSessionId, handle);
    return handle.session.attach(this.params.details);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    try {
      this.route(data, isBinary);
    } catch (err) {
      // A listener that throws would take the process down: no client input may do that.
      this.ctx.log.warn(`Jitsi connection ${this.params.id}: message dropped (${(err as Error).message})`);
    }
  }

  private route(data: Buffer, isBinary: boolean): void {
    if (this.limited) return;
    const limits = this.ctx.limits;
    if (limits !== undefined) {
      const now = limits.now();
      this.lastActivityAt = now;
      const breach = this.limiter!.frame(data.length, now);
      if (breach !== undefined) {
        this.limited = true;
        limits.hit(this, breach);
        return;
      }
    }
    if (isBinary) {
      this.invalid('binary frame');
      return;
    }
    const text = data.toString('utf8');
    const msg = parseJitsiMessage(text, !this.browser);
    switch (msg.kind) {
      case 'invalid':
        this.invalid(msg.problem);
        return;
      case 'keepalive':
        return;
      case 'unknown':
        this.ctx.log.debug(`Jitsi session ${msg.statsSessionId}: ignored message of unknown type "${msg.type}"${dumpNote(this.sessions.get(msg.statsSessionId))}`);
        return;
      case 'close': {
        // Also a parked session: a client may reconnect only to say it is done.
        const handle = this.sessions.get(msg.statsSessionId) ?? this.ctx.registry.claim(this.key(msg.statsSessionId));
        this.endedIds.add(msg.statsSessionId);
        if (handle !== undefined) this.ctx.end(handle, CLOSE_NORMAL, 'close requested');
        return;
      }
      case 'malformed': {
        if (this.endedIds.has(msg.statsSessionId)) return;
        this.endedIds.add(msg.statsSessionId);
        const handle = this.sessions.get(msg.statsSessionId);
        this.ctx.log.warn(`Jitsi session ${msg.statsSessionId} ended: malformed message (${msg.problem}); the connection and its other sessions go on${dumpNote(handle)}`);
        if (handle !== undefined) this.ctx.end(handle, CLOSE_DUMP_ERROR, `malformed message: ${msg.problem}`);
        return;
      }
      default:
        break;
    }
    if (this.endedIds.has(msg.statsSessionId)) return;
    const handle = this.sessions.get(msg.statsSessionId) ?? this.open(msg.statsSessionId);
    if (handle === undefined) return;
    const unmasked = maskSecrets(msg.line, this.params.secrets);
    const line = this.ctx.transform === null ? unmasked : this.ctx.transform(unmasked);
    const r = handle.session.receive(msg.entry, line, data.length);
    if (limits !== undefined && handle.session.byteCount > limits.maxDumpBytes) {
      this.limited = true;
      limits.hit(this, 'dump too large', handle);
      return;
    }
    if (r.gap) this.ctx.log.debug(`Jitsi session ${msg.statsSessionId}: entries missing before seq ${msg.entry.seq}${dumpNote(handle)}`);
    if (r.ack !== undefined && this.browser) this.ws.send(snMessage(r.ack, false));
    if (r.pause) {
      this.pauses++;
      if (this.pauses === 1) this.ws.pause();
      handle.file.onDrain(() => {
        this.pauses--;
        if (this.pauses === 0 && !this.closed) this.ws.resume();
      });
    }
  }

  private open(statsSessionId: string): SessionHandle | undefined {
    const key = this.key(statsSessionId);
    const known = this.ctx.registry.get(key);
    if (known !== undefined && known.owner === null) {
      this.adopt(this.ctx.registry.claim(key)!);
      return known;
    }
    if (known !== undefined) {
      // Carried by another live socket (it took the session over on reconnect): not stolen back.
      this.endedIds.add(statsSessionId);
      this.ctx.log.warn(`Jitsi connection ${this.params.id}: session ${statsSessionId} is carried by another connection; its messages here are dropped${dumpNote(known)}`);
      return undefined;
    }
    if (this.sessions.size >= MAX_SESSIONS_PER_CONNECTION) {
      this.endedIds.add(statsSessionId);
      this.ctx.log.warn(`Jitsi connection ${this.params.id}: more than ${MAX_SESSIONS_PER_CONNECTION} sessions; session ${statsSessionId} not recorded`);
      return undefined;
    }
    const handle = this.ctx.create(statsSessionId, this);
    this.sessions.set(statsSessionId, handle);
    return handle;
  }

  private invalid(problem: string): void {
    // Unattributable messages are dropped; logged once per connection so a noisy client cannot flood the log.
    if (this.invalidLogged) return;
    this.invalidLogged = true;
    this.ctx.log.warn(`Jitsi connection ${this.params.id}: dropped a message that names no session (${problem})`);
  }

  /** Sends the periodic acknowledgements that are due; applies the idle and session-duration limits. */
  tick(): void {
    if (this.closed) return;
    const limits = this.ctx.limits;
    if (limits !== undefined && !this.limited) {
      const now = limits.now();
      for (const handle of [...this.sessions.values()]) {
        if (now - handle.session.startedAt >= limits.maxSessionDurationMs) limits.hit(this, 'session too long', handle);
      }
      // While the server holds the socket paused (disk backpressure) the client cannot be idle.
      if (this.pauses === 0 && now - this.lastActivityAt >= limits.idleTimeoutMs) {
        this.limited = true;
        limits.hit(this, 'idle timeout');
        return;
      }
    }
    if (!this.browser) return;
    for (const handle of this.sessions.values()) {
      const ack = handle.session.ackDue();
      if (ack !== undefined) this.ws.send(snMessage(ack, false));
    }
  }

  /** Heartbeat: false (and terminated) when the peer did not answer the previous ping; see Liveness. */
  heartbeat(): boolean {
    return this.liveness.check();
  }

  /** Forgets a session this socket no longer carries (ended elsewhere). */
  release(statsSessionId: string): void {
    this.sessions.delete(statsSessionId);
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private onClose(code: number, reason: string): void {
    this.closed = true;
    for (const handle of [...this.sessions.values()]) {
      this.sessions.delete(handle.session.statsSessionId);
      handle.owner = null;
      if (code === CLOSE_CONFERENCE_LEFT || code === CLOSE_DUMP_ERROR) {
        // The client will not come back: the dump is complete.
        this.ctx.end(handle, code, code === CLOSE_CONFERENCE_LEFT ? 'conference left' : reason || 'client error');
      } else {
        handle.session.detach(code, reason);
        this.ctx.registry.park(handle.key);
      }
    }
  }
}
