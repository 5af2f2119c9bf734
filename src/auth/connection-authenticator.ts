import type { IncomingMessage } from 'node:http';

import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Counter } from 'prom-client';

import { RateLimitedLog } from '../common/rate-limited-log.js';
import { MetricsService, type RejectLabel } from '../metrics/metrics.service.js';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { CLOCK, type Clock } from '../common/clock.js';
import {
  REJECT_INVALID_SIGNATURE,
  REJECT_INVALID_TOKEN,
  REJECT_JWT_EXPIRED,
  REJECT_KEY_REVOKED,
  REJECT_TOKEN_MISSING,
  REJECT_UNKNOWN_KID,
  type RejectReason,
  TOKEN_PARAM,
} from '../common/protocol.constants.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { KeyUsage } from './key-usage.js';
import { PerKeyJwt } from './per-key-jwt.js';
import { type RtcStatsClaims, TokenVerifier } from './token-verifier.js';

export type AuthDecision =
  | { ok: true; kid: string | null; claims: RtcStatsClaims }
  | { ok: false; reason: RejectReason };

const TOKEN_PREFIX = `${TOKEN_PARAM}=`;

/** The rtcstats-token values of a request URL (decoded), in order. */
export function tokenParams(url: string | undefined): string[] {
  const q = url?.indexOf('?') ?? -1;
  if (q === -1) return [];
  const query = url!.slice(q + 1);
  // Nothing to decode (the usual query: base64url tokens): the pairs as they are, without
  // URLSearchParams' parse of every pair; otherwise its decoding (percent, '+' as space).
  if (query.includes('%') || query.includes('+')) return new URLSearchParams(query).getAll(TOKEN_PARAM);
  const tokens: string[] = [];
  for (const pair of query.split('&')) {
    if (pair.startsWith(TOKEN_PREFIX)) tokens.push(pair.slice(TOKEN_PREFIX.length));
    else if (pair === TOKEN_PARAM) tokens.push('');
  }
  return tokens;
}

const REJECT_LABEL: Record<RejectReason, RejectLabel> = {
  [REJECT_TOKEN_MISSING]: 'token_missing',
  [REJECT_JWT_EXPIRED]: 'expired',
  [REJECT_INVALID_SIGNATURE]: 'bad_signature',
  [REJECT_UNKNOWN_KID]: 'unknown_kid',
  [REJECT_KEY_REVOKED]: 'revoked',
  [REJECT_INVALID_TOKEN]: 'invalid_token',
};

/** Repeated rejection warnings: one line per reason per interval, with the count. */
export const REJECTION_LOG_INTERVAL_MS = 10_000;

/**
 * Decides, once during the WebSocket handshake, whether a connection may record.
 * Nest guards do not run on connect (so this is not one): the gateway calls it from handleConnection.
 * The log lines are verbatim from the protocol contract: operators' guides quote them.
 */
@Injectable()
export class ConnectionAuthenticator implements OnModuleDestroy {
  private readonly logger = new Logger('Auth');
  /** A client retrying a bad token in a loop must not flood the log: one line per reason and detail per interval. */
  private readonly rejections = new RateLimitedLog(REJECTION_LOG_INTERVAL_MS, (m) => this.logger.warn(m));
  private readonly flusher: NodeJS.Timeout;
  private readonly verifier: TokenVerifier;
  private readonly required: boolean;
  /** The labelled counter of each reason, looked up once. */
  private readonly rejectedCounts = new Map<RejectReason, Counter.Internal>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    keyring: KeyringService,
    private readonly usage: KeyUsage,
    jwt: PerKeyJwt,
    private readonly metrics: MetricsService,
    @Inject(CLOCK) clock: Clock,
  ) {
    this.flusher = setInterval(() => this.rejections.flush(), REJECTION_LOG_INTERVAL_MS);
    this.flusher.unref();
    // Kids are public key names (GET /admin/keys shows them), never secrets.
    metrics.labelled('counter', 'rtcstats_token_verifications_total', 'Client tokens verified, by the kid that verified them', ['kid'], () =>
      usage.all().map((u) => ({ labels: { kid: u.kid }, value: u.verifications })),
    );
    metrics.labelled('gauge', 'rtcstats_token_last_verified_timestamp_seconds', 'When each kid last verified a client token', ['kid'], () =>
      usage.all().map((u) => ({ labels: { kid: u.kid }, value: u.lastVerifiedAt / 1000 })),
      'max',
    );
    metrics.labelled('gauge', 'rtcstats_key_not_after_timestamp_seconds', 'notAfter of each key that has one (previous keys)', ['kid', 'state'], () =>
      (keyring.get()?.keys ?? []).filter((k) => k.notAfter !== undefined).map((k) => ({ labels: { kid: k.kid, state: k.state }, value: k.notAfter! / 1000 })),
      'max',
    );
    metrics.labelled('counter', 'rtcstats_keyring_reloads_total', 'Keyring reloads that took effect', [], () => [{ labels: {}, value: keyring.stats.reloads }]);
    metrics.labelled('counter', 'rtcstats_keyring_reload_failures_total', 'Keyring reloads refused (invalid file; the running keyring stayed)', [], () => [
      { labels: {}, value: keyring.stats.failures },
    ]);
    this.required = config.auth === 'required';
    const { clockToleranceSec, maxLifetimeSec, issuer, audience } = config.jwt;
    this.verifier = new TokenVerifier(() => keyring.get(), { jwt, clockToleranceSec, maxLifetimeSec, issuer, audience }, clock);
  }

  onModuleDestroy(): void {
    clearInterval(this.flusher);
    this.rejections.flush(true);
  }

  private reject(reason: RejectReason, message: string): AuthDecision {
    let counter = this.rejectedCounts.get(reason);
    if (counter === undefined) {
      counter = this.metrics.rejected.labels(REJECT_LABEL[reason]);
      this.rejectedCounts.set(reason, counter);
    }
    counter.inc();
    // Grouped per reason and detail (the details are a fixed set of verifier messages); bounded either way.
    this.rejections.warn(`${reason}\n${message}`, message, reason);
    return { ok: false, reason };
  }

  authenticate(request: IncomingMessage): AuthDecision {
    return this.authenticateTokens(tokenParams(request.url));
  }

  /** The same decision for tokens found elsewhere in the URL (Jitsi clients' path form). */
  authenticateTokens(tokens: readonly string[]): AuthDecision {
    if (!this.required) return { ok: true, kid: null, claims: {} };
    if (tokens.length === 0) {
      return this.reject(REJECT_TOKEN_MISSING, 'Authentication is configured but rtcstats-token is missing');
    }
    if (tokens.length > 1) {
      return this.reject(REJECT_INVALID_TOKEN, 'JWT authorization failed JsonWebTokenError: rtcstats-token given more than once');
    }
    const result = this.verifier.verify(tokens[0]);
    if (!result.ok) {
      // The detail (which may name the expected issuer or audience) stays here; the client gets the category.
      return this.reject(result.reason, `JWT authorization failed ${result.error.name}: ${result.error.message}`);
    }
    this.usage.record(result.kid);
    return { ok: true, kid: result.kid, claims: result.claims };
  }
}
