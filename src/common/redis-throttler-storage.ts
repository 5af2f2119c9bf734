import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { Logger, ServiceUnavailableException } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { Redis } from 'ioredis';

import type { RedisConfig } from '../config/app-config.js';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * Rate-limit state in Redis, shared by every process and instance (RTCSTATS_REDIS_URL), with the
 * in-memory storage's semantics: hits count per key and throttler name, but a block belongs to
 * the key, whichever throttler set it. ApiKeyAuthenticator relies on that: its probe under its own
 * name sees the block the failure counter set. The maintained storage's atomic script does the
 * counting; only the key names differ (its block key includes the throttler name).
 */
export class RedisThrottlerStorage extends ThrottlerStorageRedisService {
  private readonly logger = new Logger('RateLimit');
  /** Set while Redis fails, so an outage is logged once, not per request. */
  private failing = false;

  constructor(private readonly config: RedisConfig) {
    super(
      new Redis(config.url, {
        // Fail a request quickly while Redis is away instead of queueing it without bound.
        maxRetriesPerRequest: 1,
        commandTimeout: 5000,
      }),
    );
    // An unreachable Redis fails the requests that need it; the connection error itself is not fatal.
    this.redis.on('error', () => undefined);
  }

  override async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    // One hash tag per key keeps both keys in one Redis Cluster slot, as the script needs.
    const base = `{${this.config.keyPrefix}throttle:${key}}`;
    let results: number[];
    try {
      results = (await this.redis.call('eval', this.scriptSrc, 2, `${base}:${throttlerName}:hits`, `${base}:blocked`, throttlerName, ttl, limit, blockDuration)) as number[];
    } catch (err) {
      // Fail closed: without the shared count the limit would not hold. ioredis' messages name
      // the host and port, never the URL's password.
      if (!this.failing) this.logger.error(`Redis (RTCSTATS_REDIS_URL) unavailable: ${(err as Error).message}; POST /tokens answers 503 until it is back`);
      this.failing = true;
      throw new ServiceUnavailableException('The rate-limit store is unavailable; retry later');
    }
    if (this.failing) this.logger.log('Redis (RTCSTATS_REDIS_URL) is back');
    this.failing = false;
    const [totalHits, timeToExpire, isBlocked, timeToBlockExpire] = results;
    return {
      totalHits,
      timeToExpire: Math.ceil(timeToExpire / 1000),
      isBlocked: isBlocked === 1,
      timeToBlockExpire: Math.ceil(timeToBlockExpire / 1000),
    };
  }

  /** Closes the connection (Nest calls this at shutdown). */
  override onModuleDestroy(): void {
    this.redis.disconnect(false);
  }
}
