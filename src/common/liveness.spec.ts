import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Liveness } from './liveness.js';

function socket() {
  return { pings: 0, terminated: 0, ping() { this.pings++; }, terminate() { this.terminated++; } };
}

describe('Liveness', () => {
  it('pings, keeps a peer that answers, terminates one that missed a ping', () => {
    const ws = socket();
    const l = new Liveness(ws, () => false);
    assert.equal(l.check(), true);
    l.answered();
    assert.equal(l.check(), true);
    assert.equal(ws.pings, 2);
    assert.equal(l.check(), false);
    assert.equal(ws.terminated, 1);
  });

  it('never terminates a socket the server paused, however many intervals pass', () => {
    const ws = socket();
    let paused = false;
    const l = new Liveness(ws, () => paused);
    assert.equal(l.check(), true); // pinged, no pong can be read from here on
    paused = true;
    for (let i = 0; i < 5; i++) assert.equal(l.check(), true);
    assert.equal(ws.terminated, 0);
    paused = false;
    assert.equal(l.check(), true, 'a fresh ping after the resume');
    assert.equal(l.check(), false, 'then a missed pong counts again');
  });
});
