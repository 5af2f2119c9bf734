import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildKeyring, deriveKid, generateSecret, KeyringError, keyringFromSecrets } from './keyring.js';

const S1 = 'a'.repeat(32);
const S2 = 'b'.repeat(40);
const S3 = 'c'.repeat(33);

describe('Keyring', () => {
  it('orders trial keys current, next, previous and skips revoked and expired keys', () => {
    const now = Date.parse('2026-11-28T00:00:00Z');
    const k = buildKeyring(
      {
        keys: [
          { kid: 'old', secret: S1, state: 'previous', notAfter: '2026-11-27T00:00:00Z' },
          { kid: 'prev', secret: S1 + 'x', state: 'previous' },
          { kid: 'cur', secret: S2, state: 'current' },
          { kid: 'nxt', secret: S3, state: 'next' },
          { kid: 'rev', secret: S3 + 'y', state: 'revoked' },
        ],
      },
      'test',
    );
    assert.deepEqual(k.verifyingKeys(now).map((x) => x.kid), ['cur', 'nxt', 'prev']);
    assert.equal(k.verifyingKey('old', now), undefined);
    assert.equal(k.verifyingKey('rev', now), undefined);
    assert.equal(k.verifyingKey('old', Date.parse('2026-11-26T00:00:00Z'))?.kid, 'old');
    assert.equal(k.current?.kid, 'cur');
  });

  const invalid: [unknown, RegExp][] = [
    [[], /JSON object/],
    [{ keys: [] }, /non-empty/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'next' }] }, /exactly one key must be "current" \(found 0\)/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'current' }, { kid: 'b', secret: S2, state: 'current' }] }, /found 2/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'current' }, { kid: 'a', secret: S2, state: 'next' }] }, /duplicate kid "a"/],
    [{ keys: [{ kid: 'a', secret: 'short', state: 'current' }] }, /key "a": secret is 5 bytes, at least 32/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'active' }] }, /key "a": state must be one of/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'current', notAfter: 'tomorrow' }] }, /key "a": notAfter/],
    [{ keys: [{ kid: '../etc', secret: S1, state: 'current' }] }, /keys\[0\]: kid must match/],
    [{ keys: [{ kid: 'a', secret: S1, state: 'current' }], apiKeys: [{ id: 'x', key: 'short' }] }, /API key "x"/],
  ];
  for (const [spec, message] of invalid) {
    it(`refuses ${JSON.stringify(spec).slice(0, 80)}`, () => {
      assert.throws(() => buildKeyring(spec, 'test'), (e: Error) => e instanceof KeyringError && message.test(e.message));
    });
  }

  it('never puts a secret in an error message', () => {
    const secret = 'p'.repeat(20);
    assert.throws(() => buildKeyring({ keys: [{ kid: 'a', secret, state: 'current' }] }, 't'), (e: Error) => !e.message.includes(secret));
  });

  it('gives API keys scopes: tokens by default, admin only when listed, nothing unknown', () => {
    const key = (extra: object) => ({ keys: [{ kid: 'a', secret: S1, state: 'current' }], apiKeys: [{ id: 'x', key: S2, ...extra }] });
    assert.deepEqual(buildKeyring(key({}), 't').apiKeys[0].scopes, ['tokens']);
    assert.deepEqual(buildKeyring(key({ scopes: ['admin'] }), 't').apiKeys[0].scopes, ['admin']);
    assert.deepEqual(buildKeyring(key({ scopes: ['tokens', 'admin'] }), 't').apiKeys[0].scopes, ['tokens', 'admin']);
    for (const scopes of [['root'], 'admin', [1], ['tokens', 'Admin'], []]) {
      assert.throws(
        () => buildKeyring(key({ scopes }), 't'),
        (e: Error) => e instanceof KeyringError && /^API key "x": scopes must be a non-empty array of tokens, admin$/.test(e.message),
        JSON.stringify(scopes),
      );
    }
    assert.deepEqual(keyringFromSecrets(S1, [], undefined).apiKeys, []);
  });

  it('builds an environment keyring with derived, stable kids', () => {
    const k = keyringFromSecrets(S1, [S2], S3);
    assert.equal(k.current?.kid, deriveKid(S1));
    assert.equal(deriveKid(S1), deriveKid(S1));
    assert.notEqual(deriveKid(S1), deriveKid(S2));
    assert.throws(() => keyringFromSecrets('0123456789', [], undefined), /RTCSTATS_JWT_SECRET is 10 bytes, at least 32/);
    assert.throws(() => keyringFromSecrets(S1, ['short'], undefined), /RTCSTATS_JWT_PREVIOUS_SECRETS\[0\] is 5 bytes/);
    assert.throws(() => keyringFromSecrets(S1, [S1], undefined), /repeats the secret/);
  });

  it('identical content has the same fingerprint', () => {
    const spec = { keys: [{ kid: 'a', secret: S1, state: 'current' }] };
    assert.equal(buildKeyring(spec, 'x').fingerprint, buildKeyring(structuredClone(spec), 'y').fingerprint);
  });

  it('generates 256-bit base64url secrets', () => {
    const s = generateSecret();
    assert.match(s, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(s, generateSecret());
  });
});
