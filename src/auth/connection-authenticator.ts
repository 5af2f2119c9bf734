import type { IncomingMessage } from 'node:http';

import { Inject, Injectable, Logger } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { REJECT_INVALID_TOKEN, REJECT_TOKEN_MISSING, type RejectReason, TOKEN_PARAM } from '../common/protocol.constants.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { KeyUsage } from './key-usage.js';
import { PerKeyJwt } from './per-key-jwt.js';
import { type RtcStatsClaims, TokenVerifier } from './token-verifier.js';

export type AuthDecision =
  | { ok: true; kid: string | null; claims: RtcStatsClaims }
  | { ok: false; reason: RejectReason };

/** The rtcstats-token values of a request URL (decoded), in order. */
export function tokenParams(url: string | undefined): string[] {
  const q = url?.indexOf('?') ?? -1;
  if (q === -1) return [];
  return new URLSearchParams(url!.slice(q + 1)).getAll(TOKEN_PARAM);
}

/**
 * Decides, once during the WebSocket handshake, whether a connection may record.
 * Nest guards do not run on connect (so this is not one): the gateway calls it from handleConnection.
 * The log lines are verbatim from the protocol contract: operators' guides quote them.
 */
@Injectable()
export class ConnectionAuthenticator {
  private readonly logger = new Logger('Auth');
  private readonly verifier: TokenVerifier;
  private readonly required: boolean;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    keyring: KeyringService,
    private readonly usage: KeyUsage,
    jwt: PerKeyJwt,
  ) {
    this.required = config.auth === 'required';
    this.verifier = new TokenVerifier(() => keyring.get(), {
      jwt,
      clockToleranceSec: config.jwt.clockToleranceSec,
      maxLifetimeSec: config.jwt.maxLifetimeSec,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
    });
  }

  authenticate(request: IncomingMessage): AuthDecision {
    return this.authenticateTokens(tokenParams(request.url));
  }

  /** The same decision for tokens found elsewhere in the URL (Jitsi clients' path form). */
  authenticateTokens(tokens: readonly string[]): AuthDecision {
    if (!this.required) return { ok: true, kid: null, claims: {} };
    if (tokens.length === 0) {
      this.logger.warn('Authentication is configured but rtcstats-token is missing');
      return { ok: false, reason: REJECT_TOKEN_MISSING };
    }
    if (tokens.length > 1) {
      this.logger.warn('JWT authorization failed JsonWebTokenError: rtcstats-token given more than once');
      return { ok: false, reason: REJECT_INVALID_TOKEN };
    }
    const result = this.verifier.verify(tokens[0]);
    if (!result.ok) {
      // The detail (which may name the expected issuer or audience) stays here; the client gets the category.
      this.logger.warn(`JWT authorization failed ${result.error.name}: ${result.error.message}`);
      return { ok: false, reason: result.reason };
    }
    this.usage.record(result.kid);
    return { ok: true, kid: result.kid, claims: result.claims };
  }
}
