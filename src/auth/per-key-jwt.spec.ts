import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import jwt from 'jsonwebtoken';

import { PerKeyJwt } from './per-key-jwt.js';
import { TokenVerifier } from './token-verifier.js';
import { keyringFromSecrets, secretKey } from '../keyring/keyring.js';

const SECRET = 'per-key-jwt-secret-0123456789-abcdefghij';
const OTHER = 'per-key-jwt-other-0123456789-abcdefghijk';

describe('PerKeyJwt (JwtService per keyring key)', () => {
  it('signs tokens that jsonwebtoken verifies with the plain secret, and the TokenVerifier accepts', () => {
    const perKey = new PerKeyJwt();
    const key = secretKey(SECRET);
    const ours = perKey.sign({ rtcStats: { user: 'u' } }, key, { algorithm: 'HS256', expiresIn: 60, keyid: 'k' });
    assert.equal((jwt.verify(ours, SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload).rtcStats.user, 'u');
    const keyring = keyringFromSecrets(SECRET, [], undefined);
    const unkeyed = perKey.sign({ rtcStats: { user: 'u' } }, key, { algorithm: 'HS256', expiresIn: 60 });
    const result = new TokenVerifier(() => keyring, { clockToleranceSec: 30, maxLifetimeSec: 86400 }).verify(unkeyed);
    assert.ok(result.ok && result.claims.user === 'u');
    assert.throws(() => jwt.verify(ours, OTHER, { algorithms: ['HS256'] }), { name: 'JsonWebTokenError', message: 'invalid signature' });
  });
});
