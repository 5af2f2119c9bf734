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
    assert.deepEqual(await hit(), { totalHits: 4, timeToExpire: 0, isBlocked: true, timeToBlockExpire: 1 }, 'blocked past the window, until the block ends');
    now += 1000;
    assert.deepEqual(await hit(), { totalHits: 1, timeToExpire: 2, isBlocked: false, timeToBlockExpire: 0 });
  });

  it('blocks a key under every throttler name, while counting hits per name', async () => {
    let now = 0;
    const rw = new RateWindows(() => now);
    const probe = () => rw.increment('ip', 1000, Number.MAX_SAFE_INTEGER, 60_000, 'probe');
    const fail = () => rw.increment('ip', 60_000, 1, 60_000, 'failures');
    assert.equal((await probe()).isBlocked, false);
    assert.equal((await fail()).isBlocked, false);
    assert.equal((await probe()).totalHits, 2, 'the probe counts only its own hits');
    assert.equal((await fail()).isBlocked, true, 'second failure over the limit of 1');
    now += 30_000;
    assert.deepEqual(await probe(), { totalHits: 2, timeToExpire: 0, isBlocked: true, timeToBlockExpire: 30 });
    assert.equal((await rw.increment('other-ip', 1000, 1, 1000, 'probe')).isBlocked, false, 'other keys are not blocked');
    now += 30_000;
    assert.equal((await probe()).isBlocked, false);
    assert.equal((await fail()).totalHits, 1, 'the failure count starts over after the block');
  });

  it('opens a new window when the old one has ended', async () => {
    let now = 0;
    const rw = new RateWindows(() => now);
    await rw.increment('a', 1000, 5, 1000, 'default');
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
    assert.equal((rw as unknown as { entries: Map<string, unknown> }).entries.size, 1);
  });
});
