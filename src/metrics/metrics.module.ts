import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Global, Inject, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { MetricsController, writeMetrics } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** The one MetricsService of the process, for every module; GET /metrics. */
@Global()
@Module({ providers: [MetricsService], exports: [MetricsService], controllers: [MetricsController] })
export class MetricsModule implements OnApplicationBootstrap, OnApplicationShutdown {
  private server: http.Server | undefined;

  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** RTCSTATS_METRICS_PORT: a separate listener (e.g. reachable only from the monitoring network). */
  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.metricsPort;
    if (port === undefined) return;
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') void writeMetrics(this.metrics, res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.host, resolve);
    });
    this.server = server;
    new Logger('Metrics').log(`Metrics on http://${this.config.host ?? 'localhost'}:${(server.address() as AddressInfo).port}/metrics`);
  }

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}
