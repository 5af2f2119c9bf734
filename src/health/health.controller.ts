import type { ServerResponse } from 'node:http';

import { Controller, Get, Res } from '@nestjs/common';

import { DrainState } from '../lifecycle/drain-state.js';

/** Load balancers and existing deployments probe exactly GET /healthcheck: 200, empty body. */
@Controller()
export class HealthController {
  constructor(private readonly drain: DrainState) {}

  @Get('healthcheck')
  check(@Res() res: ServerResponse): void {
    // While draining, a 503 takes this instance out of rotation before it stops listening.
    if (this.drain.draining) {
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('draining');
    } else {
      res.writeHead(200).end();
    }
  }
}
