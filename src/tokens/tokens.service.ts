import { BadRequestException, Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';

import { TOKEN_PARAM } from '../common/protocol.constants.js';
import type { AppConfig } from '../config/app-config.js';
import { parseDurationSeconds } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { PerKeyJwt } from '../auth/per-key-jwt.js';
import { KeyringService } from '../keyring/keyring.service.js';
import { CLOCK, type Clock } from '../common/clock.js';
import type { CreateTokenDto } from './dto/create-token.dto.js';
import type { TokenResponseDto } from './dto/token-response.dto.js';
import { signAuthToken } from './generate-auth-token.js';

export const DEFAULT_LIFETIME_SEC = 6 * 3600;
export const MIN_LIFETIME_SEC = 60;
/** Clients refresh at this fraction of the lifetime, leaving the rest as margin. */
export const REFRESH_FRACTION = 0.6;
export const NO_SIGNING_KEY_MESSAGE =
  'No signing key is configured: set RTCSTATS_JWT_SECRET or RTCSTATS_KEYRING_FILE (with a "current" key), or leave RTCSTATS_AUTH at required so one is generated at start.';

const iso = (epochSec: number): string => new Date(epochSec * 1000).toISOString();

/** Mints client tokens with the keyring's current key (read per request: the keyring may be swapped live). */
@Injectable()
export class TokensService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keyring: KeyringService,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly jwt: PerKeyJwt,
  ) {}

  create(request: CreateTokenDto): TokenResponseDto {
    const lifetime = this.lifetime(request.expiresIn);
    const current = this.keyring.get()?.current;
    if (current === undefined) throw new ServiceUnavailableException(NO_SIGNING_KEY_MESSAGE);
    const iat = Math.floor(this.clock() / 1000);
    const { issuer, audience } = this.config.jwt;
    const token = signAuthToken(
      this.jwt,
      { user: request.user, session: request.session, conference: request.conference },
      current.key,
      lifetime,
      { kid: current.kid, issuer, audience, issuedAt: iat },
    );
    const response: TokenResponseDto = {
      token,
      kid: current.kid,
      expiresAt: iso(iat + lifetime),
      expiresIn: lifetime,
      refreshAfter: iso(iat + Math.floor(lifetime * REFRESH_FRACTION)),
    };
    const { publicUrl } = this.config.tokens;
    if (publicUrl !== undefined) {
      const url = new URL(publicUrl);
      url.searchParams.set(TOKEN_PARAM, token);
      response.url = url.toString();
    }
    return response;
  }

  /** The lifetime in seconds; out of range is a 400 shaped like the ValidationPipe's. */
  private lifetime(expiresIn: number | string | undefined): number {
    if (expiresIn === undefined) return Math.min(DEFAULT_LIFETIME_SEC, this.config.jwt.maxLifetimeSec);
    const seconds = typeof expiresIn === 'number' ? expiresIn : parseDurationSeconds(expiresIn)!;
    const max = this.config.jwt.maxLifetimeSec;
    if (seconds < MIN_LIFETIME_SEC || seconds > max) {
      throw new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        message: [`expiresIn must be between ${MIN_LIFETIME_SEC} and ${max} seconds (got ${seconds})`],
      });
    }
    return seconds;
  }
}
