import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { WebSocketServer } from 'ws';

import { PREFERRED_SUBPROTOCOL, SUBPROTOCOL_PATTERN } from '../common/protocol.constants.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { selectJitsiSubprotocol } from '../jitsi/jitsi-protocol.js';
import { HandshakeDeadlines } from '../limits/handshake-deadlines.js';
import { LimitsService } from '../limits/limits.service.js';
import { MetricsService } from '../metrics/metrics.service.js';

const STATUS_TEXT: Record<number, string> = { 408: 'Request Timeout', 429: 'Too Many Requests', 503: 'Service Unavailable' };

/** A plain HTTP answer on a socket that asked for an upgrade (refused before the upgrade). */
export function httpRefusal(status: number, text: string): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
  );
}


/**
 * Picks the subprotocol to echo: rtcstats#5.0 if offered, else the first rtcstats#N.M, else a
 * Jitsi one (which routes the connection to the Jitsi adapter), else none.
 */
export function selectSubprotocol(offered: Set<string>): string | false {
  if (offered.has(PREFERRED_SUBPROTOCOL)) return PREFERRED_SUBPROTOCOL;
  for (const p of offered) {
    if (SUBPROTOCOL_PATTERN.test(p)) return p;
  }
  return selectJitsiSubprotocol(offered) ?? false;
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * @nestjs/platform-ws's WsAdapter for the rtcstats gateway, changed where the protocol needs it:
 * it upgrades on every path of the HTTP server (rtcstats.js apps connect on arbitrary paths; the
 * stock adapter accepts one exact path), echoes the rtcstats subprotocol, and binds no per-message
 * pipeline (the gateway's sessions read frames directly, so a frame costs no JSON parse,
 * observable or promise). Client socket errors are the gateway's to log (at debug: a client's
 * garbage must not flood the error log).
 */
export class RtcstatsWsAdapter extends WsAdapter {
  private upgrade:
    | {
        server: http.Server;
        listener: UpgradeListener;
        onConnection: (s: Socket) => void;
        onRequest: (r: IncomingMessage) => void;
        sweeper: NodeJS.Timeout;
      }
    | undefined;

  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}): WebSocketServer {
    const config = this.app.get<AppConfig>(APP_CONFIG);
    return super.create(port, {
      ...options,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: config.maxPayload,
      handleProtocols: selectSubprotocol,
    }) as WebSocketServer;
  }

  /** One upgrade listener that hands every path to the gateway's server. */
  protected override ensureHttpServerExists(port: number, httpServer = http.createServer()): http.Server | undefined {
    if (this.httpServersRegistry.has(port)) return undefined;
    this.httpServersRegistry.set(port, httpServer);
    const limits = this.app.get(LimitsService);
    const metrics = this.app.get(MetricsService);
    const listener: UpgradeListener = (req, socket, head) => {
      deadlines.done(socket as Socket);
      // Refused before the upgrade (draining, disk low, connection limits), so the client sees an
      // HTTP status it can act on (retry elsewhere, back off) and costs no WebSocket.
      const admitted = limits.admit(req);
      if ('refusal' in admitted) {
        socket.end(httpRefusal(admitted.refusal.status, admitted.refusal.text));
        return;
      }
      socket.once('close', admitted.release);
      const wss = this.wsServersRegistry.get(port)?.[0] as WebSocketServer | undefined;
      if (wss === undefined) {
        socket.destroy();
        return;
      }
      // The client address goes along: the gateway records the one the limits counted.
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req, admitted.address));
    };
    httpServer.on('upgrade', listener);
    // RTCSTATS_AUTH_TIMEOUT: a socket must complete its request (the upgrade and its token) in time;
    // a slow or silent one would hold a file descriptor and a slot for nothing.
    const deadlines = new HandshakeDeadlines<Socket>(limits.config.authTimeoutMs, (socket) => {
      metrics.limited.inc({ limit: 'auth_timeout', protocol: 'http' });
      socket.end(httpRefusal(408, 'handshake timeout'));
    });
    const sweeper = setInterval(() => deadlines.sweep(), deadlines.sweepIntervalMs);
    sweeper.unref();
    const onConnection = (socket: Socket) => deadlines.add(socket);
    const onRequest = (req: IncomingMessage) => deadlines.done(req.socket);
    httpServer.on('connection', onConnection);
    httpServer.on('request', onRequest);
    this.upgrade = { server: httpServer, listener, onConnection, onRequest, sweeper };
    return httpServer;
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('error', (err) => this.logger.error(err));
    return server;
  }

  override bindMessageHandlers(): void {
    // Frames are consumed by DumpSession listeners; the gateway declares no message handlers.
  }

  override bindClientConnect(): void {
    // The gateway listens to the server's 'connection' event itself (afterInit): Nest's handler
    // would add an rxjs Subject pass, a close listener and a message-handler binding per client.
  }

  override async dispose(): Promise<void> {
    this.upgrade?.server.off('upgrade', this.upgrade.listener);
    this.upgrade?.server.off('connection', this.upgrade.onConnection);
    this.upgrade?.server.off('request', this.upgrade.onRequest);
    clearInterval(this.upgrade?.sweeper);
    this.upgrade = undefined;
    await super.dispose();
  }
}
