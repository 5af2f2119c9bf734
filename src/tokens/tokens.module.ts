import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';

import { AuthModule } from '../auth/auth.module.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { RateWindows } from '../common/rate-windows.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { ApiKeyThrottlerGuard, JsonBodyGuard, RATE_LIMIT_MESSAGE } from './tokens.guards.js';
import { TokensController } from './tokens.controller.js';
import { TokensService } from './tokens.service.js';

@Module({
  imports: [
    AuthModule,
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG, CLOCK],
      useFactory: async (config: AppConfig, clock: Clock) => ({
        // Named "default" so the guard sends a plain Retry-After header (other names get a suffix).
        throttlers: [{ name: 'default', ttl: config.tokens.rateLimitWindowSec * 1000, limit: config.tokens.rateLimit }],
        errorMessage: RATE_LIMIT_MESSAGE,
        // Shared by every process and instance when Redis is configured, else per process. Imported
        // only then: ioredis and its storage cost every other process about 2 MiB of heap for nothing.
        storage:
          config.redis === undefined
            ? new RateWindows(clock)
            : new (await import('../common/redis-throttler-storage.js')).RedisThrottlerStorage(config.redis),
      }),
    }),
  ],
  controllers: [TokensController],
  providers: [TokensService, ApiKeyThrottlerGuard, JsonBodyGuard],
})
export class TokensModule {}
