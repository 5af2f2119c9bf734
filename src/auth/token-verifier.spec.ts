import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PerKeyJwt } from './per-key-jwt.js';
import { buildKeyring, keyringFromSecrets } from '../keyring/keyring.js';
import { OTHER_SECRET, TEST_SECRET } from '../../test/helpers.js';
import { ACCEPTED, CURRENT_KID, expectedReason, forge, NEXT_SECRET, REJECTED, TOLERANCE_SEC } from '../../test/token-cases.js';
import { TokenVerifier, type VerifyResult } from './token-verifier.js';
import { tokenParams } from './connection-authenticator.js';

const keyring = keyringFromSecrets(TEST_SECRET, [OTHER_SECRET], NEXT_SECRET);
const options = { jwt: new PerKeyJwt(), clockToleranceSec: TOLERANCE_SEC, maxLifetimeSec: 24 * 3600 };
/** Why a token was refused, in detail ('accepted' if it was not), so every refusal is checked for its reason. */
const detail = (r: VerifyResult): string => (r.ok ? 'accepted' : r.error.message);

describe('TokenVerifier', () => {
  const verifier = new TokenVerifier(() => keyring, options);

  for (const c of REJECTED) {
    const tokens = c.tokens();
    if (tokens.length !== 1) continue; // parameter-level cases: see tokenParams below
    it(`rejects: ${c.name}`, () => {
      const result = verifier.verify(tokens[0]);
      assert.ok(!result.ok, `${c.name} must be rejected`);
      assert.equal(result.reason, expectedReason(c), `${c.name}: ${result.error.name}: ${result.error.message}`);
      assert.equal(result.error.message, c.detail, `${c.name} must be rejected for its own reason`);
    });
  }

  for (const c of ACCEPTED) {
    it(`accepts: ${c.name}`, () => {
      const result = verifier.verify(c.tokens()[0]);
      assert.ok(result.ok, `${c.name}: ${!result.ok && result.error.message}`);
      assert.equal(result.kid, c.kid);
    });
  }

  it('returns the rtcStats claims', () => {
    const r = verifier.verify(forge({ alg: 'HS256' }, { rtcStats: { user: 'u', session: 's' }, exp: Date.now() / 1000 + 60 }));
    assert.ok(r.ok);
    assert.deepEqual(r.claims, { user: 'u', session: 's' });
  });

  it('names errors the way operators grep for them', () => {
    const expired = verifier.verify(forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 }));
    assert.deepEqual(!expired.ok && expired.error, { name: 'TokenExpiredError', message: 'jwt expired' });
    const malformed = verifier.verify('a.b');
    assert.deepEqual(!malformed.ok && malformed.error, { name: 'JsonWebTokenError', message: 'jwt malformed' });
    const badSig = verifier.verify(forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) + 60 }, 'x'.repeat(40)));
    assert.deepEqual(!badSig.ok && badSig.error, { name: 'JsonWebTokenError', message: 'invalid signature' });
  });

  it('uses the injected clock for exp, nbf and iat', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const clocked = new TokenVerifier(() => keyring, options, () => now);
    const t0 = now / 1000;
    const token = forge({ alg: 'HS256' }, { iat: t0, nbf: t0 + 100, exp: t0 + 1000 });
    assert.equal(detail(clocked.verify(token)), 'jwt not active');
    now += 100_000;
    assert.equal(clocked.verify(token).ok, true);
    now += (900 + TOLERANCE_SEC - 1) * 1000;
    assert.equal(clocked.verify(token).ok, true, 'inside tolerance');
    now += 2000;
    assert.equal(detail(clocked.verify(token)), 'jwt expired');
  });

  it('enforces the maximum token lifetime', () => {
    const short = new TokenVerifier(() => keyring, { ...options, clockToleranceSec: 0, maxLifetimeSec: 3600 });
    const t0 = Math.floor(Date.now() / 1000);
    assert.equal(short.verify(forge({ alg: 'HS256' }, { iat: t0, exp: t0 + 3600 })).ok, true);
    assert.equal(detail(short.verify(forge({ alg: 'HS256' }, { iat: t0, exp: t0 + 3601 }))), 'jwt lifetime exceeds the maximum');
  });

  it('checks issuer and audience when configured', () => {
    const strict = new TokenVerifier(() => keyring, { ...options, issuer: 'app', audience: 'rtcstats' });
    const exp = Math.floor(Date.now() / 1000) + 60;
    assert.equal(strict.verify(forge({ alg: 'HS256' }, { exp, iss: 'app', aud: 'rtcstats' })).ok, true);
    for (const payload of [{ exp, iss: 'other', aud: 'rtcstats' }, { exp, iss: 'app', aud: 'x' }, { exp }]) {
      const r = strict.verify(forge({ alg: 'HS256' }, payload));
      assert.ok(!r.ok, JSON.stringify(payload));
      // The reason is what a client sees: it must not name what the server expects.
      assert.equal(r.reason, 'invalid token');
      assert.match(r.error.message, /expected: (app|rtcstats)/, 'the detail (server log) does');
    }
  });

  it('tells a revoked kid (reason key revoked) from an unknown one and from a retired previous key', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const ring = buildKeyring(
      {
        keys: [
          { kid: 'kb', secret: TEST_SECRET, state: 'current' },
          { kid: 'ka', secret: OTHER_SECRET, state: 'revoked' },
          { kid: 'kc', secret: NEXT_SECRET, state: 'previous', notAfter: '2025-12-31T00:00:00Z' },
        ],
      },
      'test',
    );
    const v = new TokenVerifier(() => ring, options, () => now);
    const exp = now / 1000 + 60;
    const revoked = v.verify(forge({ alg: 'HS256', kid: 'ka' }, { exp }, OTHER_SECRET));
    assert.deepEqual(!revoked.ok && [revoked.reason, revoked.error.message], ['key revoked', 'key revoked']);
    const unknown = v.verify(forge({ alg: 'HS256', kid: 'kz' }, { exp }, OTHER_SECRET));
    assert.deepEqual(!unknown.ok && [unknown.reason, unknown.error.message], ['unknown kid', 'unknown kid']);
    const retired = v.verify(forge({ alg: 'HS256', kid: 'kc' }, { exp }, NEXT_SECRET));
    assert.deepEqual(!retired.ok && retired.reason, 'unknown kid', 'a previous key past notAfter is dropped, not revoked');
    // Without a kid a revoked key is simply not tried (no fallback reveals which key signed).
    const noKid = v.verify(forge({ alg: 'HS256' }, { exp }, OTHER_SECRET));
    assert.deepEqual(!noKid.ok && noKid.reason, 'invalid signature');
  });

  it('names a payload that is not a JSON object before any key or signature problem', () => {
    // The payload is decoded only on the way to a refusal: what it says must not depend on that.
    const notJson = { header: { alg: 'HS256', typ: 'JWT' }, payload: 'not json' };
    const cases: [string, string][] = [
      ['wrong secret, typ JWT', forge(notJson.header, notJson.payload, 'x'.repeat(40))],
      ['wrong secret, no typ', forge({ alg: 'HS256' }, [1, 2], 'x'.repeat(40))],
      ['unknown kid', forge({ alg: 'HS256', kid: 'nope' }, 42)],
      ['invalid kid', forge({ alg: 'HS256', kid: 7 }, 'not json')],
      ['right secret, typ JWT', forge(notJson.header, notJson.payload)],
    ];
    for (const [name, token] of cases) {
      const r = verifier.verify(token);
      assert.deepEqual(!r.ok && [r.reason, r.error.message], ['invalid token', 'jwt payload must be a JSON object'], name);
    }
    const none = new TokenVerifier(() => undefined, options);
    assert.equal(detail(none.verify(forge(notJson.header, notJson.payload))), 'jwt payload must be a JSON object');
  });

  it('checks every header, however many distinct ones it has seen', () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const v = new TokenVerifier(() => keyring, options);
    for (let round = 0; round < 2; round++) {
      // More distinct valid headers than are remembered, then the same again: each answer is the same.
      for (let i = 0; i < 100; i++) {
        const r = v.verify(forge({ alg: 'HS256', typ: 'JWT', n: i }, { exp }));
        assert.ok(r.ok, `header ${i}, round ${round}: ${!r.ok && r.error.message}`);
      }
      assert.equal(detail(v.verify(forge({ alg: 'HS256', kid: 'nope' }, { exp }))), 'unknown kid');
      assert.equal(detail(v.verify(forge({ alg: 'HS256', kid: CURRENT_KID }, { exp }))), 'accepted');
      assert.equal(detail(v.verify(forge({ alg: 'HS256', crit: ['exp'] }, { exp }))), 'unsupported token header "crit"');
      assert.equal(detail(v.verify(forge({ alg: 'none' }, { exp }, null))), 'invalid algorithm');
    }
  });

  it('rejects everything when no keyring is loaded', () => {
    const none = new TokenVerifier(() => undefined, options);
    assert.equal(detail(none.verify(forge({ alg: 'HS256', kid: CURRENT_KID }, { exp: Date.now() / 1000 + 60 }))), 'no verifying key configured');
  });
});

describe('tokenParams', () => {
  it('returns every rtcstats-token value, decoded', () => {
    assert.deepEqual(tokenParams('/x'), []);
    assert.deepEqual(tokenParams('/x?a=1'), []);
    assert.deepEqual(tokenParams('/x?rtcstats-token='), ['']);
    assert.deepEqual(tokenParams('/x?rtcstats-token=a&rtcstats-token=b'), ['a', 'b']);
    assert.deepEqual(tokenParams('/x?rtcstats%2Dtoken=a%2Eb'), ['a.b']);
    assert.deepEqual(tokenParams('/x?rtcstats-token'), ['']);
    assert.deepEqual(tokenParams('/x?a=b&rtcstats-token=t.u.v&&rtcstats-tokens=x&x=rtcstats-token=y'), ['t.u.v']);
    assert.deepEqual(tokenParams('/x?rtcstats-token=a+b'), ['a b']);
    assert.deepEqual(tokenParams('/x?rtcstats-token=a=b'), ['a=b']);
    // The same answers as URLSearchParams, with or without anything to decode.
    for (const q of ['rtcstats-token=a&rtcstats-token=', '&&rtcstats-token=x.y.z&', 'rtcstats-token=%41&rtcstats-token=b', 'Rtcstats-token=a']) {
      assert.deepEqual(tokenParams(`/p?${q}`), new URLSearchParams(q).getAll('rtcstats-token'), q);
    }
  });
});
