import type { ServerResponse } from 'node:http';

import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { MetricsService } from './metrics.service.js';

/** GET /metrics on the main port, unless RTCSTATS_METRICS_PORT moves it to its own listener. */
@ApiExcludeController()
@Controller()
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('metrics')
  async scrape(@Res() res: ServerResponse): Promise<void> {
    if (this.config.metricsPort !== undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`metrics are served on port ${this.config.metricsPort}`);
      return;
    }
    await writeMetrics(this.metrics, res);
  }
}

export async function writeMetrics(metrics: MetricsService, res: ServerResponse): Promise<void> {
  const body = metrics.clusterMetrics !== undefined ? await metrics.clusterMetrics() : await metrics.registry.metrics();
  res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body);
}
