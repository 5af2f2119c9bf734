import type { KeyObject } from 'node:crypto';

import type { JwtVerifyOptions } from '@nestjs/jwt';

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
/** Distinct token headers remembered as checked (see TokenVerifier.checkedHeader). */
const MAX_KNOWN_HEADERS = 64;

export interface RtcStatsClaims {
  user?: string;
  session?: string;
  conference?: string;
}

export type VerifyResult =
  | { ok: true; kid: string; claims: RtcStatsClaims; payload: Record<string, unknown> }
  /** reason: what the client is told; error: the detail, for the server log only. */
  | { ok: false; reason: RejectReason; error: { name: string; message: string } };

/** Verifies a token's signature, exp and nbf with `key` (PerKeyJwt: @nestjs/jwt's JwtService). */
export interface JwtVerifier {
  verify(token: string, key: KeyObject, options: JwtVerifyOptions): unknown;
}

export interface TokenVerifierOptions {
  jwt: JwtVerifier;
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

/** jsonwebtoken's errors by category; its other messages (e.g. "jwt audience invalid. expected: ...") are "invalid token". */
function libraryFailure(err: Error): VerifyResult {
  if (err.name === 'TokenExpiredError') return fail(err.message, err.name, REJECT_JWT_EXPIRED);
  if (err.message === 'invalid signature') return fail(err.message, err.name, REJECT_INVALID_SIGNATURE);
  return fail(err.message, err.name);
}

function decodeSegment(segment: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A refusal of a token whose encoded payload is `payload`. The payload is decoded only on the way
 * to a refusal: jsonwebtoken decodes it anyway, and what it accepts is checked to be a JSON object
 * after it. A payload that is not a JSON object is named first, whatever else is wrong (as if it
 * had been checked before the keyring), and jsonwebtoken's JSON.parse message, which quotes the
 * token, never reaches the log.
 */
function refuse(result: VerifyResult, payload: string): VerifyResult {
  return isObject(decodeSegment(payload)) ? result : fail('jwt payload must be a JSON object');
}

/**
 * Verifies client tokens against the keyring (keyring.md, "Verifying a client token").
 * jsonwebtoken (through JwtService) checks the signature, exp and nbf; the header allow-list, kid rules,
 * mandatory exp, iat and lifetime bounds and claim shapes are checked here because it does not.
 */
export class TokenVerifier {
  constructor(
    private readonly keyring: () => Keyring | undefined,
    private readonly options: TokenVerifierOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Encoded headers that passed the header checks, and their kid. */
  private readonly headers = new Map<string, { kid: unknown }>();

  verify(token: string): VerifyResult {
    if (token.length === 0) return fail('jwt must be provided');
    if (token.length > MAX_TOKEN_BYTES) return fail(`jwt longer than ${MAX_TOKEN_BYTES} bytes`);
    const parts = token.split('.');
    if (parts.length !== 3) return fail('jwt malformed');
    const header = this.checkedHeader(parts[0]);
    if ('ok' in header) return header;
    const result = this.verifyAgainstKeyring(token, header.kid);
    return result.ok ? result : refuse(result, parts[1]);
  }

  /** The keyring's verdict on a token whose header passed: its kid's key, or each verifying key in turn. */
  private verifyAgainstKeyring(token: string, kid: unknown): VerifyResult {
    const keyring = this.keyring();
    if (keyring === undefined) return fail('no verifying key configured');
    const now = this.now();
    if (kid !== undefined) {
      if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) return fail('invalid kid');
      const key = keyring.verifyingKey(kid, now);
      if (key === undefined) {
        // keyring.md: a revoked key verifies nothing; say so apart from a kid never (or no longer) in the keyring.
        if (keyring.isRevoked(kid)) return fail('key revoked', undefined, REJECT_KEY_REVOKED);
        return fail('unknown kid', undefined, REJECT_UNKNOWN_KID);
      }
      return this.verifyWith(token, key.kid, key.key, now);
    }
    for (const key of keyring.verifyingKeys(now)) {
      const result = this.verifyWith(token, key.kid, key.key, now);
      if (result.ok || result.reason !== REJECT_INVALID_SIGNATURE) return result;
    }
    return fail('invalid signature', undefined, REJECT_INVALID_SIGNATURE);
  }

  /**
   * The header checks (JSON object, HS256, no forbidden member), or their refusal. Clients of one
   * app send the same few headers (`{"alg":"HS256","typ":"JWT"}`, perhaps with a kid), so a header
   * that passed is remembered by its encoded form rather than decoded again for every token;
   * bounded (forgotten all at once when full), since headers are client input.
   */
  private checkedHeader(segment: string): { kid: unknown } | VerifyResult {
    const known = this.headers.get(segment);
    if (known !== undefined) return known;
    const header = decodeSegment(segment);
    if (!isObject(header)) return fail('invalid token header');
    if (header.alg !== 'HS256') return fail('invalid algorithm');
    for (const h of FORBIDDEN_HEADERS) {
      if (h in header) return fail(`unsupported token header "${h}"`);
    }
    const checked = { kid: 'kid' in header ? header.kid : undefined };
    if (this.headers.size >= MAX_KNOWN_HEADERS) this.headers.clear();
    this.headers.set(segment, checked);
    return checked;
  }

  private verifyWith(token: string, kid: string, key: KeyObject, now: number): VerifyResult {
    const { jwt, clockToleranceSec, maxLifetimeSec, issuer, audience } = this.options;
    const nowSec = Math.floor(now / 1000);
    let payload: unknown;
    // jsonwebtoken's errors are reduced to their name and message (libraryFailure): their stack
    // traces are never read, and capturing one costs more than the rest of a refusal's verification.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      payload = jwt.verify(token, key, {
        algorithms: ['HS256'],
        clockTolerance: clockToleranceSec,
        clockTimestamp: nowSec,
        ...(issuer !== undefined && { issuer }),
        ...(audience !== undefined && { audience }),
      });
    } catch (err) {
      return libraryFailure(err as Error);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    if (!isObject(payload)) return fail('jwt payload must be a JSON object');
    const { exp, iat } = payload;
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
