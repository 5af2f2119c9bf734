import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import type { ConnectionInfo } from './connection-info.js';
import { DumpSession } from './dump-session.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dump-session-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** The part of a ws socket a session uses, recording what the session did to it. */
class FakeSocket extends EventEmitter {
  paused = false;
  pings = 0;
  terminated = false;
  closedWith: number | undefined;
  pause() { this.paused = true; }
  resume() { this.paused = false; }
  ping() { this.pings++; }
  terminate() {
    this.terminated = true;
    this.emit('close', 1006);
  }
  close(code: number) {
    this.closedWith = code;
    setImmediate(() => this.emit('close', code));
  }
}

const info: ConnectionInfo = {
  id: 'sess', startTime: 1000, url: '/', path: '/', origin: undefined, userAgent: undefined, remoteAddresses: [],
  clientProtocol: undefined, kid: 'k', claims: { user: 'u' },
};

let n = 0;
function session(writeBufferBytes = 1024 * 1024, file = path.join(root, `s${n++}.jsonl`)) {
  const ws = new FakeSocket();
  let now = 5000;
  const s = new DumpSession(info, ws as unknown as WebSocket, { file, transform: null, writeBufferBytes, now: () => now++ });
  s.start();
  return { s, ws, file };
}

describe('DumpSession', () => {
  it('a session the server paused for disk backpressure is not killed by the heartbeat', async () => {
    const { s, ws } = session(16);
    ws.emit('message', Buffer.alloc(4096, 0x61), false);
    assert.equal(ws.paused, true, 'paused by the write buffer');
    // Drain cannot happen synchronously: the socket is still paused for these heartbeats.
    assert.equal(s.heartbeat(), true);
    assert.equal(s.heartbeat(), true);
    assert.equal(s.heartbeat(), true);
    assert.equal(ws.terminated, false);
    ws.close(1000);
    const result = await s.done;
    assert.equal(result.closeCode, 1000);
  });

  it('a peer that stops answering pings is terminated (1006) and its dump completed', async () => {
    const { s, ws, file } = session();
    ws.emit('message', Buffer.from('[1]'), false);
    assert.equal(s.heartbeat(), true);
    assert.equal(s.heartbeat(), false);
    assert.equal(ws.terminated, true);
    const result = await s.done;
    assert.equal(result.closeCode, 1006);
    assert.match(fs.readFileSync(file, 'utf8'), /\n\[1\]\n\["close",null,1006,\d+\]\n$/);
  });

  it('a write failure closes with 1011 and reports the error, the time of the last frame and the file', async () => {
    // A directory where the file should be: the open fails like a full or broken disk.
    const file = path.join(root, 'is-a-dir');
    fs.mkdirSync(file);
    const { s, ws } = session(1024, file);
    ws.emit('message', Buffer.from('[1]'), false);
    const result = await s.done;
    assert.equal(ws.closedWith, 1011);
    assert.equal(result.closeCode, 1011);
    assert.ok(result.error instanceof Error);
    assert.equal(result.frameCount, 1);
    assert.equal(result.lastFrameAt, 5000);
  });
});
