import crypto, { type KeyObject } from 'node:crypto';

import {
  REJECT_INVALID_SIGNATURE,
  REJECT_INVALID_TOKEN,
  REJECT_JWT_EXPIRED,
  REJECT_KEY_REVOKED,
  REJECT_UNKNOWN_KID,
  type RejectReason,
} from '../common/protocol.constants.js';
import { KID_PATTERN, type Keyring } from '../keyring/keyring.js';

export const MAX_TOKEN_BYTES = 4096;
export const MAX_CLAIM_LENGTH = 256;
const FORBIDDEN_HEADERS = ['crit', 'jku', 'jwk', 'x5u', 'x5c'];

export interface RtcStatsClaims {
  user?: string;
  session?: string;
  conference?: string;
}

export type VerifyResult =
  | { ok: true; kid: string; claims: RtcStatsClaims; payload: Record<string, unknown> }
  /** reason: what the client is told; error: the detail, for the server log only. */
  | { ok: false; reason: RejectReason; error: { name: string; message: string } };

export interface TokenVerifierOptions {
  clockToleranceSec: number;
  maxLifetimeSec: number;
  issuer?: string;
  audience?: string;
}

const fail = (message: string, name = 'JsonWebTokenError', reason: RejectReason = REJECT_INVALID_TOKEN): VerifyResult => ({
  ok: false,
  reason,
  error: { name, message },
});

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegment(segment: string): unknown {
  if (!BASE64URL.test(segment)) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `signature` is the base64url HS256 HMAC of `input` with `key`, compared in constant time. */
function signatureMatches(input: string, signature: string, key: KeyObject): boolean {
  const expected = crypto.createHmac('sha256', key).update(input).digest('base64url');
  return signature.length === expected.length && crypto.timingSafeEqual(Buffer.from(signature, 'latin1'), Buffer.from(expected, 'latin1'));
}

/**
 * Verifies client tokens against the keyring (keyring.md, "Verifying a client token"). HS256
 * only, so the signature, nbf, exp, audience and issuer checks are jsonwebtoken's, done here in
 * its order with its messages and error names (the log lines operators grep for), on the header
 * and payload decoded once: through jsonwebtoken (JwtService) each token was decoded twice and
 * each failure built an Error with a stack trace, about 40% of a handshake's JavaScript time.
 * On top: the header allow-list, kid rules, mandatory exp, iat and lifetime bounds, claim shapes.
 */
export class TokenVerifier {
  constructor(
    private readonly keyring: () => Keyring | undefined,
    private readonly options: TokenVerifierOptions,
    private readonly now: () => number = Date.now,
  ) {}

  verify(token: string): VerifyResult {
    if (token.length === 0) return fail('jwt must be provided');
    if (token.length > MAX_TOKEN_BYTES) return fail(`jwt longer than ${MAX_TOKEN_BYTES} bytes`);
    const parts = token.split('.');
    if (parts.length !== 3) return fail('jwt malformed');
    const header = decodeSegment(parts[0]);
    if (!isObject(header)) return fail('invalid token header');
    if (header.alg !== 'HS256') return fail('invalid algorithm');
    for (const h of FORBIDDEN_HEADERS) {
      if (h in header) return fail(`unsupported token header "${h}"`);
    }
    const payload = decodeSegment(parts[1]);
    if (!isObject(payload)) return fail('jwt payload must be a JSON object');

    const keyring = this.keyring();
    if (keyring === undefined) return fail('no verifying key configured');
    const now = this.now();
    if ('kid' in header) {
      const kid = header.kid;
      if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) return fail('invalid kid');
      const key = keyring.verifyingKey(kid, now);
      if (key === undefined) {
        // keyring.md: a revoked key verifies nothing; say so apart from a kid never (or no longer) in the keyring.
        if (keyring.isRevoked(kid)) return fail('key revoked', undefined, REJECT_KEY_REVOKED);
        return fail('unknown kid', undefined, REJECT_UNKNOWN_KID);
      }
      return this.verifyWith(token, parts[2], payload, key.kid, key.key, now);
    }
    for (const key of keyring.verifyingKeys(now)) {
      const result = this.verifyWith(token, parts[2], payload, key.kid, key.key, now);
      if (result.ok || result.reason !== REJECT_INVALID_SIGNATURE) return result;
    }
    return fail('invalid signature', undefined, REJECT_INVALID_SIGNATURE);
  }

  private verifyWith(token: string, signature: string, payload: Record<string, unknown>, kid: string, key: KeyObject, now: number): VerifyResult {
    const { clockToleranceSec, maxLifetimeSec, issuer, audience } = this.options;
    const nowSec = Math.floor(now / 1000);
    if (!BASE64URL.test(signature)) return fail('invalid token');
    if (signature.length === 0) return fail('jwt signature is required');
    if (!signatureMatches(token.slice(0, token.length - signature.length - 1), signature, key)) {
      return fail('invalid signature', undefined, REJECT_INVALID_SIGNATURE);
    }
    const { nbf, exp, iat } = payload;
    if (nbf !== undefined) {
      if (typeof nbf !== 'number') return fail('invalid nbf value');
      if (nbf > nowSec + clockToleranceSec) return fail('jwt not active', 'NotBeforeError');
    }
    if (exp !== undefined) {
      if (typeof exp !== 'number') return fail('invalid exp value');
      if (nowSec >= exp + clockToleranceSec) return fail('jwt expired', 'TokenExpiredError', REJECT_JWT_EXPIRED);
    }
    if (audience) {
      const target = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (!target.includes(audience)) return fail(`jwt audience invalid. expected: ${audience}`);
    }
    if (issuer && payload.iss !== issuer) return fail(`jwt issuer invalid. expected: ${issuer}`);
    if (typeof exp !== 'number') return fail('jwt exp missing');
    if (iat !== undefined) {
      if (typeof iat !== 'number') return fail('invalid iat value');
      if (iat > nowSec + clockToleranceSec) return fail('jwt issued in the future');
    }
    const from = typeof iat === 'number' ? Math.min(iat, nowSec) : nowSec;
    if (exp - from > maxLifetimeSec + clockToleranceSec) return fail('jwt lifetime exceeds the maximum');
    const claims = extractClaims(payload.rtcStats);
    if (claims === undefined) return fail('invalid rtcStats claims');
    return { ok: true, kid, claims, payload };
  }
}

/** The rtcStats identity claims, or undefined when they have the wrong shape. */
function extractClaims(value: unknown): RtcStatsClaims | undefined {
  if (value === undefined) return {};
  if (!isObject(value)) return undefined;
  const claims: RtcStatsClaims = {};
  for (const name of ['user', 'session', 'conference'] as const) {
    const v = value[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v.length > MAX_CLAIM_LENGTH) return undefined;
    claims[name] = v;
  }
  return claims;
}
