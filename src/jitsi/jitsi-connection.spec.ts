import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import { type JitsiContext, JitsiConnection, maskSecrets, type SessionHandle } from './jitsi-connection.js';
import type { JitsiDumpFile } from './jitsi-dump-file.js';
import { JitsiSession } from './jitsi-session.js';
import { ResumeRegistry, type Timers } from './resume-registry.js';

/** The parts of a ws socket the connection uses, recorded. */
class FakeSocket extends EventEmitter {
  readonly sent: unknown[] = [];
  paused = 0;
  resumed = 0;
  constructor(readonly protocol = '3.1_STANDARD') {
    super();
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  pause() {
    this.paused++;
  }
  resume() {
    this.resumed++;
  }
  pings = 0;
  terminated = 0;
  close() {}
  ping() {
    this.pings++;
  }
  terminate() {
    this.terminated++;
  }
}

/** A dump file whose buffer fills on demand. */
class FakeFile {
  readonly lines: string[] = [];
  full = false;
  private drains: Array<() => void> = [];
  readonly file = '/dev/null';
  write(line: string) {
    this.lines.push(line);
    return !this.full;
  }
  onDrain(fn: () => void) {
    if (this.full) this.drains.push(fn);
    else fn();
  }
  drain() {
    this.full = false;
    for (const fn of this.drains.splice(0)) fn();
  }
}

const noTimers: Timers = { set: () => 1, clear: () => undefined };

function setup() {
  const ended: Array<{ id: string; code: number; reason: string }> = [];
  const files = new Map<string, FakeFile>();
  const registry = new ResumeRegistry<SessionHandle>(60_000, noTimers, () => undefined);
  const ctx: JitsiContext = {
    registry,
    create: (id, conn) => {
      const file = new FakeFile();
      files.set(id, file);
      const session = new JitsiSession(id, file, { everyEntries: 100, intervalMs: 10_000 }, () => 0);
      const handle: SessionHandle = { key: `k\n${id}`, session, file: file as unknown as JitsiDumpFile, owner: conn };
      registry.add(handle.key, handle);
      return handle;
    },
    end: (handle, code, reason) => {
      handle.session.end(code, reason);
      registry.remove(handle.key);
      handle.owner?.release(handle.session.statsSessionId);
      ended.push({ id: handle.session.statsSessionId, code, reason });
    },
    transform: null,
    log: { log: () => undefined, warn: () => undefined, debug: () => undefined },
  };
  const open = (statsSessionId?: string, protocol?: string) => {
    const ws = new FakeSocket(protocol);
    const conn = new JitsiConnection(ws as unknown as WebSocket, { id: 'c', protocol: ws.protocol, identityKey: 'k', kid: null, statsSessionId, details: {}, secrets: ['eyJhbGciOiJIUzI1NiJ9.e30.c2ln'] }, ctx);
    conn.start();
    return { ws, conn };
  };
  return { ended, files, registry, open };
}

const entry = (sid: string, seq: number) => Buffer.from(JSON.stringify({ statsSessionId: sid, type: 'stats-entry', data: `["getstats","PC_0",{},1,${seq}]` }));

describe('JitsiConnection', () => {
  it('greets browsers, not backends', () => {
    const { open } = setup();
    assert.deepEqual(open('s').ws.sent, [{ type: 'sn', body: { value: 0, state: 'initial' } }]);
    assert.deepEqual(open(undefined, '3.0_JVB').ws.sent, []);
  });

  it('pauses the socket while a dump file is over its buffer, and resumes on drain', () => {
    const { open, files } = setup();
    const { ws } = open('s');
    const resumedAtStart = ws.resumed;
    ws.emit('message', entry('s', 1), false);
    files.get('s')!.full = true;
    ws.emit('message', entry('s', 2), false);
    assert.equal(ws.paused, 1);
    ws.emit('message', entry('s', 3), false); // already paused: a frame ws had buffered
    assert.equal(ws.paused, 1);
    files.get('s')!.drain();
    assert.equal(ws.resumed, resumedAtStart + 1);
    assert.equal(files.get('s')!.lines.length, 3);
  });

  it('a socket paused for disk backpressure is not killed by the heartbeat', () => {
    const { open, files } = setup();
    const { ws, conn } = open('s');
    ws.emit('message', entry('s', 1), false);
    assert.equal(conn.heartbeat(), true);
    files.get('s')!.full = true;
    ws.emit('message', entry('s', 2), false);
    assert.equal(ws.paused, 1);
    // Paused: pongs cannot be read, so missed ones do not count.
    assert.equal(conn.heartbeat(), true);
    assert.equal(conn.heartbeat(), true);
    assert.equal(ws.terminated, 0);
    files.get('s')!.drain();
    assert.equal(conn.heartbeat(), true);
    assert.equal(conn.heartbeat(), false, 'unanswered pings count again once resumed');
    assert.equal(ws.terminated, 1);
  });

  it('on a drop parks its sessions for resume; 3001 ends them', () => {
    const { open, ended, registry } = setup();
    const a = open('s1');
    a.ws.emit('message', entry('s1', 1), false);
    a.ws.emit('message', entry('s2', 1), false);
    a.ws.emit('close', 1006, Buffer.from(''));
    assert.equal(ended.length, 0);
    assert.equal(registry.get('k\ns1')!.session.state, 'detached');
    const b = open('s1');
    assert.deepEqual(b.ws.sent, [{ type: 'sn', body: { value: 1, state: 'initial' } }]);
    b.ws.emit('message', entry('s2', 2), false); // the other parked session, resumed by its next message
    b.ws.emit('close', 3001, Buffer.from(''));
    assert.deepEqual(ended.map((e) => [e.id, e.code]).sort(), [['s1', 3001], ['s2', 3001]]);
  });

  it('a malformed message ends only its session; later messages for it are dropped', () => {
    const { open, ended, files } = setup();
    const { ws } = open('good');
    ws.emit('message', entry('good', 1), false);
    ws.emit('message', entry('bad', 1), false);
    ws.emit('message', Buffer.from(JSON.stringify({ statsSessionId: 'bad', type: 'identity', data: 'x' })), false);
    ws.emit('message', entry('bad', 2), false);
    ws.emit('message', Buffer.from([1, 2, 3]), true);
    ws.emit('message', entry('good', 2), false);
    assert.deepEqual(ended, [{ id: 'bad', code: 3002, reason: 'malformed message: identity entry is not an array of at least 3 elements' }]);
    assert.equal(files.get('bad')!.lines.length, 2, 'the entry and the sessionClose line');
    assert.equal(files.get('good')!.lines.length, 2);
  });

  it('sends due acknowledgements on tick', () => {
    const { open } = setup();
    const { ws, conn } = open('s');
    for (let seq = 1; seq <= 100; seq++) ws.emit('message', entry('s', seq), false);
    assert.deepEqual(ws.sent.at(-1), { type: 'sn', body: { value: 100 } });
    conn.tick();
    assert.equal(ws.sent.length, 2, 'nothing more is due');
  });

  it("masks the connection's token wherever an entry repeats it (Jitsi Meet sends its config as identity)", () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln';
    assert.equal(maskSecrets(`{"rtcstatsEndpoint":"wss://h/?rtcstats-token=${token}","x":"${token}"}`, [token]), '{"rtcstatsEndpoint":"wss://h/?rtcstats-token=obfuscated","x":"obfuscated"}');
    assert.equal(maskSecrets('["getstats","PC_0",{},1,2]', [token]), '["getstats","PC_0",{},1,2]');
    const { open, files } = setup();
    const { ws } = open('s');
    const identity = `["identity",null,{"analytics":{"rtcstatsEndpoint":"wss://h/t/${token}"}},1,1]`;
    ws.emit('message', Buffer.from(`{"statsSessionId":"s","type":"identity","data":${identity}}`), false);
    assert.deepEqual(files.get('s')!.lines, ['["identity",null,{"analytics":{"rtcstatsEndpoint":"wss://h/t/obfuscated"}},1,1]']);
  });
});
