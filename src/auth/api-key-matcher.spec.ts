import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ApiKeyMatcher } from './api-key-matcher.js';

const A = 'api-key-a-0123456789-abcdefghijklmnopqrs';
const B = 'api-key-b-0123456789-abcdefghijklmnopqrs';
const keys = [
  { id: 'a', key: Buffer.from(A), scopes: ['tokens' as const] },
  { id: 'b', key: Buffer.from(B), scopes: ['admin' as const] },
];

describe('ApiKeyMatcher', () => {
  const matcher = new ApiKeyMatcher(keys);

  it('names the key that matches, whichever position it has (rotation: several keys valid at once)', () => {
    assert.equal(matcher.match(Buffer.from(A))?.id, 'a');
    assert.equal(matcher.match(Buffer.from(B))?.id, 'b');
    assert.deepEqual(matcher.match(Buffer.from(B))?.scopes, ['admin']);
    assert.equal(matcher.size, 2);
  });

  const nearMisses: [string, string][] = [
    ['empty', ''],
    ['trailing space', `${A} `],
    ['leading space', ` ${A}`],
    ['last character dropped', A.slice(0, -1)],
    ['one character changed', `${A.slice(0, -1)}t`],
    ['different case', A.toUpperCase()],
    ['both keys joined', `${A},${B}`],
    ['prefix of a key', A.slice(0, 16)],
    ['a much longer value', A.repeat(100)],
  ];
  for (const [name, value] of nearMisses) {
    it(`rejects: ${name}`, () => {
      assert.equal(matcher.match(Buffer.from(value)), undefined);
    });
  }

  it('compares bytes, so a non-ASCII key matches only its exact UTF-8 bytes', () => {
    const utf8 = new ApiKeyMatcher([{ id: 'u', key: Buffer.from('clé-0123456789-abcdefghijklmnopqrstuv', 'utf8'), scopes: ['tokens'] }]);
    assert.equal(utf8.match(Buffer.from('clé-0123456789-abcdefghijklmnopqrstuv', 'utf8'))?.id, 'u');
    assert.equal(utf8.match(Buffer.from('clé-0123456789-abcdefghijklmnopqrstuv', 'latin1')), undefined);
  });

  it('matches nothing when no key is configured', () => {
    const empty = new ApiKeyMatcher([]);
    assert.equal(empty.size, 0);
    assert.equal(empty.match(Buffer.from(A)), undefined);
  });
});
