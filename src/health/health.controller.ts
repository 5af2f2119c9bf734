import { Controller, Get, HttpCode } from '@nestjs/common';

/** Load balancers and existing deployments probe exactly GET /healthcheck: 200, empty body. */
@Controller()
export class HealthController {
  @Get('healthcheck')
  @HttpCode(200)
  check(): void {}
}
