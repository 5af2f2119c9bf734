import type { IncomingMessage, ServerResponse } from 'node:http';

import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerStorage, normalizeIp, ThrottlerException, type ThrottlerStorage } from '@nestjs/throttler';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { ApiKeyScope, Keyring } from '../keyring/keyring.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { ApiKeyMatcher } from './api-key-matcher.js';

/** What the guard adds to an authenticated request: the id (never the key) of the API key used. */
export interface ApiKeyRequest extends IncomingMessage {
  ip?: string;
  apiKeyId?: string;
}

const SCOPE_METADATA = 'rtcstats:api-key-scope';
/** The scope an API key needs for a controller or route guarded by ApiKeyGuard. */
export const RequireScope = (scope: ApiKeyScope) => SetMetadata(SCOPE_METADATA, scope);

export const WWW_AUTHENTICATE = 'Bearer realm="rtcstats"';
/** One message for every failure, so a client cannot tell a wrong scheme from a wrong key. */
export const UNAUTHORIZED_MESSAGE = 'A valid API key is required: Authorization: Bearer <API key>';
export const NO_API_KEY_MESSAGE =
  'No API key is configured for POST /tokens. Set RTCSTATS_API_KEYS (comma-separated, at least 32 bytes each) ' +
  'or add "apiKeys" to the keyring file (RTCSTATS_KEYRING_FILE), then restart or reload.';
export const forbiddenMessage = (scope: ApiKeyScope) => `This API key lacks the "${scope}" scope`;
const THROTTLER_NAME = 'auth-failure';
/**
 * Asks the throttler storage whether a client is blocked: a blocked record answers without counting;
 * otherwise the hit goes to this name's own counter (never a failure) and expires within 1 ms.
 */
const BLOCK_PROBE_NAME = 'auth-failure-probe';
const BLOCK_PROBE_TTL_MS = 1;
const BEARER = /^Bearer +(.+)$/i;

/**
 * Authenticates `Authorization: Bearer <API key>` against RTCSTATS_API_KEYS and the keyring's
 * apiKeys (read per request, so a reloaded keyring applies at once), checks the route's scope
 * (403: authenticated, not allowed), and limits failed attempts per client IP: once over the
 * limit, every request from that IP gets 429 until the block ends, whatever key it carries and
 * whichever route, so the limit also stops guessing. The failure count and the block live in the
 * throttler's storage; this service is provided once (AuthModule) and every route's guard uses it.
 */
@Injectable()
export class ApiKeyAuthenticator {
  private readonly logger = new Logger('ApiKeyAuth');
  private readonly envKeys: AppConfig['tokens']['apiKeys'];
  private readonly windowMs: number;
  private readonly failureLimit: number;
  /** The matcher for the last keyring snapshot seen; rebuilt only when the snapshot changes. */
  private cached: { keyring: Keyring | undefined; matcher: ApiKeyMatcher } | undefined;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly keyring: KeyringService,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
  ) {
    this.envKeys = config.tokens.apiKeys;
    this.windowMs = config.tokens.rateLimitWindowSec * 1000;
    this.failureLimit = config.tokens.authFailureLimit;
  }

  /** Returns when the request may proceed; throws the HTTP error to answer otherwise. */
  async authenticate(req: ApiKeyRequest, res: ServerResponse, scope: ApiKeyScope): Promise<void> {
    const matcher = this.matcher();
    if (matcher.size === 0) throw new ServiceUnavailableException(NO_API_KEY_MESSAGE);

    const key = `${THROTTLER_NAME}:${normalizeIp(req.ip ?? req.socket.remoteAddress ?? 'unknown')}`;
    const probe = await this.storage.increment(key, BLOCK_PROBE_TTL_MS, Number.MAX_SAFE_INTEGER, this.windowMs, BLOCK_PROBE_NAME);
    if (probe.isBlocked) this.tooMany(res, probe.timeToBlockExpire);

    const presented = BEARER.exec(req.headers.authorization ?? '')?.[1];
    // Node decodes header bytes as latin1; turning them back gives exactly the bytes sent.
    const apiKey = presented === undefined ? undefined : matcher.match(Buffer.from(presented, 'latin1'));
    if (apiKey === undefined) {
      await this.recordFailure(key, res);
      res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
      throw new UnauthorizedException(UNAUTHORIZED_MESSAGE);
    }
    if (!apiKey.scopes.includes(scope)) throw new ForbiddenException(forbiddenMessage(scope));
    req.apiKeyId = apiKey.id;
  }

  private matcher(): ApiKeyMatcher {
    const keyring = this.keyring.get();
    if (this.cached === undefined || this.cached.keyring !== keyring) {
      this.cached = { keyring, matcher: new ApiKeyMatcher([...this.envKeys, ...(keyring?.apiKeys ?? [])]) };
    }
    return this.cached.matcher;
  }

  private async recordFailure(key: string, res: ServerResponse): Promise<void> {
    const record = await this.storage.increment(key, this.windowMs, this.failureLimit, this.windowMs, THROTTLER_NAME);
    if (!record.isBlocked) return;
    this.logger.warn(`Too many failed API key attempts from one client: blocked for ${record.timeToBlockExpire} s`);
    this.tooMany(res, record.timeToBlockExpire);
  }

  private tooMany(res: ServerResponse, retryAfterSec: number): never {
    res.setHeader('Retry-After', String(Math.max(1, retryAfterSec)));
    throw new ThrottlerException('Too many failed authentication attempts; retry later');
  }
}

/**
 * The route-level adapter: reads the route's @RequireScope and asks the one ApiKeyAuthenticator.
 * Nest builds a guard instance per module that uses it, so it holds no state of its own.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly authenticator: ApiKeyAuthenticator,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const scope = this.reflector.getAllAndOverride<ApiKeyScope | undefined>(SCOPE_METADATA, [context.getHandler(), context.getClass()]);
    // Fail closed: a route guarded without a declared scope is a programming error, not an open door.
    if (scope === undefined) throw new Error(`${context.getClass().name} uses ApiKeyGuard without @RequireScope`);
    const http = context.switchToHttp();
    await this.authenticator.authenticate(http.getRequest<ApiKeyRequest>(), http.getResponse<ServerResponse>(), scope);
    return true;
  }
}
