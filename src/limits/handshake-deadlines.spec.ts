import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HandshakeDeadlines } from './handshake-deadlines.js';

describe('HandshakeDeadlines', () => {
  it('expires the sockets past their deadline, in arrival order, and only those', () => {
    let now = 0;
    const expired: string[] = [];
    const d = new HandshakeDeadlines<{ id: string; destroyed: boolean }>(1000, (s) => expired.push(s.id), () => now);
    const a = { id: 'a', destroyed: false };
    const b = { id: 'b', destroyed: false };
    const c = { id: 'c', destroyed: false };
    d.add(a);
    now = 400;
    d.add(b);
    d.add(c);
    d.done(c); // its request came
    now = 999;
    d.sweep();
    assert.deepEqual(expired, []);
    now = 1000;
    d.sweep();
    assert.deepEqual(expired, ['a']);
    now = 1400;
    d.sweep();
    assert.deepEqual(expired, ['a', 'b']);
    assert.equal(d.size, 0);
    assert.equal(d.sweepIntervalMs, 250);
  });

  it('forgets closed sockets without expiring them', () => {
    let now = 0;
    const expired: string[] = [];
    const d = new HandshakeDeadlines<{ id: string; destroyed: boolean }>(1000, (s) => expired.push(s.id), () => now);
    const a = { id: 'a', destroyed: false };
    d.add(a);
    a.destroyed = true;
    now = 5000;
    d.sweep();
    assert.deepEqual(expired, []);
    assert.equal(d.size, 0);
  });
});
