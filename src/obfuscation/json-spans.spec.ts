import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { members } from './json-spans.js';

describe('members', () => {
  it('gives each member its decoded key and the offsets of its value', () => {
    const text = '{ "a" : 1 , "b\\u0063":{"x":[1,"]"]},"d":"}"}';
    assert.deepEqual(
      members(text, 0).map((m) => [m.key, text.slice(m.keyStart, m.keyStart + 1), text.slice(m.start, m.end)]),
      [
        ['a', '"', '1'],
        ['bc', '"', '{"x":[1,"]"]}'],
        ['d', '"', '"}"'],
      ],
    );
    assert.deepEqual(members('{}', 0), []);
  });

  it('stops at the first member ending past `until`', () => {
    assert.deepEqual(
      members('{"a":1,"b":2,"c":3}', 0, 9).map((m) => m.key),
      ['a', 'b'],
    );
  });

  it('throws where a separator it steps over is not JSON', () => {
    for (const text of ['{a:1}', '{"a" 1}', '{"a":1 "b":2}', '{"a":,"b":2}', '{"a":1;"b":2}', '{"a":1', '{"a":"1}']) {
      assert.throws(() => members(text, 0), SyntaxError, text);
    }
  });
});
