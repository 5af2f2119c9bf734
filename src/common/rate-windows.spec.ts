import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RateWindows } from './rate-windows.js';

describe('RateWindows', () => {
  it('counts hits in a window, blocks the hit over the limit for blockDuration, then starts over', async () => {
    let now = 1_000_000;
    const rw = new RateWindows(() => now);
    const hit = () => rw.increment('k', 2000, 3, 5000, 'default');
    for (let i = 1; i <= 3; i++) assert.deepEqual(await hit(), { totalHits: i, timeToExpire: 2, isBlocked: false, timeToBlockExpire: 0 });
    assert.deepEqual(await hit(), { totalHits: 4, timeToExpire: 2, isBlocked: true, timeToBlockExpire: 5 });
    now += 4001;
    assert.equal((await hit()).isBlocked, true, 'still blocked after the window, until the block ends');
    assert.equal(rw.blockedSeconds('k', 'default'), 1);
    now += 1000;
    assert.equal(rw.blockedSeconds('k', 'default'), 0);
    assert.deepEqual(await hit(), { totalHits: 1, timeToExpire: 2, isBlocked: false, timeToBlockExpire: 0 });
  });

  it('opens a new window when the old one has ended, and keeps keys and throttlers apart', async () => {
    let now = 0;
    const rw = new RateWindows(() => now);
    await rw.increment('a', 1000, 1, 1000, 'default');
    assert.equal((await rw.increment('b', 1000, 1, 1000, 'default')).totalHits, 1, 'another key');
    assert.equal((await rw.increment('a', 1000, 1, 1000, 'other')).totalHits, 1, 'another throttler');
    now += 999;
    assert.equal((await rw.increment('a', 1000, 5, 1000, 'default')).totalHits, 2, 'same window');
    now += 1;
    assert.equal((await rw.increment('a', 1000, 5, 1000, 'default')).totalHits, 1, 'new window');
  });

  it('forgets ended windows (memory stays bounded)', async () => {
    let now = 0;
    const rw = new RateWindows(() => now);
    for (let i = 0; i < 2000; i++) await rw.increment(`ip-${i}`, 1000, 10, 1000, 'default');
    now += 1000;
    for (let i = 0; i < 1024; i++) await rw.increment('late', 1000, 1e9, 1000, 'default');
    assert.equal((rw as unknown as { windows: Map<string, unknown> }).windows.size, 1);
  });
});
