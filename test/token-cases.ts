import crypto from 'node:crypto';

import { deriveKid } from '../src/keyring/keyring.js';
import { OTHER_SECRET, TEST_SECRET } from './helpers.js';

/**
 * The client-token cases of keyring.md ("Bad inputs every verifier test suite must try"), shared
 * by the verifier's unit tests and the WebSocket end-to-end tests. Keyring under test:
 * TEST_SECRET current, OTHER_SECRET previous, NEXT_SECRET next, all from the environment (kids derived).
 */
export const NEXT_SECRET = 'next-secret-0123456789-abcdefghijklmnopq';
export const UNKNOWN_SECRET = 'unknown-secret-0123456789-abcdefghijklm';
export const CURRENT_KID = deriveKid(TEST_SECRET);
export const PREVIOUS_KID = deriveKid(OTHER_SECRET);
export const TOLERANCE_SEC = 30;

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Builds a JWT by hand so malformed and hostile tokens can be expressed. */
export function forge(header: unknown, payload: unknown, secret: string | Buffer | null = TEST_SECRET, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  if (secret === null) return `${input}.`;
  return `${input}.${crypto.createHmac(hash, secret).update(input).digest('base64url')}`;
}

const nowSec = () => Math.floor(Date.now() / 1000);
const claims = () => ({ rtcStats: { user: 'u', session: 's', conference: 'c' }, iat: nowSec(), exp: nowSec() + 600 });
const HS = { alg: 'HS256', typ: 'JWT' };

function flipMiddle(token: string): string {
  const sig = token.slice(token.lastIndexOf('.') + 1);
  const i = Math.floor(sig.length / 2);
  const flipped = sig[i] === 'A' ? 'B' : 'A';
  return token.slice(0, token.length - sig.length) + sig.slice(0, i) + flipped + sig.slice(i + 1);
}

function alteredPayload(): string {
  const good = forge(HS, claims());
  const [h, , s] = good.split('.');
  return `${h}.${b64({ ...claims(), rtcStats: { user: 'admin' } })}.${s}`;
}

const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Each case: a label and a function making the raw query string value(s) (undefined = no parameter). */
export interface TokenCase {
  name: string;
  /** Token values for the rtcstats-token parameter; [] means no parameter. */
  tokens: () => string[];
}

export interface RejectedCase extends TokenCase {
  /** Why it must be refused, in detail: the verifier's message, which the server log line carries. */
  detail: string;
}

export const REJECTED: RejectedCase[] = [
  { name: 'no token', detail: 'rtcstats-token is missing', tokens: () => [] },
  { name: 'empty token', detail: 'jwt must be provided', tokens: () => [''] },
  { name: 'parameter twice', detail: 'rtcstats-token given more than once', tokens: () => [forge(HS, claims()), forge(HS, claims())] },
  { name: '10 KB token', detail: 'jwt longer than 4096 bytes', tokens: () => [forge(HS, { ...claims(), pad: 'x'.repeat(10_000) })] },
  { name: '1 segment', detail: 'jwt malformed', tokens: () => ['abc'] },
  { name: '2 segments', detail: 'jwt malformed', tokens: () => [forge(HS, claims()).split('.').slice(0, 2).join('.')] },
  { name: '4 segments', detail: 'jwt malformed', tokens: () => [`${forge(HS, claims())}.extra`] },
  { name: 'header not base64url JSON', detail: 'invalid token header', tokens: () => [`!!!.${b64(claims())}.sig`] },
  { name: 'header base64 of non-JSON', detail: 'invalid token header', tokens: () => [`${b64('not json')}.${b64(claims())}.sig`] },
  { name: 'payload not JSON', detail: 'jwt payload must be a JSON object', tokens: () => [forge(HS, 'not json')] },
  { name: 'alg none without signature', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'none' }, claims(), null)] },
  { name: 'alg None with signature', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'None' }, claims())] },
  { name: 'alg NONE', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'NONE' }, claims(), null)] },
  { name: 'HS384', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'HS384' }, claims(), TEST_SECRET, 'sha384')] },
  { name: 'HS512', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'HS512' }, claims(), TEST_SECRET, 'sha512')] },
  { name: 'RS256 header', detail: 'invalid algorithm', tokens: () => [forge({ alg: 'RS256' }, claims())] },
  { name: 'key confusion: HS256 signed with a public key PEM', detail: 'invalid signature', tokens: () => [forge(HS, claims(), PUBLIC_PEM)] },
  { name: 'wrong secret', detail: 'invalid signature', tokens: () => [forge(HS, claims(), UNKNOWN_SECRET)] },
  { name: 'one signature character flipped', detail: 'invalid signature', tokens: () => [flipMiddle(forge(HS, claims()))] },
  { name: 'payload altered, old signature kept', detail: 'invalid signature', tokens: () => [alteredPayload()] },
  { name: 'expired beyond tolerance', detail: 'jwt expired', tokens: () => [forge(HS, { ...claims(), iat: nowSec() - 700, exp: nowSec() - TOLERANCE_SEC - 5 })] },
  { name: 'no exp', detail: 'jwt exp missing', tokens: () => [forge(HS, { rtcStats: {}, iat: nowSec() })] },
  { name: 'exp as a string', detail: 'invalid exp value', tokens: () => [forge(HS, { ...claims(), exp: String(nowSec() + 600) })] },
  { name: 'exp years ahead', detail: 'jwt lifetime exceeds the maximum', tokens: () => [forge(HS, { ...claims(), exp: nowSec() + 5 * 365 * 86400 })] },
  { name: 'exp years ahead without iat', detail: 'jwt lifetime exceeds the maximum', tokens: () => [forge(HS, { rtcStats: {}, exp: nowSec() + 5 * 365 * 86400 })] },
  { name: 'nbf in the future', detail: 'jwt not active', tokens: () => [forge(HS, { ...claims(), nbf: nowSec() + 600 })] },
  { name: 'iat in the future', detail: 'jwt issued in the future', tokens: () => [forge(HS, { ...claims(), iat: nowSec() + 600, exp: nowSec() + 1200 })] },
  { name: 'payload is a JSON string', detail: 'jwt payload must be a JSON object', tokens: () => [forge(HS, JSON.stringify('a string'))] },
  { name: 'payload is an array', detail: 'jwt payload must be a JSON object', tokens: () => [forge(HS, [1, 2, 3])] },
  { name: 'payload is a number', detail: 'jwt payload must be a JSON object', tokens: () => [forge(HS, 42)] },
  { name: 'unknown kid', detail: 'unknown kid', tokens: () => [forge({ ...HS, kid: 'nope' }, claims())] },
  { name: 'kid as a number', detail: 'invalid kid', tokens: () => [forge({ ...HS, kid: 7 }, claims())] },
  { name: 'kid as an object', detail: 'invalid kid', tokens: () => [forge({ ...HS, kid: { a: 1 } }, claims())] },
  { name: 'kid as an array', detail: 'invalid kid', tokens: () => [forge({ ...HS, kid: [CURRENT_KID] }, claims())] },
  { name: 'kid ../../etc/passwd', detail: 'invalid kid', tokens: () => [forge({ ...HS, kid: '../../etc/passwd' }, claims())] },
  { name: "kid ' OR 1=1 --", detail: 'invalid kid', tokens: () => [forge({ ...HS, kid: "' OR 1=1 --" }, claims())] },
  { name: 'kid of 10 KB', detail: 'jwt longer than 4096 bytes', tokens: () => [forge({ ...HS, kid: 'k'.repeat(10_000) }, claims())] },
  { name: 'kid names key A, signed with key B', detail: 'invalid signature', tokens: () => [forge({ ...HS, kid: PREVIOUS_KID }, claims(), TEST_SECRET)] },
  { name: 'crit header', detail: 'unsupported token header "crit"', tokens: () => [forge({ ...HS, crit: ['exp'] }, claims())] },
  { name: 'jku header', detail: 'unsupported token header "jku"', tokens: () => [forge({ ...HS, jku: 'https://attacker.example/jwks' }, claims())] },
  { name: 'jwk header', detail: 'unsupported token header "jwk"', tokens: () => [forge({ ...HS, jwk: { kty: 'oct', k: 'AAAA' } }, claims())] },
  { name: 'x5u header', detail: 'unsupported token header "x5u"', tokens: () => [forge({ ...HS, x5u: 'https://attacker.example/cert' }, claims())] },
  { name: 'rtcStats.user as an object', detail: 'invalid rtcStats claims', tokens: () => [forge(HS, { ...claims(), rtcStats: { user: { id: 1 } } })] },
  { name: '100 KB claim', detail: 'jwt longer than 4096 bytes', tokens: () => [forge(HS, { ...claims(), rtcStats: { user: 'u'.repeat(100_000) } })] },
  { name: 'header is an array', detail: 'invalid token header', tokens: () => [forge(['HS256'], claims())] },
];

/**
 * The close reason a client gets for each rejected case: one fixed text per category, never a
 * library's message (jsonwebtoken's name the expected issuer and audience).
 */
const REASONS: Record<string, string> = {
  'no token': 'rtcstats-token missing',
  'expired beyond tolerance': 'jwt expired',
  'wrong secret': 'invalid signature',
  'one signature character flipped': 'invalid signature',
  'payload altered, old signature kept': 'invalid signature',
  'key confusion: HS256 signed with a public key PEM': 'invalid signature',
  'kid names key A, signed with key B': 'invalid signature',
  'unknown kid': 'unknown kid',
};
export const expectedReason = (c: TokenCase): string => REASONS[c.name] ?? 'invalid token';

export interface AcceptedCase extends TokenCase {
  kid: string;
}

export const ACCEPTED: AcceptedCase[] = [
  { name: 'current key, no kid', kid: CURRENT_KID, tokens: () => [forge(HS, claims())] },
  { name: 'current key, with kid', kid: CURRENT_KID, tokens: () => [forge({ ...HS, kid: CURRENT_KID }, claims())] },
  { name: 'previous key, no kid', kid: PREVIOUS_KID, tokens: () => [forge(HS, claims(), OTHER_SECRET)] },
  { name: 'next key, no kid', kid: deriveKid(NEXT_SECRET), tokens: () => [forge(HS, claims(), NEXT_SECRET)] },
  {
    name: 'expired just inside tolerance',
    kid: CURRENT_KID,
    tokens: () => [forge(HS, { ...claims(), iat: nowSec() - 600, exp: nowSec() - TOLERANCE_SEC + 10 })],
  },
  { name: 'no rtcStats claims', kid: CURRENT_KID, tokens: () => [forge(HS, { exp: nowSec() + 60 })] },
];

export const KEYRING_ENV = {
  RTCSTATS_JWT_SECRET: TEST_SECRET,
  RTCSTATS_JWT_PREVIOUS_SECRETS: OTHER_SECRET,
  RTCSTATS_JWT_NEXT_SECRET: NEXT_SECRET,
  RTCSTATS_JWT_CLOCK_TOLERANCE: String(TOLERANCE_SEC),
};
