import http, { type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { WebSocketServer } from 'ws';

import { PREFERRED_SUBPROTOCOL, SUBPROTOCOL_PATTERN } from '../common/protocol.constants.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { selectJitsiSubprotocol } from '../jitsi/jitsi-protocol.js';
import { DrainState } from '../lifecycle/drain-state.js';

const DRAINING_RESPONSE =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ndraining';

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
  private upgrade: { server: http.Server; listener: UpgradeListener } | undefined;

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
    const drain = this.app.get(DrainState);
    const listener: UpgradeListener = (req, socket, head) => {
      // Refused before the upgrade, so the client sees an HTTP error it can retry elsewhere.
      if (drain.draining) {
        socket.end(DRAINING_RESPONSE);
        return;
      }
      const wss = this.wsServersRegistry.get(port)?.[0] as WebSocketServer | undefined;
      if (wss === undefined) {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    };
    httpServer.on('upgrade', listener);
    this.upgrade = { server: httpServer, listener };
    return httpServer;
  }

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('error', (err) => this.logger.error(err));
    return server;
  }

  override bindMessageHandlers(): void {
    // Frames are consumed by DumpSession listeners; the gateway declares no message handlers.
  }

  override async dispose(): Promise<void> {
    this.upgrade?.server.off('upgrade', this.upgrade.listener);
    this.upgrade = undefined;
    await super.dispose();
  }
}
