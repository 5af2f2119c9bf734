import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import jwt from 'jsonwebtoken';

import { PerKeyJwt } from '../auth/per-key-jwt.js';
import { TokenVerifier } from '../auth/token-verifier.js';
import { deriveKid, keyringFromSecrets } from '../keyring/keyring.js';
import { generateAuthToken } from '../index.js';

const SECRET = 'app-backend-secret-0123456789-abcdefghij';
const keyring = keyringFromSecrets(SECRET, [], undefined);
const verifier = new TokenVerifier(() => keyring, { jwt: new PerKeyJwt(), clockToleranceSec: 30, maxLifetimeSec: 24 * 3600 });

describe('generateAuthToken (public API, for backends that sign in-process)', () => {
  it('makes a token the collector verifies, with exactly {rtcStats, iat, exp}', () => {
    const token = generateAuthToken({ user: 'u', session: 's', conference: 'c' }, SECRET, 600);
    const result = verifier.verify(token);
    assert.ok(result.ok, !result.ok ? result.error.message : '');
    assert.equal(result.kid, deriveKid(SECRET), 'a token without kid verifies with the matching key');
    assert.deepEqual(result.claims, { user: 'u', session: 's', conference: 'c' });
    assert.deepEqual(Object.keys(result.payload).sort(), ['exp', 'iat', 'rtcStats']);
    assert.equal((result.payload.exp as number) - (result.payload.iat as number), 600);
    assert.deepEqual(jwt.decode(token, { complete: true })!.header, { alg: 'HS256', typ: 'JWT' });
  });

  it('leaves out claims that are not given', () => {
    const payload = jwt.decode(generateAuthToken({ user: 'only-user', session: undefined }, SECRET, '6h')) as jwt.JwtPayload;
    assert.deepEqual(payload.rtcStats, { user: 'only-user' });
    assert.equal(payload.exp! - payload.iat!, 6 * 3600);
  });

  it('is what app backends would write with jsonwebtoken and the plain secret', () => {
    const theirs = jwt.sign({ rtcStats: { user: 'u' }, iat: 1_800_000_000 }, SECRET, { algorithm: 'HS256', expiresIn: 600 });
    const ours = generateAuthToken({ user: 'u' }, SECRET, 600, { issuedAt: 1_800_000_000 });
    assert.equal(ours, theirs);
  });

  it('sets kid, iss, aud and iat when asked', () => {
    const token = generateAuthToken({}, SECRET, 60, { kid: 'k1', issuer: 'iss', audience: 'aud', issuedAt: 1_800_000_000 });
    const { header, payload } = jwt.decode(token, { complete: true }) as jwt.Jwt;
    assert.equal(header.kid, 'k1');
    assert.deepEqual(payload, { rtcStats: {}, iat: 1_800_000_000, exp: 1_800_000_060, iss: 'iss', aud: 'aud' });
  });

  it('is rejected by a collector with another secret', () => {
    const other = keyringFromSecrets('other-secret-0123456789-abcdefghijklmnop', [], undefined);
    const token = generateAuthToken({ user: 'u' }, SECRET, 600);
    const result = new TokenVerifier(() => other, { jwt: new PerKeyJwt(), clockToleranceSec: 30, maxLifetimeSec: 86400 }).verify(token);
    assert.equal(!result.ok && result.error.message, 'invalid signature');
  });
});
