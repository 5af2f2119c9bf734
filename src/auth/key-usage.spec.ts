import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { KeyUsage } from './key-usage.js';

describe('KeyUsage', () => {
  it('counts verifications per kid and remembers the last time', () => {
    let now = 1000;
    const usage = new KeyUsage(() => now);
    usage.record('a');
    now = 2000;
    usage.record('a');
    usage.record('b');
    assert.deepEqual(usage.get('a'), { kid: 'a', verifications: 2, lastVerifiedAt: 2000 });
    assert.deepEqual(usage.get('b'), { kid: 'b', verifications: 1, lastVerifiedAt: 2000 });
    assert.equal(usage.get('c'), undefined);
    assert.equal(usage.all().length, 2);
  });
});
