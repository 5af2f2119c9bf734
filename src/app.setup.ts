import type { IncomingMessage, ServerResponse } from 'node:http';

import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

import type { AppConfig } from './config/app-config.js';
import { APP_CONFIG } from './config/app-config.token.js';
import { API_KEY_SCHEME } from './common/protocol.constants.js';
import { TrustedProxies } from './common/trusted-proxies.js';
import { RtcstatsWsAdapter } from './ingestion/rtcstats-ws.adapter.js';
import { MetricsService } from './metrics/metrics.service.js';
import { UploadHandler } from './upload/upload.handler.js';

/** JSON bodies (POST /tokens) are a few claims; anything larger is refused with 413 before parsing. */
export const JSON_BODY_LIMIT = '4kb';

/** Wiring shared by main.ts and the end-to-end tests, so tests boot the app exactly as production does. */
export function setupApp(app: INestApplication): INestApplication {
  app.useWebSocketAdapter(new RtcstatsWsAdapter(app));
  const express = app as NestExpressApplication;
  // Nothing to gain from announcing the framework to every client.
  express.disable('x-powered-by');
  // HTTP sees the same client address as the WebSocket path: X-Forwarded-For only from
  // RTCSTATS_TRUSTED_PROXIES, rightmost untrusted hop (the per-IP limits of POST /tokens use it).
  const config = app.get<AppConfig>(APP_CONFIG);
  const proxies = new TrustedProxies(config.trustedProxies);
  express.set('trust proxy', (address: string) => proxies.isTrusted(address));
  express.useBodyParser('json', { limit: JSON_BODY_LIMIT });
  countHttpRequests(express, app.get(MetricsService));
  // The upload path is a setting, so it is a plain route rather than a decorated controller.
  if (config.uploadPath !== undefined) {
    const upload = app.get(UploadHandler);
    express.getHttpAdapter().post(config.uploadPath, (req: IncomingMessage, res: ServerResponse) => upload.handle(req, res));
  }
  if (config.docs) setupDocs(app);
  return app;
}

/**
 * rtcstats_http_requests_total: the matched route pattern (never the URL, which may hold a token),
 * `unmatched` for 404s.
 */
function countHttpRequests(express: NestExpressApplication, metrics: MetricsService): void {
  express.use((req: IncomingMessage & { route?: { path?: unknown }; baseUrl?: string }, res: ServerResponse, next: () => void) => {
    res.once('finish', () => {
      const route = typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : 'unmatched';
      metrics.httpRequests.inc({ route, method: req.method ?? '', status: String(res.statusCode) });
    });
    next();
  });
}

/** The OpenAPI description at /docs-json and its UI at /docs: public, it describes the API and holds no secret. */
function setupDocs(app: INestApplication): void {
  const openApi = new DocumentBuilder()
    .setTitle('rtcstats collector')
    .setDescription(
      'HTTP API of the WebRTC statistics collector. Browsers stream statistics over a WebSocket ' +
        '(?rtcstats-token=<client token>); app backends mint client tokens with POST /tokens.',
    )
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'API key', description: 'API key (RTCSTATS_API_KEYS or the keyring file\'s apiKeys)' }, API_KEY_SCHEME)
    .build();
  // A factory: the document is built on the first request to /docs, not at every boot.
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApi));
}
