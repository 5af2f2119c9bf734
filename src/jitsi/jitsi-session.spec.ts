import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { JitsiSession, type LineSink } from './jitsi-session.js';
import { type Timers, ResumeRegistry } from './resume-registry.js';

class MemorySink implements LineSink {
  readonly lines: string[] = [];
  full = false;
  write(line: string): boolean {
    this.lines.push(line);
    return !this.full;
  }
}

const entry = (seq: number | undefined, identity?: Record<string, unknown>) => ({ method: identity ? 'identity' : 'getstats', seq, identity });

function session(now: { t: number }, everyEntries = 3, intervalMs = 10_000) {
  const sink = new MemorySink();
  return { sink, s: new JitsiSession('sid', sink, { everyEntries, intervalMs }, () => now.t) };
}

describe('JitsiSession', () => {
  it('acknowledges every N entries and after the interval', () => {
    const now = { t: 0 };
    const { s } = session(now);
    assert.equal(s.receive(entry(1), 'a', 1).ack, undefined);
    assert.equal(s.receive(entry(2), 'b', 1).ack, undefined);
    assert.equal(s.receive(entry(3), 'c', 1).ack, 3);
    assert.equal(s.ackDue(), undefined, 'nothing unacknowledged');
    s.receive(entry(4), 'd', 1);
    now.t = 9_999;
    assert.equal(s.ackDue(), undefined);
    now.t = 10_000;
    assert.equal(s.ackDue(), 4);
    assert.equal(s.ackDue(), undefined);
  });

  it('drops entries already stored (a resend) and counts gaps', () => {
    const now = { t: 0 };
    const { s, sink } = session(now, 100);
    for (const seq of [1, 2, 3]) s.receive(entry(seq), `e${seq}`, 1);
    assert.equal(s.receive(entry(2), 'e2', 1).duplicate, true);
    assert.equal(s.receive(entry(3), 'e3', 1).duplicate, true);
    assert.equal(s.receive(entry(5), 'e5', 1).gap, true);
    assert.deepEqual(sink.lines, ['e1', 'e2', 'e3', 'e5']);
    assert.equal(s.stats.duplicates, 2);
    assert.equal(s.stats.gaps, 1);
    assert.equal(s.lastSeq, 5);
  });

  it('a session may start at any seq (breakout rooms continue the numbering)', () => {
    const { s } = session({ t: 0 });
    assert.equal(s.receive(entry(500), 'x', 1).gap, false);
  });

  it('records disconnect, reconnect and end, and greets a resume with the last seq', () => {
    const now = { t: 1000 };
    const { s, sink } = session(now, 100);
    s.receive(entry(1, { confName: 'room1', displayName: 'Ann' }), 'id', 10);
    s.receive(entry(2, { meetingUniqueId: 'm-1' }), 'id2', 10);
    s.receive(entry(3), 'e3', 10);
    now.t = 2000;
    s.detach(1006, '');
    assert.equal(s.state, 'detached');
    assert.equal(s.lastCloseCode, 1006);
    assert.equal(s.attach({ isReconnect: true }), 3);
    s.receive(entry(3), 'e3', 10);
    s.receive(entry(4), 'e4', 10);
    now.t = 3000;
    const end = s.end(3001, 'conference left');
    assert.deepEqual(end, { code: 3001, reason: 'conference left', endTime: 3000, entries: 4, bytes: 40 });
    assert.deepEqual(s.identity, { conferenceName: 'room1', displayName: 'Ann', meetingId: 'm-1' });
    const server = sink.lines.filter((l) => l.startsWith('["')).map((l) => JSON.parse(l));
    assert.deepEqual(server.map((l) => l[0]), ['disconnect', 'reconnect', 'sessionClose']);
    assert.deepEqual(server[0], ['disconnect', null, { code: 1006, reason: '', lastSeq: 3 }, 2000]);
    assert.deepEqual(server[1], ['reconnect', null, { isReconnect: true, lastSeq: 3 }, 2000]);
    assert.equal(server[2][2].duplicates, 1);
    assert.equal(server[2][2].disconnects, 1);
    assert.deepEqual(s.end(1000, 'again'), end, 'the first end wins');
    assert.throws(() => s.receive(entry(9), 'x', 1));
  });

  it('reports back-pressure from the sink', () => {
    const { s, sink } = session({ t: 0 });
    sink.full = true;
    assert.equal(s.receive(entry(1), 'a', 1).pause, true);
  });
});

class FakeTimers implements Timers {
  pending = new Map<number, { fn: () => void; at: number }>();
  private next = 1;
  now = 0;
  set(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { fn, at: this.now + ms });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.pending]) {
      if (t.at <= this.now) {
        this.pending.delete(id);
        t.fn();
      }
    }
  }
}

describe('ResumeRegistry', () => {
  it('a parked session can be claimed within the grace period, then it expires', () => {
    const timers = new FakeTimers();
    const expired: string[] = [];
    const r = new ResumeRegistry<string>(60_000, timers, (s) => expired.push(s));
    r.add('k1', 's1');
    r.add('k2', 's2');
    assert.throws(() => r.add('k1', 'again'));
    r.park('k1');
    r.park('k2');
    timers.advance(59_999);
    assert.equal(r.claim('k1'), 's1');
    timers.advance(1);
    assert.deepEqual(expired, ['s2']);
    assert.equal(r.claim('k2'), undefined);
    timers.advance(600_000);
    assert.deepEqual(expired, ['s2'], 'a claimed session does not expire');
    r.remove('k1');
    assert.equal(r.size, 0);
  });

  it('grace 0 ends a parked session at once', () => {
    const expired: string[] = [];
    const r = new ResumeRegistry<string>(0, new FakeTimers(), (s) => expired.push(s));
    r.add('k', 's');
    r.park('k');
    assert.deepEqual(expired, ['s']);
  });
});
