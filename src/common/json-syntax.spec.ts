import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { jsonSyntaxErrorOffset, positionOf } from './json-syntax.js';

const parses = (text: string) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('jsonSyntaxErrorOffset', () => {
  it('agrees with JSON.parse on valid JSON and on mutated JSON', () => {
    const mutated = fc
      .tuple(fc.jsonValue(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', '\n', '\\', '0', '-', ' ', '{', '[', '\u0001'), fc.nat(3))
      .map(([v, at, insert, drop]) => {
        const text = JSON.stringify(v, null, at % 2 === 0 ? 2 : undefined);
        const k = at % (text.length + 1);
        return text.slice(0, k) + insert + text.slice(k + drop);
      });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), mutated), (text) => {
        assert.equal(jsonSyntaxErrorOffset(text) === -1, parses(text), text);
      }),
      { numRuns: 3000 },
    );
  });

  const cases: [string, number][] = [
    ['{"a": s3cr3t}', 6],
    ['{"a": "x"', 9],
    ['{"a":1,}', 7],
    ['', 0],
    ['[1 2]', 3],
    ['[1]x', 3],
    ['{"a":"x\u0001"}', 7],
    ['{"a":"\\q"}', 7],
    ['  [ ]  ', -1],
    ['[[[]],{"a":{}}]', -1],
    ['-', 1],
    ['1.', 2],
    ['tru', 3],
  ];
  for (const [text, offset] of cases) {
    it(`${JSON.stringify(text)} -> ${offset}`, () => assert.equal(jsonSyntaxErrorOffset(text), offset));
  }

  it('handles nesting deeper than the call stack', () => {
    assert.equal(jsonSyntaxErrorOffset('['.repeat(200_000) + ']'.repeat(200_000)), -1);
    assert.equal(jsonSyntaxErrorOffset('['.repeat(200_000)), 200_000);
  });
});

describe('positionOf', () => {
  it('gives 1-based line and column', () => {
    assert.deepEqual(positionOf('ab', 0), { line: 1, column: 1 });
    assert.deepEqual(positionOf('ab\ncd\nef', 4), { line: 2, column: 2 });
    assert.deepEqual(positionOf('ab\n', 3), { line: 2, column: 1 });
  });
});
