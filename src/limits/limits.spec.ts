import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConnectionSlots } from './connection-slots.js';
import { DiskSpace } from './disk-space.js';
import { expiry, FrameLimiter } from './limits.js';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows the burst at once, then the rate', () => {
    const b = new TokenBucket(10, 20, 0);
    for (let i = 0; i < 20; i++) assert.equal(b.take(1, 0), true);
    assert.equal(b.take(1, 0), false);
    assert.equal(b.take(1, 99), false); // 0.99 token flowed in
    assert.equal(b.take(1, 100), true);
    // Never more than the burst, however long it waited.
    assert.equal(b.take(20, 1_000_000), true);
    assert.equal(b.take(1, 1_000_000), false);
  });

  it('a failed take takes nothing', () => {
    const b = new TokenBucket(1, 10, 0);
    assert.equal(b.take(11, 0), false);
    assert.equal(b.take(10, 0), true);
  });

  it('a clock going backwards adds nothing', () => {
    const b = new TokenBucket(1000, 1, 1000);
    assert.equal(b.take(1, 1000), true);
    assert.equal(b.take(1, 0), false);
  });
});

describe('FrameLimiter', () => {
  const options = { maxFramesPerSecond: 5, maxBytesPerSecond: 1000, maxDumpBytes: 1_000_000, maxPayload: 4000 };

  it('a real client (4 frames/s, a 60 KB first frame at the default limits) is never limited', () => {
    const l = new FrameLimiter({ maxFramesPerSecond: 100, maxBytesPerSecond: 1024 * 1024, maxDumpBytes: 256 * 1024 * 1024, maxPayload: 4 * 1024 * 1024 }, 0);
    assert.equal(l.frame(60_000, 0), undefined);
    for (let t = 250; t < 3_600_000; t += 250) assert.equal(l.frame(3000, t), undefined);
  });

  it('frames over the rate after the burst (10 s of the rate plus a Jitsi resend buffer): rate limit', () => {
    const l = new FrameLimiter(options, 0);
    for (let i = 0; i < 1050; i++) assert.equal(l.frame(1, 0), undefined);
    assert.equal(l.frame(1, 0), 'rate limit');
  });

  it('a resuming Jitsi client resending 1000 entries on top of its 5/s is not limited', () => {
    const l = new FrameLimiter({ maxFramesPerSecond: 100, maxBytesPerSecond: 1024 * 1024, maxDumpBytes: 2 ** 40, maxPayload: 4 * 1024 * 1024 }, 0);
    for (let t = 0; t < 60_000; t += 200) assert.equal(l.frame(500, t), undefined);
    for (let i = 0; i < 1000; i++) assert.equal(l.frame(500, 60_000), undefined);
  });

  it('bytes over the rate: rate limit; the byte burst holds at least one largest frame', () => {
    const l = new FrameLimiter({ ...options, maxPayload: 20_000 }, 0);
    assert.equal(l.frame(20_000, 0), undefined);
    assert.equal(l.frame(4000, 0), 'rate limit');
    assert.equal(l.frame(1000, 1000), undefined);
  });

  it('the dump size counts every frame', () => {
    const l = new FrameLimiter({ ...options, maxFramesPerSecond: 1e6, maxBytesPerSecond: 1e9, maxDumpBytes: 10 }, 0);
    assert.equal(l.frame(10, 0), undefined);
    assert.equal(l.frame(1, 0), 'dump too large');
  });
});

describe('expiry', () => {
  const limits = { idleTimeoutMs: 1000, maxSessionDurationMs: 10_000 };
  it('idle after the timeout without activity, too long after the duration', () => {
    assert.equal(expiry(999, 0, 0, limits), undefined);
    assert.equal(expiry(1000, 0, 0, limits), 'idle timeout');
    assert.equal(expiry(5000, 0, 4500, limits), undefined);
    assert.equal(expiry(10_000, 0, 9999, limits), 'session too long');
  });
});

describe('ConnectionSlots', () => {
  it('refuses over the total and over the per-address count; releases free them', () => {
    const s = new ConnectionSlots(3, 2);
    assert.equal(s.acquire('a'), undefined);
    assert.equal(s.acquire('a'), undefined);
    assert.equal(s.acquire('a'), 'max connections per ip');
    assert.equal(s.acquire('b'), undefined);
    assert.equal(s.acquire('c'), 'max connections');
    assert.equal(s.open, 3);
    s.release('a');
    assert.equal(s.acquire('c'), undefined);
    s.release('a');
    s.release('b');
    s.release('c');
    assert.equal(s.open, 0);
    assert.equal(s.acquire('a'), undefined);
    assert.equal(s.acquire('a'), undefined);
  });
});

describe('DiskSpace', () => {
  it('is low below the floor, not low when unknown', async () => {
    let free = 500;
    let fail = false;
    const d = new DiskSpace('/x', 1000, async () => {
      if (fail) throw new Error('EIO');
      return free;
    });
    assert.equal(d.low, false);
    await d.sample();
    assert.equal(d.low, true);
    free = 2000;
    await d.sample();
    assert.equal(d.low, false);
    fail = true;
    assert.equal(await d.sample(), undefined);
    assert.equal(d.low, false);
    assert.equal(d.lastError, 'EIO');
  });
});
