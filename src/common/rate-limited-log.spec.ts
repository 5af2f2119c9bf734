import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RateLimitedLog } from './rate-limited-log.js';

describe('RateLimitedLog', () => {
  it('one line per kind per interval, then the count', () => {
    let now = 0;
    const lines: string[] = [];
    const log = new RateLimitedLog(10_000, (m) => lines.push(m), () => now);
    for (let i = 0; i < 1000; i++) log.warn('bad', 'invalid signature');
    log.warn('missing', 'token missing');
    assert.deepEqual(lines, ['invalid signature', 'token missing']);
    now = 9_999;
    log.flush();
    assert.equal(lines.length, 2);
    now = 10_000;
    log.flush();
    assert.deepEqual(lines.slice(2), ['invalid signature (repeated 999 more time(s) in 10 s)']);
    log.warn('bad', 'invalid signature');
    assert.deepEqual(lines.slice(3), ['invalid signature']);
  });

  it('an occurrence after the interval writes the count and itself', () => {
    let now = 0;
    const lines: string[] = [];
    const log = new RateLimitedLog(1000, (m) => lines.push(m), () => now);
    log.warn('k', 'a');
    log.warn('k', 'b');
    now = 1500;
    log.warn('k', 'c');
    assert.deepEqual(lines, ['a', 'b (repeated 1 more time(s) in 1 s)', 'c']);
  });

  it('flush(true) writes every pending count (shutdown)', () => {
    let now = 0;
    const lines: string[] = [];
    const log = new RateLimitedLog(10_000, (m) => lines.push(m), () => now);
    log.warn('k', 'a');
    log.warn('k', 'a');
    now = 3000;
    log.flush();
    assert.deepEqual(lines, ['a']);
    log.flush(true);
    assert.deepEqual(lines, ['a', 'a (repeated 1 more time(s) in 3 s)']);
  });

  it('kinds beyond the maximum fall back to their group', () => {
    const lines: string[] = [];
    const log = new RateLimitedLog(1000, (m) => lines.push(m), () => 0, 2);
    log.warn('a', 'a');
    log.warn('b', 'b');
    for (let i = 0; i < 100; i++) log.warn(`c${i}`, `c${i}`, 'c');
    assert.deepEqual(lines, ['a', 'b', 'c0']);
  });
});
