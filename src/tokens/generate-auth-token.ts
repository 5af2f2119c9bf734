import type { KeyObject } from 'node:crypto';

import type { JwtSignOptions } from '@nestjs/jwt';

import { secretKey } from '../keyring/keyring.js';
import { PerKeyJwt } from '../auth/per-key-jwt.js';
import type { RtcStatsClaims } from '../auth/token-verifier.js';

export interface GenerateAuthTokenOptions {
  /** Key id for the JWT header; omit when the collector knows the secret without a kid. */
  kid?: string;
  issuer?: string;
  audience?: string;
  /** The iat claim (epoch seconds), and the start of `expiresIn`; default: now. */
  issuedAt?: number;
}

/** Signs with `key` (PerKeyJwt: @nestjs/jwt's JwtService). */
export type JwtSigner = Pick<PerKeyJwt, 'sign'>;

/** Signs a client token with `jwt` (the collector passes its PerKeyJwt provider). */
export function signAuthToken(
  jwt: JwtSigner,
  rtcStatsClaims: RtcStatsClaims,
  key: KeyObject,
  expiresIn: number | string,
  options: GenerateAuthTokenOptions = {},
): string {
  const rtcStats: RtcStatsClaims = {};
  for (const name of ['user', 'session', 'conference'] as const) {
    if (rtcStatsClaims[name] !== undefined) rtcStats[name] = rtcStatsClaims[name];
  }
  const payload = options.issuedAt === undefined ? { rtcStats } : { rtcStats, iat: options.issuedAt };
  return jwt.sign(payload, key, {
    algorithm: 'HS256',
    expiresIn: expiresIn as JwtSignOptions['expiresIn'],
    ...(options.kid !== undefined && { keyid: options.kid }),
    ...(options.issuer !== undefined && { issuer: options.issuer }),
    ...(options.audience !== undefined && { audience: options.audience }),
  });
}

const standalone = new PerKeyJwt();

/**
 * Signs a client token the way the collector expects: HS256, claims
 * `{rtcStats: {user, session, conference}, iat, exp}`. For app backends that sign in-process.
 * `expiresIn` is seconds or a duration string such as "6h".
 */
export function generateAuthToken(
  rtcStatsClaims: RtcStatsClaims,
  secret: string | KeyObject,
  expiresIn: number | string,
  options: GenerateAuthTokenOptions = {},
): string {
  return signAuthToken(standalone, rtcStatsClaims, typeof secret === 'string' ? secretKey(secret) : secret, expiresIn, options);
}
