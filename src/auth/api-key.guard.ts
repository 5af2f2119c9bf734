import type { IncomingMessage, ServerResponse } from 'node:http';

import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { InjectThrottlerStorage, normalizeIp, ThrottlerException, type ThrottlerStorage } from '@nestjs/throttler';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { Keyring } from '../keyring/keyring.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { ApiKeyMatcher } from './api-key-matcher.js';

/** What the guard adds to an authenticated request: the id (never the key) of the API key used. */
export interface ApiKeyRequest extends IncomingMessage {
  ip?: string;
  apiKeyId?: string;
}

export const WWW_AUTHENTICATE = 'Bearer realm="rtcstats"';
/** One message for every failure, so a client cannot tell a wrong scheme from a wrong key. */
export const UNAUTHORIZED_MESSAGE = 'A valid API key is required: Authorization: Bearer <API key>';
export const NO_API_KEY_MESSAGE =
  'No API key is configured for POST /tokens. Set RTCSTATS_API_KEYS (comma-separated, at least 32 bytes each) ' +
  'or add "apiKeys" to the keyring file (RTCSTATS_KEYRING_FILE), then restart or reload.';
const THROTTLER_NAME = 'auth-failure';
const BEARER = /^Bearer +(.+)$/i;

/**
 * Authenticates POST /tokens with `Authorization: Bearer <API key>` against RTCSTATS_API_KEYS and
 * the keyring's apiKeys (read per request, so a reloaded keyring applies at once), and limits
 * failed attempts per client IP: once over the limit, every request from that IP gets 429 until
 * the block ends, whatever key it carries, so the limit also stops guessing.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly logger = new Logger('ApiKeyAuth');
  private readonly envKeys: AppConfig['tokens']['apiKeys'];
  private readonly windowMs: number;
  private readonly failureLimit: number;
  /** The matcher for the last keyring snapshot seen; rebuilt only when the snapshot changes. */
  private cached: { keyring: Keyring | undefined; matcher: ApiKeyMatcher } | undefined;
  /** Client trackers currently blocked, to refuse them without counting more hits. */
  private readonly blockedUntil = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly keyring: KeyringService,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
  ) {
    this.envKeys = config.tokens.apiKeys;
    this.windowMs = config.tokens.rateLimitWindowSec * 1000;
    this.failureLimit = config.tokens.authFailureLimit;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<ApiKeyRequest>();
    const res = http.getResponse<ServerResponse>();
    const matcher = this.matcher();
    if (matcher.size === 0) throw new ServiceUnavailableException(NO_API_KEY_MESSAGE);

    const tracker = normalizeIp(req.ip ?? req.socket.remoteAddress ?? 'unknown');
    const blockedFor = this.blockedSeconds(tracker);
    if (blockedFor > 0) this.tooMany(res, blockedFor);

    const presented = BEARER.exec(req.headers.authorization ?? '')?.[1];
    // Node decodes header bytes as latin1; turning them back gives exactly the bytes sent.
    const id = presented === undefined ? undefined : matcher.match(Buffer.from(presented, 'latin1'));
    if (id !== undefined) {
      req.apiKeyId = id;
      return true;
    }
    await this.recordFailure(tracker, res);
    res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
    throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
  }

  private matcher(): ApiKeyMatcher {
    const keyring = this.keyring.get();
    if (this.cached === undefined || this.cached.keyring !== keyring) {
      this.cached = { keyring, matcher: new ApiKeyMatcher([...this.envKeys, ...(keyring?.apiKeys ?? [])]) };
    }
    return this.cached.matcher;
  }

  private blockedSeconds(tracker: string): number {
    const until = this.blockedUntil.get(tracker);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left <= 0) {
      this.blockedUntil.delete(tracker);
      return 0;
    }
    return Math.ceil(left / 1000);
  }

  private async recordFailure(tracker: string, res: ServerResponse): Promise<void> {
    const record = await this.storage.increment(
      `${THROTTLER_NAME}:${tracker}`,
      this.windowMs,
      this.failureLimit,
      this.windowMs,
      THROTTLER_NAME,
    );
    if (!record.isBlocked) return;
    // Blocks are rare, so sweeping expired ones here keeps the map bounded at little cost.
    const now = Date.now();
    for (const [t, until] of this.blockedUntil) if (until <= now) this.blockedUntil.delete(t);
    this.blockedUntil.set(tracker, now + record.timeToBlockExpire * 1000);
    this.logger.warn(`Too many failed API key attempts from one client: blocked for ${record.timeToBlockExpire} s`);
    this.tooMany(res, record.timeToBlockExpire);
  }

  private tooMany(res: ServerResponse, retryAfterSec: number): never {
    res.setHeader('Retry-After', String(retryAfterSec));
    throw new ThrottlerException('Too many failed authentication attempts; retry later');
  }
}
