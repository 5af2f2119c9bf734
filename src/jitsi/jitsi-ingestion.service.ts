import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';

import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { WebSocket } from 'ws';

import { ConnectionAuthenticator } from '../auth/connection-authenticator.js';
import { makeDataDir } from '../common/file-modes.js';
import { CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR } from '../common/protocol.constants.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { FinalizationService } from '../finalization/finalization.service.js';
import { type ConnectionInfo, connectionInfo } from '../ingestion/connection-info.js';
import { sessionJob } from '../ingestion/session-job.js';
import type { Keyring } from '../keyring/keyring.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { LimitsService } from '../limits/limits.service.js';
import type { Expiry, FrameBreach } from '../limits/limits.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { obfuscateFrame } from '../obfuscation/frame-obfuscator.js';
import { dumpNote, type JitsiContext, JitsiConnection, type SessionHandle } from './jitsi-connection.js';
import { JitsiDumpFile } from './jitsi-dump-file.js';
import { CLOSE_DUMP_ERROR, statsFormat } from './jitsi-protocol.js';

/**
 * How each limit ends a Jitsi socket or session. The client retries on every code but 3002 (and
 * 3001): a client over the rate or dump size would only do it again, so 3002 stops it; an idle
 * socket (1001) is left to reconnect if it is alive. A session over the duration is ended alone
 * (its next message starts a new dump) and the socket stays.
 */
export const JITSI_LIMIT_CLOSE: Record<FrameBreach | Expiry, number> = {
  'rate limit': CLOSE_DUMP_ERROR,
  'dump too large': CLOSE_DUMP_ERROR,
  'idle timeout': CLOSE_GOING_AWAY,
  'session too long': CLOSE_GOING_AWAY,
};
const LIMIT_LABEL = { 'rate limit': 'rate_limit', 'dump too large': 'dump_too_large', 'idle timeout': 'idle_timeout', 'session too long': 'session_duration' } as const;
import { JitsiSession } from './jitsi-session.js';
import { parseJitsiUrl } from './jitsi-url.js';
import { realTimers, ResumeRegistry } from './resume-registry.js';

const WRITE_BUFFER_BYTES = 256 * 1024;
const SHUTDOWN_GRACE_MS = 10_000;
const TICK_MS = 1000;

/** A close reason must fit in 123 bytes; keep ours short and ASCII. */
function closeReason(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}

/** The obfuscation of rtcstats frames, applied to one Jitsi dump line. */
function obfuscateLine(line: string): string {
  const out = obfuscateFrame(Buffer.from(line, 'utf8'));
  return typeof out === 'string' ? out : line;
}

/**
 * Accepts Jitsi clients (subprotocols 3.1_STANDARD, 3.1_LEGACY, 3.0_JVB, 1.0_JICOFO,
 * 1.0_JIGASI) on the rtcstats port: same auth, limits, storage and metadata as rtcstats.js
 * connections. The gateway hands it the sockets; sessions outlive sockets for the resume grace.
 */
@Injectable()
export class JitsiIngestion implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('Jitsi');
  private readonly connections = new Set<JitsiConnection>();
  /** Sessions ended whose files are being closed before they go to the finalization queue. */
  private readonly finalizing = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;
  private readonly registry: ResumeRegistry<SessionHandle>;
  private readonly context: JitsiContext;
  private readonly workDir: string;
  private readonly infoOf = new WeakMap<JitsiConnection, ConnectionInfo>();
  private readonly sessionInfo = new WeakMap<SessionHandle, ConnectionInfo>();
  private ticker: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  private endedEntries = 0;
  private endedBytes = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: ConnectionAuthenticator,
    private readonly finalization: FinalizationService,
    keyring: KeyringService,
    limits: LimitsService,
    private readonly metrics: MetricsService,
  ) {
    metrics.liveSource('jitsi', () => {
      let frames = this.endedEntries;
      let bytes = this.endedBytes;
      for (const h of this.registry.sessions()) {
        frames += h.session.entryCount;
        bytes += h.session.byteCount;
      }
      return { open: this.connections.size, frames, bytes };
    });
    this.workDir = finalization.workDir;
    makeDataDir(this.workDir);
    keyring.onChange((next) => this.closeRevoked(next));
    this.registry = new ResumeRegistry<SessionHandle>(config.jitsi.resumeGraceMs, realTimers, (handle) => {
      const last = handle.session.stats.disconnects;
      this.logger.log(`Jitsi session ${handle.session.statsSessionId}: no reconnect within the grace period (${last} disconnect(s))${dumpNote(handle)}`);
      this.end(handle, handle.session.lastCloseCode ?? 1006, 'not resumed within the grace period');
    });
    const logger = this.logger;
    this.context = {
      registry: this.registry,
      create: (id, conn) => this.create(id, conn),
      end: (handle, code, reason) => this.end(handle, code, reason),
      transform: config.obfuscateIps ? obfuscateLine : null,
      log: { log: (m) => logger.log(m), warn: (m) => logger.warn(m), debug: (m) => logger.debug(m) },
      limits: {
        limiter: (now) => limits.frameLimiter(config.maxPayload, now),
        maxDumpBytes: limits.config.maxDumpBytes,
        idleTimeoutMs: limits.config.idleTimeoutMs,
        maxSessionDurationMs: limits.config.maxSessionDurationMs,
        now: Date.now,
        hit: (conn, breach, handle) => this.limitHit(conn, breach, handle),
      },
    };
  }

  onModuleInit(): void {
    this.ticker = setInterval(() => {
      for (const c of this.connections) c.tick();
    }, TICK_MS);
    this.ticker.unref();
    this.heartbeat = setInterval(() => {
      for (const c of this.connections) c.heartbeat();
    }, this.config.pingIntervalMs);
    this.heartbeat.unref();
  }

  /** Called by the gateway for a socket that negotiated a Jitsi subprotocol (socket paused); returns its connection id if accepted. */
  handle(ws: WebSocket, request: IncomingMessage, remoteAddresses: readonly string[]): string | undefined {
    const url = parseJitsiUrl(request.url);
    const decision = this.auth.authenticateTokens(url.tokens);
    if (!decision.ok) {
      // 3002 stops the Jitsi client's retries (it retries on any other code, 1008 included).
      ws.close(CLOSE_DUMP_ERROR, closeReason(decision.reason));
      ws.resume();
      return undefined;
    }
    if (this.shuttingDown) {
      ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      ws.resume();
      return undefined;
    }
    const id = crypto.randomUUID();
    // The Jitsi URL forms put the token in the path too: url and path come masked from parseJitsiUrl.
    const base: ConnectionInfo = { ...connectionInfo(request, id, Date.now(), decision, remoteAddresses), url: url.url, path: url.path };
    const conn = new JitsiConnection(
      ws,
      {
        id,
        protocol: ws.protocol,
        identityKey: JSON.stringify(decision.claims),
        kid: decision.kid,
        statsSessionId: url.statsSessionId,
        details: { url: url.url, remoteAddresses, isReconnect: url.isReconnect, connectionId: id },
        secrets: url.tokens,
      },
      this.context,
    );
    this.infoOf.set(conn, base);
    this.connections.add(conn);
    ws.once('close', () => {
      this.connections.delete(conn);
      this.infoOf.delete(conn);
    });
    this.metrics.accepted.inc({ protocol: 'jitsi' });
    this.logger.log(`Jitsi connection ${id} accepted on ${url.path} (${ws.protocol}, kid ${decision.kid ?? 'none'})`);
    conn.start();
    return id;
  }

  private limitHit(conn: JitsiConnection, breach: FrameBreach | Expiry, handle: SessionHandle | undefined): void {
    const code = JITSI_LIMIT_CLOSE[breach];
    this.metrics.limited.inc({ limit: LIMIT_LABEL[breach], protocol: 'jitsi' });
    if (breach === 'session too long') {
      this.logger.warn(`Jitsi session ${handle!.session.statsSessionId} ended: ${breach} (RTCSTATS_MAX_SESSION_DURATION); the dump is kept, later entries start a new one${dumpNote(handle)}`);
      this.end(handle!, code, breach);
      return;
    }
    this.logger.warn(`Jitsi connection ${conn.params.id} closed with ${code}: ${breach}; its sessions' dumps are kept`);
    // The sessions end with the socket (not parked for a resume): the client is told not to come back, or is gone.
    // One line per session, so each carries its own dumpId.
    for (const h of [...conn.sessions.values()]) {
      this.logger.warn(`Jitsi session ${h.session.statsSessionId} ended with its connection: ${breach}; the dump is kept${dumpNote(h)}`);
      this.end(h, code, breach);
    }
    conn.close(code, breach);
  }

  private create(statsSessionId: string, conn: JitsiConnection): SessionHandle {
    const base = this.infoOf.get(conn)!;
    const dumpId = crypto.randomUUID();
    const info: ConnectionInfo = { ...base, id: dumpId, startTime: Date.now() };
    const meta = {
      path: info.path,
      origin: info.origin,
      url: info.url,
      userAgent: info.userAgent,
      clientProtocol: info.clientProtocol,
      statsFormat: statsFormat(info.clientProtocol ?? '', info.userAgent),
      flavour: 'jitsi',
      fileFormat: 'jitsi-1',
      dumpId,
      statsSessionId,
      startTime: info.startTime,
      remoteAddresses: info.remoteAddresses,
      isReconnect: conn.params.details.isReconnect,
      // What the metadata record needs, so recovery after a crash can rebuild it from the file.
      kid: info.kid,
      rtcStats: { user: info.claims.user ?? null, session: info.claims.session ?? null, conference: info.claims.conference ?? null },
    };
    const file = new JitsiDumpFile(
      path.join(this.workDir, `${dumpId}.jsonl`),
      JSON.stringify(['connectionInfo', null, meta, info.startTime]),
      WRITE_BUFFER_BYTES,
      (err) => {
        this.logger.error(`Jitsi session ${statsSessionId}: dump write failed (${err.message}) (dump ${dumpId})`);
        // 1011 is retried by the client, which then resends what was not acknowledged into a new dump.
        const owner = handle.owner;
        this.end(handle, CLOSE_INTERNAL_ERROR, 'cannot record session');
        owner?.close(CLOSE_INTERNAL_ERROR, 'cannot record session');
      },
    );
    const session = new JitsiSession(statsSessionId, file, { everyEntries: this.config.jitsi.ackEntries, intervalMs: this.config.jitsi.ackIntervalMs }, Date.now);
    const handle: SessionHandle = { key: `${conn.params.identityKey}\n${statsSessionId}`, session, file, owner: conn, dumpId };
    this.registry.add(handle.key, handle);
    this.sessionInfo.set(handle, info);
    this.logger.log(`Jitsi session ${statsSessionId} started (dump ${dumpId}) on connection ${conn.params.id}`);
    return handle;
  }

  private end(handle: SessionHandle, code: number, reason: string): void {
    if (handle.session.ended !== undefined) return;
    const end = handle.session.end(code, reason);
    this.endedEntries += end.entries;
    this.endedBytes += end.bytes;
    this.metrics.sessionEnded(end.bytes, end.endTime - handle.session.startedAt);
    this.registry.remove(handle.key);
    handle.owner?.release(handle.session.statsSessionId);
    handle.owner = null;
    const info = this.sessionInfo.get(handle)!;
    const { identity } = handle.session;
    const done = handle.file
      .finish()
      .then((stored) => {
        const job = sessionJob({
          info,
          file: handle.file.file,
          endTime: end.endTime,
          closeCode: end.code,
          frameCount: end.entries,
          bytes: end.bytes,
          stored,
          error: handle.file.error,
          lastFrameAt: end.endTime,
          extra: {
            statsSessionId: handle.session.statsSessionId,
            conferenceName: identity.conferenceName,
            displayName: identity.displayName,
            meetingId: identity.meetingId,
          },
        });
        if (job !== undefined) this.finalization.queue.submit(job);
      })
      .catch((err: unknown) => this.logger.error(`Jitsi session ${handle.session.statsSessionId}: cannot hand over to finalization: ${String(err)}${dumpNote(handle)}`))
      .finally(() => this.finalizing.delete(done));
    this.finalizing.add(done);
  }

  /** Emergency revoke: sessions of a revoked key end now (dumps kept); 3002 stops the client's retries. */
  private closeRevoked(keyring: Keyring): void {
    const revoked = new Set(keyring.keys.filter((k) => k.state === 'revoked').map((k) => k.kid));
    if (revoked.size === 0) return;
    for (const c of this.connections) {
      if (c.kid === null || !revoked.has(c.kid)) continue;
      for (const h of [...c.sessions.values()]) this.end(h, CLOSE_DUMP_ERROR, 'key revoked');
      this.metrics.limited.inc({ limit: 'key_revoked', protocol: 'jitsi' });
      c.close(CLOSE_DUMP_ERROR, 'key revoked');
    }
    for (const h of this.registry.sessions()) {
      if (revoked.has(this.sessionInfo.get(h)?.kid ?? '')) this.end(h, CLOSE_DUMP_ERROR, 'key revoked');
    }
  }

  /** Live Jitsi sessions (attached or waiting for a resume). */
  get liveSessions(): number {
    return this.registry.sessions().length;
  }

  /**
   * Ends every session and hands its dump to the finalization queue. Called by the gateway's drain
   * (which then waits for the queue) and by Nest; runs once.
   */
  beforeApplicationShutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.ticker);
    clearInterval(this.heartbeat);
    // Every session ends now, parked ones included; their clients reconnect elsewhere (1001 is retried).
    for (const h of this.registry.sessions()) this.end(h, CLOSE_GOING_AWAY, 'server shutting down');
    for (const c of this.connections) c.close(CLOSE_GOING_AWAY, 'server shutting down');
    const grace = setTimeout(() => {
      for (const c of this.connections) c.terminate();
    }, SHUTDOWN_GRACE_MS);
    await Promise.allSettled([...this.finalizing]);
    clearTimeout(grace);
  }
}
