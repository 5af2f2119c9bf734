import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

import type { INestApplicationContext } from '@nestjs/common';
import { AbstractWsAdapter } from '@nestjs/websockets';
import { WebSocketServer } from 'ws';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { PREFERRED_SUBPROTOCOL, SUBPROTOCOL_PATTERN } from '../common/protocol.constants.js';
import { selectJitsiSubprotocol } from '../jitsi/jitsi-protocol.js';

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

/**
 * WebSocket adapter for the rtcstats gateway. Unlike the stock WsAdapter it upgrades on every
 * path of the HTTP server (rtcstats.js apps connect on arbitrary paths), echoes the rtcstats
 * subprotocol, and binds no per-message pipeline: the gateway's sessions read frames directly,
 * so a frame costs no JSON parse, observable or promise.
 */
export class RtcstatsWsAdapter extends AbstractWsAdapter {
  private upgradeListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;

  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override create(): WebSocketServer {
    const config = this.app.get<AppConfig>(APP_CONFIG);
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: config.maxPayload,
      handleProtocols: selectSubprotocol,
    });
    const server: Server = this.httpServer;
    this.upgradeListener = (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    };
    server.on('upgrade', this.upgradeListener);
    return wss;
  }

  override bindMessageHandlers(): void {
    // Frames are consumed by DumpSession listeners; the gateway declares no message handlers.
  }

  override async close(wss: WebSocketServer): Promise<void> {
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  override async dispose(): Promise<void> {
    if (this.upgradeListener !== undefined) {
      (this.httpServer as Server).off('upgrade', this.upgradeListener);
      this.upgradeListener = undefined;
    }
  }
}
