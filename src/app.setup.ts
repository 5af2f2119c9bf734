import type { INestApplication } from '@nestjs/common';

import { RtcstatsWsAdapter } from './ingestion/rtcstats-ws.adapter.js';

/** Wiring shared by main.ts and the end-to-end tests, so tests boot the app exactly as production does. */
export function setupApp(app: INestApplication): INestApplication {
  app.useWebSocketAdapter(new RtcstatsWsAdapter(app));
  return app;
}
