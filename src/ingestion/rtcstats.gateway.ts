import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';

import { type BeforeApplicationShutdown, Inject, Logger } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { WebSocket } from 'ws';

import { ConnectionAuthenticator } from '../auth/connection-authenticator.js';
import { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, CLOSE_REASON_KEY_REVOKED } from '../common/protocol.constants.js';
import { makeDataDir } from '../common/file-modes.js';
import { TrustedProxies } from '../common/trusted-proxies.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { JitsiIngestion } from '../jitsi/jitsi-ingestion.service.js';
import { isJitsiSubprotocol } from '../jitsi/jitsi-protocol.js';
import type { Keyring } from '../keyring/keyring.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { obfuscateAddress } from '../obfuscation/ip-address.js';
import { obfuscateFrame } from '../obfuscation/frame-obfuscator.js';
import { connectionInfo } from './connection-info.js';
import { DumpFinalizer } from './dump-finalizer.service.js';
import { DumpSession, type FrameTransform } from './dump-session.js';

const WRITE_BUFFER_BYTES = 256 * 1024;
const SHUTDOWN_GRACE_MS = 10_000;

@WebSocketGateway()
export class RtcstatsGateway implements OnGatewayInit, OnGatewayConnection, BeforeApplicationShutdown {
  private readonly logger = new Logger('Ingestion');
  private readonly sessions = new Set<DumpSession>();
  private readonly finalizing = new Set<Promise<void>>();
  private readonly workDir: string;
  private readonly proxies: TrustedProxies;
  private readonly transform: FrameTransform | null;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: ConnectionAuthenticator,
    private readonly finalizer: DumpFinalizer,
    keyring: KeyringService,
    private readonly jitsi: JitsiIngestion,
  ) {
    keyring.onChange((next) => this.closeRevoked(next));
    // Live dumps left by a previous run stay here untouched: they are recoverable.
    this.workDir = path.join(config.dataDir, 'work');
    this.proxies = new TrustedProxies(config.trustedProxies);
    this.transform = config.obfuscateIps ? obfuscateFrame : null;
    makeDataDir(this.workDir);
  }

  afterInit(): void {
    this.heartbeat = setInterval(() => {
      for (const s of this.sessions) s.heartbeat();
    }, this.config.pingIntervalMs);
    this.heartbeat.unref();
  }

  handleConnection(ws: WebSocket, request: IncomingMessage): void {
    // Hold frames that arrive with the upgrade until the auth decision is made.
    ws.pause();
    ws.on('error', (err) => this.logger.debug(`WebSocket error: ${err.message}`));
    if (isJitsiSubprotocol(ws.protocol)) return this.jitsi.handle(ws, request, this.remoteAddresses(request));
    const decision = this.auth.authenticate(request);
    if (!decision.ok) {
      // No message listener: whatever a rejected client sent is discarded, never stored.
      ws.close(CLOSE_POLICY_VIOLATION, decision.reason);
      ws.resume();
      return;
    }
    const id = crypto.randomUUID();
    const info = connectionInfo(request, id, Date.now(), decision, this.remoteAddresses(request));
    const session = new DumpSession(info, ws, {
      file: path.join(this.workDir, `${id}.jsonl`),
      transform: this.transform,
      writeBufferBytes: WRITE_BUFFER_BYTES,
      now: Date.now,
    });
    this.sessions.add(session);
    const finalized = session.done
      .then((result) => {
        this.sessions.delete(session);
        return this.finalizer.finalize(result);
      })
      .finally(() => this.finalizing.delete(finalized));
    this.finalizing.add(finalized);
    this.logger.log(`Connection ${id} accepted on ${info.path} (kid ${info.kid ?? 'none'})`);
    session.start();
  }

  private remoteAddresses(request: IncomingMessage): string[] {
    const client = this.proxies.clientAddress(request.socket.remoteAddress, request.headers['x-forwarded-for']);
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
        closed++;
      }
    }
    if (closed > 0) this.logger.warn(`Closed ${closed} connection(s) authenticated with revoked key(s) ${[...revoked].join(', ')}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const s of this.sessions) s.close(CLOSE_GOING_AWAY, 'server shutting down');
    const grace = setTimeout(() => {
      for (const s of this.sessions) s.terminate();
    }, SHUTDOWN_GRACE_MS);
    await Promise.allSettled([...this.finalizing]);
    clearTimeout(grace);
  }
}
