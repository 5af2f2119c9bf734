import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { openSqliteMetadataStore } from '../src/metadata/sqlite.js';
import { closed, readDump, sign, startApp, storedFiles, tempDir, type TestApp, waitFor, writeKeyring } from './helpers.js';
import {
  JITSI_FIXTURES,
  jitsiConnect,
  jitsiFixture,
  jitsiUrl,
  messageFor,
  newSessionId,
  seqs,
  waitForJitsiRecords,
} from './jitsi-helpers.js';

const IDENTITY = { rtcStats: { user: 'u-jitsi', session: 's-jitsi', conference: 'c-jitsi' } };

/** Replays `lines` as the Jitsi client sends them, then leaves the conference (3001). */
async function replay(t: TestApp, token: string, lines: readonly string[], sid = newSessionId()) {
  const c = await jitsiConnect(jitsiUrl(t, token, sid));
  assert.deepEqual(await c.next('greeting'), { type: 'sn', body: { value: 0, state: 'initial' } });
  const done = closed(c.ws);
  for (const l of lines) c.ws.send(messageFor(sid, l));
  c.ws.close(3001);
  assert.equal((await done).code, 3001);
  const [record] = await waitForJitsiRecords(t, sid);
  return { sid, record, dump: readDump(record.location), client: c };
}

describe('Jitsi clients (real ws clients against the real app)', () => {
  let t: TestApp;
  let token: string;
  before(async () => {
    t = await startApp({ RTCSTATS_OBFUSCATE_IPS: 'false', RTCSTATS_JITSI_RESUME_GRACE: '1' });
    token = sign(IDENTITY);
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  for (const name of fs.readdirSync(JITSI_FIXTURES).filter((f) => f.endsWith('.ndjson'))) {
    it(`replays ${name} into a dump holding the client's lines verbatim`, async () => {
      const lines = jitsiFixture(name);
      const { sid, record, dump } = await replay(t, token, lines);
      const [tag, pc, info] = JSON.parse(dump[0]);
      assert.equal(tag, 'connectionInfo');
      assert.equal(pc, null);
      assert.equal(info.flavour, 'jitsi');
      assert.equal(info.statsSessionId, sid);
      assert.equal(info.clientProtocol, '3.1_STANDARD');
      assert.equal(info.dumpId, record.id);
      assert.equal(info.path, '/meet.example.com/room1');
      assert.ok(!dump[0].includes(token), 'no token in the dump');
      assert.deepEqual(dump.slice(1, -1), lines);
      const last = JSON.parse(dump[dump.length - 1]);
      assert.equal(last[0], 'sessionClose');
      assert.equal(last[2].code, 3001);
      assert.equal(last[2].reason, 'conference left');
      assert.equal(record.closeCode, 3001);
      assert.equal(record.frameCount, lines.length);
      assert.equal(record.statsSessionId, sid);
      assert.equal(record.clientProtocol, '3.1_STANDARD');
      assert.equal(record.user, 'u-jitsi');
      assert.equal(record.conference, 'c-jitsi');
    });
  }

  it('records identity fields and acknowledges every 100 entries', async () => {
    const lines = jitsiFixture('google-standard-stats-relay-p2p.ndjson');
    const { record, client } = await replay(t, token, lines);
    assert.equal(record.conferenceName, 'capitalistguerrillasexertthat');
    assert.equal(record.displayName, 'Cecelia-gct');
    assert.equal(record.meetingId, 'eea91bfa-6d20-47db-8abc-a78d06de80c2');
    assert.ok(client.received.some((m) => m.type === 'sn' && m.body.value === 100 && m.body.state === undefined), JSON.stringify(client.received));
  });

  it('accepts the token in the path form and the plain query, and echoes every Jitsi subprotocol', async () => {
    for (const [url, protocol] of [
      [t.url(`/stats/t/${token}/meet.example.com/room1?statsSessionId=${newSessionId()}&isReconnect=false`), '3.1_LEGACY'],
      [t.url(`/room1?statsSessionId=${newSessionId()}&isReconnect=false&rtcstats-token=${token}`), '3.1_STANDARD'],
      [t.url(`/jvb?rtcstats-token=${token}`), '3.0_JVB'],
      [t.url(`/jicofo?rtcstats-token=${token}`), '1.0_JICOFO'],
      [t.url(`/jigasi?rtcstats-token=${token}`), '1.0_JIGASI'],
    ]) {
      const c = await jitsiConnect(url, protocol);
      assert.equal(c.ws.protocol, protocol);
      // Browser clients wait for the greeting; backends are not sent one.
      if (protocol.startsWith('3.1_')) assert.deepEqual(await c.next('greeting'), { type: 'sn', body: { value: 0, state: 'initial' } });
      const done = closed(c.ws);
      c.ws.close(3001);
      assert.equal((await done).code, 3001);
    }
  });

  it('stores a backend (JVB) message whole', async () => {
    const c = await jitsiConnect(t.url(`/jvb?rtcstats-token=${token}`), '3.0_JVB');
    const sid = `jvb-${newSessionId()}`;
    const msg = JSON.stringify({ statsSessionId: sid, type: 'stats-entry', data: { conferences: 2, endpoints: 5 } });
    const done = closed(c.ws);
    c.ws.send(msg);
    c.ws.send(JSON.stringify({ statsSessionId: sid, type: 'close' }));
    const [record] = await waitForJitsiRecords(t, sid);
    const dump = readDump(record.location);
    assert.equal(dump[1], msg);
    assert.equal(JSON.parse(dump[0])[2].statsFormat, 'jvb');
    assert.equal(record.closeCode, 1000);
    c.ws.close(3001);
    await done;
  });

  it('resumes a dropped session into the same dump: no gap, no duplicate, the disconnect recorded', async () => {
    const sid = newSessionId();
    const entry = (seq: number) => `["getstats","PC_0",{"t":{"timestamp":${seq}}},${1700000000000 + seq},${seq}]`;
    const a = await jitsiConnect(jitsiUrl(t, token, sid));
    await a.next('greeting');
    for (let seq = 1; seq <= 150; seq++) a.ws.send(messageFor(sid, entry(seq)));
    assert.deepEqual(await a.next('ack of 100'), { type: 'sn', body: { value: 100 } });
    // Wait until all 150 are stored, then drop the connection without a close frame.
    await waitFor(() => (fs.readdirSync(`${t.dataDir}/work`).length > 0 ? true : undefined), 'live dump');
    const dropped = closed(a.ws);
    a.ws.terminate();
    await dropped;
    const b = await jitsiConnect(jitsiUrl(t, token, sid, true));
    const greet = await b.next('resume greeting');
    assert.equal(greet.body.state, 'initial');
    assert.ok(greet.body.value >= 100 && greet.body.value <= 150, `greeted with ${greet.body.value}`);
    // The client resends everything it has not seen acknowledged (from 101), some already stored.
    for (let seq = 101; seq <= 200; seq++) b.ws.send(messageFor(sid, entry(seq)));
    const done = closed(b.ws);
    b.ws.close(3001);
    await done;
    const records = await waitForJitsiRecords(t, sid);
    assert.equal(records.length, 1);
    const dump = readDump(records[0].location);
    assert.deepEqual(seqs(dump), Array.from({ length: 200 }, (_, i) => i + 1));
    const server = dump.map((l) => JSON.parse(l)).filter((l) => l[1] === null).map((l) => l[0]);
    assert.deepEqual(server, ['connectionInfo', 'disconnect', 'reconnect', 'sessionClose']);
    const close = JSON.parse(dump[dump.length - 1])[2];
    assert.equal(close.disconnects, 1);
    assert.equal(close.duplicates, 150 - 100);
    assert.equal(records[0].frameCount, 200);
  });

  it('ends a session not resumed within the grace period, with the drop code; a later reconnect starts a new dump', async () => {
    const sid = newSessionId();
    const a = await jitsiConnect(jitsiUrl(t, token, sid));
    await a.next('greeting');
    a.ws.send(messageFor(sid, '["create","PC_0",{},1700000000000,1]'));
    await waitFor(async () => ((await t.metadata.find({}, 10_000)).length >= 0 && fs.readdirSync(`${t.dataDir}/work`).length > 0 ? true : undefined), 'live dump');
    const dropped = closed(a.ws);
    a.ws.terminate();
    await dropped;
    const [record] = await waitForJitsiRecords(t, sid);
    assert.equal(record.closeCode, 1006);
    const last = JSON.parse(readDump(record.location).at(-1)!);
    assert.deepEqual([last[0], last[2].reason], ['sessionClose', 'not resumed within the grace period']);
    const b = await jitsiConnect(jitsiUrl(t, token, sid, true));
    assert.deepEqual(await b.next('greeting'), { type: 'sn', body: { value: 0, state: 'initial' } });
    const done = closed(b.ws);
    b.ws.send(messageFor(sid, '["create","PC_0",{},1700000000000,1]'));
    b.ws.close(3001);
    await done;
    assert.equal((await waitForJitsiRecords(t, sid, 2)).length, 2);
  });

  it('a reconnect takes the session over from a socket the server has not seen die', async () => {
    const sid = newSessionId();
    const entry = (seq: number) => messageFor(sid, `["getstats","PC_0",{},${1700000000000 + seq},${seq}]`);
    const a = await jitsiConnect(jitsiUrl(t, token, sid));
    await a.next('greeting');
    for (let seq = 1; seq <= 5; seq++) a.ws.send(entry(seq));
    await waitFor(() => (t.logs.some((l) => l.includes(`Jitsi session ${sid} started`)) ? true : undefined), 'session start');
    const b = await jitsiConnect(jitsiUrl(t, token, sid, true));
    assert.deepEqual(await b.next('resume greeting'), { type: 'sn', body: { value: 5, state: 'initial' } });
    b.ws.send(entry(6));
    a.ws.send(entry(7)); // the old socket is not the session's any more
    await waitFor(() => (t.logs.some((l) => l.includes(`session ${sid} is carried by another connection`)) ? true : undefined), 'old socket refused');
    for (const c of [b, a]) {
      const done = closed(c.ws);
      c.ws.close(3001);
      await done;
    }
    const [record] = await waitForJitsiRecords(t, sid);
    const dump = readDump(record.location);
    assert.deepEqual(seqs(dump), [1, 2, 3, 4, 5, 6]);
    const disconnect = dump.map((l) => JSON.parse(l)).find((l) => l[0] === 'disconnect');
    assert.equal(disconnect[2].reason, 'superseded by a new connection');
  });

  it('another token identity cannot continue a session', async () => {
    const sid = newSessionId();
    const a = await jitsiConnect(jitsiUrl(t, token, sid));
    await a.next('greeting');
    a.ws.send(messageFor(sid, '["create","PC_0",{},1700000000000,7]'));
    await waitFor(() => (t.logs.some((l) => l.includes(`Jitsi session ${sid} started`)) ? true : undefined), 'session start');
    const other = await jitsiConnect(jitsiUrl(t, sign({ rtcStats: { user: 'mallory' } }), sid, true));
    assert.deepEqual(await other.next('greeting'), { type: 'sn', body: { value: 0, state: 'initial' } });
    for (const c of [a, other]) {
      const done = closed(c.ws);
      c.ws.close(3001);
      await done;
    }
  });

  it('isolates sessions on one socket: a malformed message ends only its session', async () => {
    const good = newSessionId();
    const bad = newSessionId();
    const c = await jitsiConnect(jitsiUrl(t, token, good));
    await c.next('greeting');
    c.ws.send(messageFor(good, '["create","PC_0",{},1700000000000,1]'));
    c.ws.send(messageFor(bad, '["create","PC_0",{},1700000000000,1]'));
    c.ws.send(JSON.stringify({ statsSessionId: bad, type: 'stats-entry', data: '{"not":"an entry"}' }));
    c.ws.send(messageFor(bad, '["create","PC_1",{},1700000000001,2]'));
    c.ws.send('garbage that names no session');
    c.ws.send(messageFor(good, '["create","PC_1",{},1700000000001,2]'));
    const [badRecord] = await waitForJitsiRecords(t, bad);
    assert.equal(badRecord.closeCode, 3002);
    assert.equal(badRecord.frameCount, 1);
    const badClose = JSON.parse(readDump(badRecord.location).at(-1)!)[2];
    assert.equal(badClose.reason, 'malformed message: stats-entry entry is not an array of at least 3 elements');
    assert.ok(t.logs.some((l) => l.includes(`Jitsi session ${bad} ended: malformed message`)));
    assert.ok(t.logs.some((l) => l.includes('dropped a message that names no session (message is not JSON)')));
    assert.equal(c.ws.readyState, c.ws.OPEN);
    const done = closed(c.ws);
    c.ws.close(3001);
    await done;
    const [goodRecord] = await waitForJitsiRecords(t, good);
    assert.equal(goodRecord.frameCount, 2);
    assert.equal(goodRecord.closeCode, 3001);
  });
});

describe('Jitsi clients with IP obfuscation (default)', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({});
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  it('masks addresses inside the entry strings', async () => {
    const token = sign(IDENTITY);
    const sid = newSessionId();
    const c = await jitsiConnect(jitsiUrl(t, token, sid));
    await c.next('greeting');
    const cand = '["onicecandidate","PC_0",{"candidate":"candidate:1 1 udp 2122260223 203.0.113.7 54321 typ host","sdpMid":"0","sdpMLineIndex":0},1700000000000,1]';
    const stats = '["getstats","PC_0",{"RTCIceCandidate_1":{"address":"2001:db8:85a3::8a2e:370:7334","candidateType":"srflx"},"timestamp":1},1700000000001,2]';
    const done = closed(c.ws);
    c.ws.send(messageFor(sid, cand));
    c.ws.send(messageFor(sid, stats));
    c.ws.close(3001);
    await done;
    const [record] = await waitForJitsiRecords(t, sid);
    const dump = readDump(record.location).join('\n');
    assert.ok(dump.includes('203.0.113.x 54321 typ host'), dump);
    assert.ok(dump.includes('"address":"2001:db8:85a3:x:x:x:x:x"'), dump);
    assert.ok(!dump.includes('203.0.113.7') && !dump.includes('8a2e:370:7334'));
  });
});

// Its own app, after the others: each app routes Nest's static loggers to itself.
describe('Jitsi clients refused', () => {
  it('refuses a missing or bad token with 3002 and a reason, storing nothing', async () => {
    const t2 = await startApp({});
    try {
      const sid = newSessionId();
      for (const [url, reason] of [
        [t2.url(`/meet.example.com/room1?statsSessionId=${sid}&isReconnect=false`), 'rtcstats-token missing'],
        [jitsiUrl(t2, sign(IDENTITY, 'wrong-secret-0123456789-abcdefghijklmnop'), sid), 'invalid signature'],
        [t2.url(`/t/not-a-jwt/room1?statsSessionId=${sid}`), 'invalid token'],
      ]) {
        const c = await jitsiConnect(url);
        const done = closed(c.ws);
        c.ws.send(messageFor(sid, '["create","PC_0",{},1,1]'));
        assert.deepEqual(await done, { code: 3002, reason });
        assert.equal(c.received.length, 0, 'a refused client is not greeted');
      }
      assert.ok(t2.logs.some((l) => l.includes('Authentication is configured but rtcstats-token is missing')));
      assert.ok(t2.logs.some((l) => l.includes('JWT authorization failed JsonWebTokenError: invalid signature')));
      assert.deepEqual(storedFiles(t2.dataDir), []);
    } finally {
      await t2.close();
      fs.rmSync(t2.dataDir, { recursive: true, force: true });
    }
  });
});

describe('Jitsi sessions at shutdown', () => {
  it('finalizes live and parked sessions (1001) before the process exits; clients see 1001 and may retry elsewhere', async () => {
    const t = await startApp({ RTCSTATS_JITSI_RESUME_GRACE: '10m' });
    try {
      const token = sign(IDENTITY);
      const live = newSessionId();
      const parked = newSessionId();
      const a = await jitsiConnect(jitsiUrl(t, token, live));
      const b = await jitsiConnect(jitsiUrl(t, token, parked));
      await a.next('greeting');
      await b.next('greeting');
      a.ws.send(messageFor(live, '["create","PC_0",{},1700000000000,1]'));
      b.ws.send(messageFor(parked, '["create","PC_0",{},1700000000000,1]'));
      await waitFor(() => (fs.readdirSync(`${t.dataDir}/work`).length === 2 ? true : undefined), 'two live dumps');
      const dropped = closed(b.ws);
      b.ws.terminate();
      await dropped;
      await waitFor(() => (t.logs.some((l) => l.includes(`Jitsi session ${parked}`) && l.includes('started')) ? true : undefined), 'parked session');
      const aClosed = closed(a.ws);
      await t.close({ keepData: true }); // read back below, removed in finally
      assert.deepEqual(await aClosed, { code: 1001, reason: 'server shutting down' });
      const store = await openSqliteMetadataStore(`${t.dataDir}/rtcstats.sqlite`);
      try {
        const rows = (await store.find({}, 100)).filter((r) => r.statsSessionId === live || r.statsSessionId === parked);
        assert.equal(rows.length, 2);
        for (const r of rows) {
          assert.equal(r.closeCode, 1001);
          assert.equal(JSON.parse(readDump(r.location).at(-1)!)[2].reason, 'server shutting down');
        }
      } finally {
        await store.close();
      }
      assert.deepEqual(fs.readdirSync(`${t.dataDir}/work`), [], 'no live dump left behind');
    } finally {
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});

describe('Jitsi acknowledgement interval', () => {
  it('acknowledges entries below the count once the interval has passed', async () => {
    const t = await startApp({ RTCSTATS_JITSI_ACK_INTERVAL: '1' });
    try {
      const sid = newSessionId();
      const c = await jitsiConnect(jitsiUrl(t, sign(IDENTITY), sid));
      await c.next('greeting');
      for (let seq = 1; seq <= 3; seq++) c.ws.send(messageFor(sid, `["getstats","PC_0",{},${1700000000000 + seq},${seq}]`));
      assert.deepEqual(await c.next('interval ack'), { type: 'sn', body: { value: 3 } });
      const done = closed(c.ws);
      c.ws.close(3001);
      await done;
      await waitForJitsiRecords(t, sid);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});

describe('Jitsi sessions and failures', () => {
  it('emergency revoke ends the sessions of that kid with 3002 (no retry), keeps their dumps, spares the others', async () => {
    const A = 'jitsi-revoke-secret-A-0123456789-abcdefgh';
    const B = 'jitsi-revoke-secret-B-0123456789-abcdefgh';
    const dir = tempDir('rtcstats-keyring-');
    const file = path.join(dir, 'keyring.json');
    const spec = (stateA: string): KeyringFileSpec => ({
      keys: [
        { kid: 'kb', secret: B, state: 'current' },
        { kid: 'ka', secret: A, state: stateA as 'previous' },
      ],
    });
    writeKeyring(file, spec('previous'));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      const leaked = newSessionId();
      const safe = newSessionId();
      const a = await jitsiConnect(jitsiUrl(t, sign(IDENTITY, A, { keyid: 'ka' }), leaked));
      const b = await jitsiConnect(jitsiUrl(t, sign(IDENTITY, B, { keyid: 'kb' }), safe));
      await a.next('greeting');
      await b.next('greeting');
      a.ws.send(messageFor(leaked, '["create","PC_0",{},1700000000000,1]'));
      b.ws.send(messageFor(safe, '["create","PC_0",{},1700000000000,1]'));
      await waitFor(() => (fs.readdirSync(`${t.dataDir}/work`).length === 2 ? true : undefined), 'two live dumps');
      const aClosed = closed(a.ws);
      writeKeyring(file, spec('revoked'));
      assert.deepEqual(await aClosed, { code: 3002, reason: 'key revoked' });
      const [record] = await waitForJitsiRecords(t, leaked);
      assert.deepEqual([record.closeCode, record.frameCount], [3002, 1]);
      // Its client reconnecting with the revoked kid is refused with 3002 too (no retry loop).
      const again = await jitsiConnect(jitsiUrl(t, sign(IDENTITY, A, { keyid: 'ka' }), newSessionId()));
      assert.deepEqual(await closed(again.ws), { code: 3002, reason: 'key revoked' });
      assert.equal(b.ws.readyState, b.ws.OPEN);
      const bClosed = closed(b.ws);
      b.ws.close(3001);
      await bClosed;
      assert.equal((await waitForJitsiRecords(t, safe))[0].closeCode, 3001);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a dump that cannot be written closes the socket with 1011; the retrying client resends into a new dump', async () => {
    const t = await startApp({});
    const work = path.join(t.dataDir, 'work');
    try {
      const token = sign(IDENTITY);
      const sid = newSessionId();
      const entry = (seq: number) => messageFor(sid, `["getstats","PC_0",{},${1700000000000 + seq},${seq}]`);
      const a = await jitsiConnect(jitsiUrl(t, token, sid));
      await a.next('greeting');
      // The work folder is gone and a file stands in its way: the live dump cannot be created.
      fs.rmSync(work, { recursive: true, force: true });
      fs.writeFileSync(work, '');
      const aClosed = closed(a.ws);
      a.ws.send(entry(1));
      a.ws.send(entry(2));
      assert.deepEqual(await aClosed, { code: 1011, reason: 'cannot record session' });
      assert.ok(t.logs.some((l) => l.includes(`Jitsi session ${sid}: dump write failed`)));
      fs.rmSync(work);
      fs.mkdirSync(work);
      // Nothing was acknowledged, so the client resends both after the greeting.
      const b = await jitsiConnect(jitsiUrl(t, token, sid, true));
      assert.deepEqual(await b.next('greeting'), { type: 'sn', body: { value: 0, state: 'initial' } });
      const bClosed = closed(b.ws);
      b.ws.send(entry(1));
      b.ws.send(entry(2));
      b.ws.close(3001);
      await bClosed;
      const [record] = await waitForJitsiRecords(t, sid);
      assert.deepEqual(seqs(readDump(record.location)), [1, 2]);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});
