import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';

import { type BeforeApplicationShutdown, Inject, Logger } from '@nestjs/common';
import { type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Counter } from 'prom-client';
import type { WebSocket, WebSocketServer } from 'ws';

import { ConnectionAuthenticator } from '../auth/connection-authenticator.js';
import { CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_POLICY_VIOLATION, CLOSE_REASON_KEY_REVOKED } from '../common/protocol.constants.js';
import { makeDataDir } from '../common/file-modes.js';
import { type AppConfig, logLevelEnabled } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { FinalizationService } from '../finalization/finalization.service.js';
import { JitsiIngestion } from '../jitsi/jitsi-ingestion.service.js';
import { isJitsiSubprotocol } from '../jitsi/jitsi-protocol.js';
import type { Keyring } from '../keyring/keyring.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { LimitsService } from '../limits/limits.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { obfuscateAddress } from '../obfuscation/ip-address.js';
import { obfuscateFrame } from '../obfuscation/frame-obfuscator.js';
import { connectionInfo } from './connection-info.js';
import { DumpSession, type FrameTransform, type SessionResult } from './dump-session.js';
import { sessionJob } from './session-job.js';

const WRITE_BUFFER_BYTES = 256 * 1024;
/** After the drain deadline, sockets are terminated; their live files get a close line this fast. */
const TERMINATE_GRACE_MS = 2_000;
/** Idle and session-duration limits are checked this often. */
const LIMIT_TICK_MS = 1_000;
const LIMIT_LABEL = { 'rate limit': 'rate_limit', 'dump too large': 'dump_too_large', 'idle timeout': 'idle_timeout', 'session too long': 'session_duration' } as const;

/** The setting behind each limit, named in its log line. */
export function limitSetting(breach: keyof typeof LIMIT_LABEL): string {
  switch (breach) {
    case 'rate limit':
      return 'RTCSTATS_MAX_FRAMES_PER_SECOND / RTCSTATS_MAX_BYTES_PER_SECOND';
    case 'dump too large':
      return 'RTCSTATS_MAX_DUMP_BYTES';
    case 'idle timeout':
      return 'RTCSTATS_IDLE_TIMEOUT';
    case 'session too long':
      return 'RTCSTATS_MAX_SESSION_DURATION';
  }
}

@WebSocketGateway()
export class RtcstatsGateway implements OnGatewayInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('Ingestion');
  private readonly sessions = new Set<DumpSession>();
  /** Sessions ended but not yet handed to the queue (their file is being closed). */
  private readonly ending = new Set<Promise<void>>();
  private readonly workDir: string;
  private readonly transform: FrameTransform | null;
  /** Whether the per-connection "accepted" line is logged at all (RTCSTATS_LOG_LEVEL log or finer). */
  private readonly logAccepted: boolean;
  private readonly acceptedCount: Counter.Internal;
  private heartbeat: NodeJS.Timeout | undefined;
  private limitTicker: NodeJS.Timeout | undefined;
  /** Frames and bytes of sessions that have ended (live ones are summed at scrape time). */
  private endedFrames = 0;
  private endedBytes = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: ConnectionAuthenticator,
    private readonly finalization: FinalizationService,
    private readonly drain: DrainState,
    keyring: KeyringService,
    private readonly jitsi: JitsiIngestion,
    private readonly limits: LimitsService,
    private readonly metrics: MetricsService,
  ) {
    metrics.liveSource('rtcstats', () => {
      let frames = this.endedFrames;
      let bytes = this.endedBytes;
      for (const s of this.sessions) {
        frames += s.frameCount;
        bytes += s.byteCount;
      }
      return { open: this.sessions.size, frames, bytes };
    });
    keyring.onChange((next) => this.closeRevoked(next));
    // Live dumps left here by a previous run were queued for recovery before this one accepts any.
    this.workDir = finalization.workDir;
    this.transform = config.obfuscateIps ? obfuscateFrame : null;
    this.logAccepted = logLevelEnabled(config.logLevel, 'log');
    this.acceptedCount = metrics.accepted.labels('rtcstats');
    makeDataDir(this.workDir);
  }

  /**
   * Connections come straight from the server's 'connection' event, not through Nest's
   * per-connection pipeline (an rxjs Subject, a close listener and a message-handler binding per
   * client, for a gateway that has no message handlers): the adapter's bindClientConnect is a no-op.
   */
  afterInit(server: WebSocketServer): void {
    // `client`: the client address the adapter's limits counted the connection under.
    server.on('connection', (ws: WebSocket, request: IncomingMessage, client: string | undefined) => {
      // An event listener's exception would end the process: one connection's failure closes only it.
      try {
        this.accept(ws, request, client);
      } catch (err) {
        this.logger.error(`Cannot accept a connection: ${err instanceof Error ? err.message : String(err)}`);
        ws.close(CLOSE_INTERNAL_ERROR, 'internal error');
        ws.resume();
      }
    });
    this.heartbeat = setInterval(() => {
      for (const s of this.sessions) s.heartbeat();
    }, this.config.pingIntervalMs);
    this.heartbeat.unref();
    this.limitTicker = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions) s.expire(now, this.limits.config);
    }, Math.min(LIMIT_TICK_MS, this.limits.config.idleTimeoutMs));
    this.limitTicker.unref();
  }

  private accept(ws: WebSocket, request: IncomingMessage, client: string | undefined): void {
    // Hold frames that arrive with the upgrade until the auth decision is made.
    ws.pause();
    // Named by the connection once it has one, so the line carries its dumpId (or a Jitsi socket's connectionId).
    let subject = 'WebSocket';
    ws.on('error', (err) => this.logger.debug(`${subject} error: ${err.message}`));
    if (this.drain.draining) {
      // Upgraded just before the drain began: nothing recorded, the client reconnects elsewhere.
      ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      ws.resume();
      return;
    }
    if (isJitsiSubprotocol(ws.protocol)) {
      const connectionId = this.jitsi.handle(ws, request, this.remoteAddresses(client));
      if (connectionId !== undefined) subject = `Jitsi connection ${connectionId}`;
      return;
    }
    const decision = this.auth.authenticate(request);
    if (!decision.ok) {
      // No message listener: whatever a rejected client sent is discarded, never stored.
      ws.close(CLOSE_POLICY_VIOLATION, decision.reason);
      ws.resume();
      return;
    }
    const id = crypto.randomUUID();
    subject = `Connection ${id}`;
    const info = connectionInfo(request, id, Date.now(), decision, this.remoteAddresses(client));
    const now = Date.now();
    const session = new DumpSession(info, ws, {
      file: path.join(this.workDir, `${id}.jsonl`),
      transform: this.transform,
      writeBufferBytes: WRITE_BUFFER_BYTES,
      now: Date.now,
      limiter: this.limits.frameLimiter(this.config.maxPayload, now),
      onLimit: (breach) => {
        this.metrics.limited.inc({ limit: LIMIT_LABEL[breach], protocol: 'rtcstats' });
        this.logger.warn(`Connection ${id} closed: ${breach} (${limitSetting(breach)}); the dump is kept`);
      },
    });
    this.acceptedCount.inc();
    this.sessions.add(session);
    // One promise per session (session.done never rejects): what ends it is caught here.
    const ended: Promise<void> = session.done.then((result) => {
      try {
        this.sessionEnded(result);
      } catch (err) {
        this.logger.error(`Dump ${id}: cannot hand over to finalization: ${String(err)}`);
      } finally {
        this.sessions.delete(session);
        this.ending.delete(ended);
      }
    });
    this.ending.add(ended);
    if (this.logAccepted) this.logger.log(`Connection ${id} accepted on ${info.path} (kid ${info.kid ?? 'none'})`);
    session.start();
  }

  private sessionEnded(result: SessionResult): void {
    this.endedFrames += result.frameCount;
    this.endedBytes += result.bytes;
    this.metrics.sessionEnded(result.bytes, result.endTime - result.info.startTime);
    if (result.error !== undefined) {
      this.logger.error(`Dump ${result.info.id}: write failed (${result.error.message}); closed with ${result.closeCode}, keeping what was written`);
    }
    const job = sessionJob(result);
    if (job !== undefined) this.finalization.queue.submit(job);
  }

  private remoteAddresses(client: string | undefined): string[] {
    if (client === undefined) return [];
    return [this.config.obfuscateIps ? obfuscateAddress(client) : client];
  }

  /** Emergency revoke: connections authenticated with a revoked key are closed; their dumps are kept. */
  private closeRevoked(keyring: Keyring): void {
    const revoked = new Set(keyring.keys.filter((k) => k.state === 'revoked').map((k) => k.kid));
    if (revoked.size === 0) return;
    let closed = 0;
    for (const s of this.sessions) {
      if (s.info.kid !== null && revoked.has(s.info.kid)) {
        s.close(CLOSE_POLICY_VIOLATION, CLOSE_REASON_KEY_REVOKED);
        this.metrics.limited.inc({ limit: 'key_revoked', protocol: 'rtcstats' });
        closed++;
      }
    }
    if (closed > 0) this.logger.warn(`Closed ${closed} connection(s) authenticated with revoked key(s) ${[...revoked].join(', ')}`);
  }

  /**
   * Drain: refuse new clients (DrainState), close live sessions with 1001, and wait until every
   * dump is sealed, stored and recorded, or until RTCSTATS_SHUTDOWN_TIMEOUT; what is left then is
   * complete in work/ or outbox/ and finished by recovery at the next start. The metadata store
   * closes after this (onApplicationShutdown).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.drain.start();
    clearInterval(this.heartbeat);
    clearInterval(this.limitTicker);
    const started = Date.now();
    const queue = this.finalization.queue;
    const live = this.sessions.size + this.jitsi.liveSessions;
    const before = queue.stats.finalized;
    this.logger.log(
      `Draining: closing ${live} live session(s) with 1001, ${queue.depth} dump(s) waiting to be finalized, ` +
        `deadline ${this.config.shutdownTimeoutMs / 1000} s`,
    );
    for (const s of this.sessions) s.close(CLOSE_GOING_AWAY, 'server shutting down');
    // Jitsi sessions end too (run once, whether the gateway or Nest asks first).
    const jitsiEnded = this.jitsi.beforeApplicationShutdown();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.config.shutdownTimeoutMs)));
    const settled = (async () => {
      while (this.ending.size > 0) await Promise.allSettled([...this.ending]);
      await jitsiEnded;
      await queue.idle();
      return true;
    })();
    const finished = await Promise.race([settled, deadline]);
    clearTimeout(timer);
    let left = 0;
    if (!finished) {
      // Nothing new starts; the sockets still open are dropped and their files closed with a
      // close line, to be finished (like anything queued) by recovery at the next start.
      queue.stop();
      for (const s of this.sessions) s.terminate();
      await Promise.race([Promise.allSettled([...this.ending]), new Promise((r) => setTimeout(r, TERMINATE_GRACE_MS).unref())]);
      left = queue.depth;
    }
    const done = queue.stats.finalized - before;
    const message =
      `Drain finished in ${Date.now() - started} ms: ${live} session(s) closed, ${done} dump(s) stored and recorded` +
      (left > 0 ? `, deadline reached: ${left} dump(s) left in ${this.workDir} and ${this.finalization.outboxDir} for recovery at the next start` : '');
    if (left > 0) this.logger.warn(message);
    else this.logger.log(message);
  }
}
