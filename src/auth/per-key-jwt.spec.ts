import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import jwt from 'jsonwebtoken';

import { PerKeyJwt } from './per-key-jwt.js';
import { TokenVerifier } from './token-verifier.js';
import { keyringFromSecrets, secretKey } from '../keyring/keyring.js';

const SECRET = 'per-key-jwt-secret-0123456789-abcdefghij';
const OTHER = 'per-key-jwt-other-0123456789-abcdefghijk';

describe('PerKeyJwt (JwtService per keyring key)', () => {
  it('signs tokens that jsonwebtoken verifies with the plain secret, and verifies theirs', () => {
    const perKey = new PerKeyJwt();
    const key = secretKey(SECRET);
    const ours = perKey.sign({ rtcStats: { user: 'u' } }, key, { algorithm: 'HS256', expiresIn: 60, keyid: 'k' });
    assert.equal((jwt.verify(ours, SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload).rtcStats.user, 'u');
    const theirs = jwt.sign({ a: 1 }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
    assert.equal((perKey.verify(theirs, key, { algorithms: ['HS256'] }) as { a: number }).a, 1);
    assert.throws(() => perKey.verify(theirs, secretKey(OTHER), { algorithms: ['HS256'] }), { name: 'JsonWebTokenError', message: 'invalid signature' });
  });

  it('is what the verifier calls, once per key tried, with the keyring KeyObjects', () => {
    const keyring = keyringFromSecrets(SECRET, [OTHER], undefined);
    const calls: unknown[] = [];
    const perKey = new PerKeyJwt();
    const spy = { verify: (token: string, key: Parameters<PerKeyJwt['verify']>[1], options: object) => (calls.push(key), perKey.verify(token, key, options)) };
    const verifier = new TokenVerifier(() => keyring, { jwt: spy, clockToleranceSec: 30, maxLifetimeSec: 86400 });
    const token = jwt.sign({ rtcStats: {} }, OTHER, { algorithm: 'HS256', expiresIn: 60 });
    assert.ok(verifier.verify(token).ok);
    // No kid: current first (bad signature), then previous.
    assert.deepEqual(calls, [keyring.keys[0].key, keyring.keys[1].key]);
  });

  it("is called without capturing stack traces for its errors (never read), and the process's limit stays", () => {
    const keyring = keyringFromSecrets(SECRET, [], undefined);
    const thrown: Error[] = [];
    const perKey = new PerKeyJwt();
    const spy = {
      verify: (token: string, key: Parameters<PerKeyJwt['verify']>[1], options: object) => {
        try {
          return perKey.verify(token, key, options);
        } catch (err) {
          thrown.push(err as Error);
          throw err;
        }
      },
    };
    const verifier = new TokenVerifier(() => keyring, { jwt: spy, clockToleranceSec: 30, maxLifetimeSec: 86400 });
    const limit = Error.stackTraceLimit;
    const wrongKey = verifier.verify(jwt.sign({ rtcStats: {} }, OTHER, { algorithm: 'HS256', expiresIn: 60 }));
    const expired = verifier.verify(jwt.sign({ rtcStats: {}, exp: Math.floor(Date.now() / 1000) - 3600 }, SECRET, { algorithm: 'HS256' }));
    assert.deepEqual([wrongKey, expired].map((r) => !r.ok && r.error), [
      { name: 'JsonWebTokenError', message: 'invalid signature' },
      { name: 'TokenExpiredError', message: 'jwt expired' },
    ]);
    assert.deepEqual(thrown.map((e) => [e.name, e.stack?.includes('\n    at ')]), [['JsonWebTokenError', false], ['TokenExpiredError', false]]);
    assert.equal(Error.stackTraceLimit, limit);
    assert.match(new Error('after').stack ?? '', /\n    at /);
  });
});
