import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildKeyring, generateKeyringSpec, KID_PATTERN, KeyringError, type KeyringFileSpec } from './keyring.js';
import {
  addApiKey,
  describeChanges,
  introduceKey,
  listKeys,
  promoteKey,
  removeApiKey,
  retireKey,
  revokeKey,
} from './keyring-rotation.js';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const OVERLAP = 24 * 3600 + 30;
const SECRET_A = 'secret-a-0123456789-abcdefghijklmnopqrst';
const SECRET_B = 'secret-b-0123456789-abcdefghijklmnopqrst';
const SECRET_C = 'secret-c-0123456789-abcdefghijklmnopqrst';
const API_KEY = 'api-key-0123456789-abcdefghijklmnopqrstu';

function base(): KeyringFileSpec {
  return { keys: [{ kid: 'a', secret: SECRET_A, state: 'current' }], apiKeys: [{ id: 'backend', key: API_KEY }] };
}

function states(spec: KeyringFileSpec): string {
  return spec.keys.map((k) => `${k.kid}:${k.state}`).join(' ');
}

/** Asserts a refusal by KeyringError whose message matches and never contains a secret. */
function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KeyringError, `expected KeyringError, got ${String(err)}`);
    assert.match(err.message, message);
    for (const s of [SECRET_A, SECRET_B, SECRET_C, API_KEY]) assert.ok(!err.message.includes(s), 'message leaks a secret');
    return true;
  });
}

describe('generateKeyringSpec', () => {
  it('makes a valid keyring with one current key and one API key', () => {
    const spec = generateKeyringSpec(NOW);
    assert.equal(spec.keys.length, 1);
    assert.equal(spec.keys[0].state, 'current');
    assert.match(spec.keys[0].kid, KID_PATTERN);
    assert.match(spec.keys[0].kid, /2026-11-28/);
    assert.match(spec.keys[0].secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(spec.apiKeys?.length, 1);
    buildKeyring(spec, 'test');
  });
});

describe('introduceKey', () => {
  it('adds a generated next key without touching the input', () => {
    const before = base();
    const snapshot = structuredClone(before);
    const after = introduceKey(before, { now: NOW });
    assert.deepEqual(before, snapshot);
    assert.equal(after.keys.length, 2);
    const added = after.keys[1];
    assert.equal(added.state, 'next');
    assert.match(added.kid, /^k-2026-11-28-[0-9a-f]{6}$/);
    assert.match(added.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(after.apiKeys, before.apiKeys);
    buildKeyring(after, 'test');
  });

  it('takes an operator-chosen kid and secret', () => {
    const after = introduceKey(base(), { now: NOW, kid: '2027-02', secret: SECRET_B });
    assert.deepEqual(after.keys[1], { kid: '2027-02', secret: SECRET_B, state: 'next' });
  });

  it('refuses a second next key, a taken or malformed kid, and a secret already in use', () => {
    const withNext = introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B });
    refuses(() => introduceKey(withNext, { now: NOW }), /"b" is already "next"/);
    refuses(() => introduceKey(base(), { now: NOW, kid: 'a' }), /kid "a" already exists/);
    refuses(() => introduceKey(base(), { now: NOW, kid: '../etc/passwd' }), /kid must match/);
    refuses(() => introduceKey(base(), { now: NOW, kid: 'x'.repeat(65) }), /kid must match/);
    refuses(() => introduceKey(base(), { now: NOW, secret: SECRET_A }), /already used by key "a"/);
    refuses(() => introduceKey(base(), { now: NOW, secret: API_KEY }), /already used by API key "backend"/);
  });
});

describe('promoteKey', () => {
  const introduced = () => introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B });

  it('makes next current and the old current previous until now + overlap, exactly', () => {
    const after = promoteKey(introduced(), { now: NOW, overlapSeconds: OVERLAP });
    assert.deepEqual(after.keys, [
      { kid: 'a', secret: SECRET_A, state: 'previous', notAfter: '2026-11-29T12:00:30.000Z' },
      { kid: 'b', secret: SECRET_B, state: 'current' },
    ]);
    assert.equal(Date.parse(after.keys[0].notAfter!) - NOW.getTime(), OVERLAP * 1000);
    buildKeyring(after, 'test');
  });

  it('promotes a named key and leaves other keys as they were', () => {
    const spec: KeyringFileSpec = {
      keys: [
        { kid: 'old', secret: SECRET_C, state: 'previous', notAfter: '2026-11-30T00:00:00.000Z' },
        { kid: 'a', secret: SECRET_A, state: 'current' },
        { kid: 'b', secret: SECRET_B, state: 'next' },
      ],
    };
    const after = promoteKey(spec, { now: NOW, overlapSeconds: 60, kid: 'b' });
    assert.equal(states(after), 'old:previous a:previous b:current');
    assert.equal(after.keys[0].notAfter, '2026-11-30T00:00:00.000Z');
    assert.equal(after.keys[1].notAfter, '2026-11-28T12:01:00.000Z');
  });

  it('rolls back to an unexpired previous key, dropping its notAfter', () => {
    const promoted = promoteKey(introduced(), { now: NOW, overlapSeconds: OVERLAP });
    const back = promoteKey(promoted, { now: NOW, overlapSeconds: OVERLAP, kid: 'a' });
    assert.deepEqual(back.keys[0], { kid: 'a', secret: SECRET_A, state: 'current' });
    assert.equal(back.keys[1].state, 'previous');
    const later = new Date(NOW.getTime() + (OVERLAP + 1) * 1000);
    refuses(() => promoteKey(promoted, { now: later, overlapSeconds: OVERLAP, kid: 'a' }), /"a" expired at/);
  });

  it('refuses without a next key, for the current, a revoked or an unknown key, and with two next keys', () => {
    refuses(() => promoteKey(base(), { now: NOW, overlapSeconds: OVERLAP }), /no "next" key to promote/);
    refuses(() => promoteKey(introduced(), { now: NOW, overlapSeconds: OVERLAP, kid: 'a' }), /"a" is already current/);
    const revoked = revokeKey(introduced(), 'b');
    refuses(() => promoteKey(revoked, { now: NOW, overlapSeconds: OVERLAP, kid: 'b' }), /"b" is revoked/);
    refuses(() => promoteKey(introduced(), { now: NOW, overlapSeconds: OVERLAP, kid: 'zz' }), /no key with kid "zz"/);
    const twoNext: KeyringFileSpec = { keys: [...introduced().keys, { kid: 'c', secret: SECRET_C, state: 'next' }] };
    refuses(() => promoteKey(twoNext, { now: NOW, overlapSeconds: OVERLAP }), /several "next" keys \(b, c\)/);
    refuses(() => promoteKey(introduced(), { now: NOW, overlapSeconds: -1 }), /overlap/);
  });
});

describe('retireKey', () => {
  it('introduce -> promote -> retire leaves exactly the new key, current', () => {
    const introduced = introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B });
    const promoted = promoteKey(introduced, { now: NOW, overlapSeconds: OVERLAP });
    const retired = retireKey(promoted, 'a');
    assert.deepEqual(retired.keys, [{ kid: 'b', secret: SECRET_B, state: 'current' }]);
    assert.deepEqual(retired.apiKeys, base().apiKeys);
    assert.equal(buildKeyring(retired, 'test').current?.kid, 'b');
  });

  it('removes a next or revoked key', () => {
    const introduced = introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B });
    assert.equal(states(retireKey(introduced, 'b')), 'a:current');
    assert.equal(states(retireKey(revokeKey(introduced, 'b'), 'b')), 'a:current');
  });

  it('refuses the current key and an unknown kid', () => {
    refuses(() => retireKey(base(), 'a'), /"a" is current: introduce and promote/);
    refuses(() => retireKey(base(), 'nope'), /no key with kid "nope"/);
  });
});

describe('revokeKey', () => {
  const promoted = () =>
    promoteKey(introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B }), { now: NOW, overlapSeconds: OVERLAP });

  it('marks a previous key revoked', () => {
    const after = revokeKey(promoted(), 'a');
    assert.equal(states(after), 'a:revoked b:current');
    buildKeyring(after, 'test');
  });

  it('refuses the current key, an already revoked key and an unknown kid', () => {
    refuses(() => revokeKey(promoted(), 'b'), /"b" is current: introduce and promote a new key, then revoke "b"/);
    refuses(() => revokeKey(revokeKey(promoted(), 'a'), 'a'), /already revoked/);
    refuses(() => revokeKey(promoted(), 'nope'), /no key with kid "nope"/);
  });
});

describe('API keys', () => {
  it('adds and removes API keys by id', () => {
    const added = addApiKey(base(), { id: 'backend-b', key: SECRET_C });
    assert.deepEqual(added.apiKeys?.map((a) => a.id), ['backend', 'backend-b']);
    assert.match(addApiKey(base(), { id: 'gen' }).apiKeys![1].key, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(removeApiKey(added, 'backend').apiKeys, [{ id: 'backend-b', key: SECRET_C, scopes: ['tokens'] }]);
    assert.deepEqual(addApiKey(base(), { id: 'ops', scopes: ['admin'] }).apiKeys![1].scopes, ['admin']);
    refuses(() => addApiKey(base(), { id: 'ops', scopes: ['root'] }), /API key "ops": scopes must be a non-empty array of tokens, admin/);
    buildKeyring(added, 'test');
  });

  it('refuses a duplicate or malformed id, a reused secret and an unknown id', () => {
    refuses(() => addApiKey(base(), { id: 'backend' }), /API key "backend" already exists/);
    refuses(() => addApiKey(base(), { id: 'a b' }), /id must match/);
    refuses(() => addApiKey(base(), { id: 'x', key: SECRET_A }), /already used by key "a"/);
    refuses(() => removeApiKey(base(), 'nope'), /no API key with id "nope"/);
  });
});

describe('listKeys and describeChanges', () => {
  const promoted = promoteKey(introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B }), {
    now: NOW,
    overlapSeconds: OVERLAP,
  });

  it('lists kids, states and expiry, with the verifier boundary, and never a secret', () => {
    const notAfter = new Date(NOW.getTime() + OVERLAP * 1000);
    assert.deepEqual(listKeys(promoted, notAfter), [
      { kid: 'a', state: 'previous', notAfter: notAfter.toISOString(), expired: false },
      { kid: 'b', state: 'current', notAfter: undefined, expired: false },
    ]);
    assert.equal(listKeys(promoted, new Date(notAfter.getTime() + 1))[0].expired, true);
    const text = JSON.stringify(listKeys(promoted, NOW));
    for (const s of [SECRET_A, SECRET_B, API_KEY]) assert.ok(!text.includes(s));
  });

  it('describes changes by kid and state only', () => {
    const lines = describeChanges(base(), retireKey(addApiKey(promoted, { id: 'new', key: SECRET_C }), 'a'));
    assert.deepEqual(lines, ['removed a (current)', 'added b (current)', 'added API key new (tokens)']);
    const immediate = promoteKey(introduceKey(base(), { now: NOW, kid: 'b', secret: SECRET_B }), { now: NOW, overlapSeconds: 0 });
    assert.deepEqual(describeChanges(base(), immediate), [
      'changed a (current) -> a (previous, until 2026-11-28T12:00:00.000Z)',
      'added b (current)',
    ]);
  });
});
