import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  burstConnect,
  clientFrame,
  closed,
  connect,
  FIXTURES,
  fixtureLines,
  liveFilesGone,
  rawFrames,
  readDump,
  removeTempDir,
  sendAndClose,
  sign,
  startApp,
  storedFiles,
  TestClock,
  type TestApp,
  tokenQuery,
  waitFor,
  waitForRecords,
  within,
} from './helpers.js';

const FIXTURE_30S = 'rtcstats/chrome-loopback-30s.frames.jsonl';
const meta30 = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'rtcstats/chrome-loopback-30s.meta.json'), 'utf8'));

describe('ingestion (real ws clients against the real app)', () => {
  let t: TestApp;
  before(async () => {
    // Frames are compared byte for byte here; obfuscation has its own tests.
    t = await startApp({ RTCSTATS_OBFUSCATE_IPS: 'false' });
  });
  after(() => t.close());

  it('replays a real Chrome session into a byte-identical dump with header, metadata and close line', async () => {
    const frames = fixtureLines(FIXTURE_30S);
    assert.equal(frames.length, meta30.frameCount);
    const token = sign({ rtcStats: { user: 'u-replay', session: 's-replay', conference: 'c-replay' } });
    const ws = await connect(t.url(`/app/loopback${tokenQuery(token)}&room=fixture-30s`), 'rtcstats#5.0', {
      headers: { 'User-Agent': meta30.userAgent },
      origin: meta30.origin,
    });
    assert.equal(ws.protocol, 'rtcstats#5.0');
    const { code } = await sendAndClose(ws, frames, 1000);
    assert.equal(code, 1000);

    const [record] = await waitForRecords(t, 1, { session: 's-replay' });
    assert.equal(record.frameCount, meta30.frameCount);
    assert.equal(record.bytes, meta30.byteCount);
    assert.equal(record.user, 'u-replay');
    assert.equal(record.conference, 'c-replay');
    assert.equal(record.closeCode, 1000);
    assert.equal(record.path, '/app/loopback');
    assert.equal(record.origin, meta30.origin);
    assert.equal(record.userAgent, meta30.userAgent);
    assert.equal(record.clientProtocol, 'rtcstats#5.0');
    assert.match(record.kid!, /^env-/);
    assert.ok(record.endTime >= record.startTime);

    const lines = readDump(record.location);
    assert.equal(lines[0], 'RTCStatsDump');
    const header = JSON.parse(lines[1]);
    assert.deepEqual(Object.keys(header).slice(0, 7), [
      'url',
      'origin',
      'userAgent',
      'startTime',
      'remoteAddresses',
      'clientProtocol',
      'fileFormat',
    ]);
    assert.equal(header.url, '/app/loopback?rtcstats-token=obfuscated&room=fixture-30s');
    assert.equal(header.fileFormat, 3);
    assert.equal(header.startTime, record.startTime);
    assert.deepEqual(header.remoteAddresses, ['127.0.0.1']);
    assert.ok(!lines.join('\n').includes(token), 'the token must not be stored');
    assert.deepEqual(lines.slice(2, -1), frames, 'frame lines must equal the input lines');
    const close = JSON.parse(lines[lines.length - 1]);
    assert.equal(close[0], 'close');
    assert.equal(close[1], null);
    assert.equal(close[2], 1000);
    assert.equal(typeof close[3], 'number');
    assert.ok(close[3] >= 0);
    // The record is inserted before the live file is unlinked: wait for the unlink, do not race it.
    await waitFor(() => (fs.existsSync(`${t.dataDir}/work/${record.id}.jsonl`) ? undefined : true), 'live file removed after finalizing');
  });

  it('accepts any path, echoes rtcstats#5.0 and rtcstats#4.0, and accepts clients without a subprotocol', async () => {
    const token = sign({ rtcStats: { session: 'paths' } });
    const cases: [string, string | string[], string][] = [
      ['/', 'rtcstats#5.0', 'rtcstats#5.0'],
      ['/deep/app/path/', 'rtcstats#4.0', 'rtcstats#4.0'],
      ['/x', ['foo', 'rtcstats#5.0'], 'rtcstats#5.0'],
      ['/none', [], ''],
    ];
    for (const [p, offered, expected] of cases) {
      const ws = await connect(t.url(`${p}${tokenQuery(token)}`), offered);
      assert.equal(ws.protocol, expected, `subprotocol for ${p}`);
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
    }
    const rows = await waitForRecords(t, cases.length, { session: 'paths' });
    assert.deepEqual(rows.map((r) => r.path).sort(), cases.map(([p]) => p).sort());
  });

  it('keeps non-JSON text frames verbatim and counts them', async () => {
    const token = sign({ rtcStats: { session: 'nonjson' } });
    const frames = ['not json at all', '[1,null', '{"a":1}', '["g","PC_0",{"1":{"80":250}},1000]'];
    const ws = await connect(t.url(`/${tokenQuery(token)}`));
    assert.equal((await sendAndClose(ws, frames)).code, 1000);
    const [record] = await waitForRecords(t, 1, { session: 'nonjson' });
    assert.equal(record.frameCount, 4);
    assert.deepEqual(readDump(record.location).slice(2, -1), frames);
  });

  it('refuses a binary frame with 1003 and keeps the frames before it', async () => {
    const token = sign({ rtcStats: { session: 'binary' } });
    const ws = await connect(t.url(`/${tokenQuery(token)}`));
    const done = closed(ws);
    ws.send('[1,null,"before",0]');
    ws.send(Buffer.from([0, 1, 2, 3]));
    const { code, reason } = await done;
    assert.equal(code, 1003);
    assert.match(reason, /binary/);
    const [record] = await waitForRecords(t, 1, { session: 'binary' });
    assert.equal(record.closeCode, 1003);
    const lines = readDump(record.location);
    assert.deepEqual(lines.slice(2, -1), ['[1,null,"before",0]']);
    assert.equal(JSON.parse(lines[lines.length - 1])[2], 1003);
  });

  it('leaves no file and no record for a connection that sent no frame', async () => {
    await liveFilesGone(t);
    const before = storedFiles(t.dataDir);
    const token = sign({ rtcStats: { session: 'empty' } });
    const ws = await connect(t.url(`/${tokenQuery(token)}`));
    assert.equal((await sendAndClose(ws, [])).code, 1000);
    // A later connection's record proves the empty one has been fully processed.
    const ws2 = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'after-empty' } }))}`));
    assert.equal((await sendAndClose(ws2, ['[1]'])).code, 1000);
    const [after] = await waitForRecords(t, 1, { session: 'after-empty' });
    await liveFilesGone(t);
    assert.equal((await t.metadata.find({ session: 'empty' })).length, 0);
    assert.deepEqual(storedFiles(t.dataDir), [...before, `dumps/${after.id}.jsonl.gz`].sort());
  });

  it('records frames sent in the same packet as the upgrade request', async () => {
    const token = sign({ rtcStats: { session: 'burst' } });
    const frames = Array.from({ length: 20 }, (_, i) => `[${i},null,{"burst":${i}},1]`);
    const code = await burstConnect(t.port, `/burst${tokenQuery(token)}`, frames);
    assert.equal(code, 1000);
    const [record] = await waitForRecords(t, 1, { session: 'burst' });
    assert.deepEqual(readDump(record.location).slice(2, -1), frames);
  });

  it('keeps recording a connection whose token expires while it is open', async () => {
    const clock = new TestClock();
    const strict = await startApp({ RTCSTATS_JWT_CLOCK_TOLERANCE: '0' }, { clock });
    try {
      // Dated by the app's clock: jsonwebtoken's own iat is the real time, which is ahead of the
      // clock by however long the boot took, and the verifier refuses an iat in its future.
      const issued = Math.floor(clock.now() / 1000);
      const token = sign({ rtcStats: { session: 'aging' }, iat: issued, exp: issued + 2 });
      const ws = await connect(strict.url(`/${tokenQuery(token)}`));
      ws.send('[1,null,"fresh",0]');
      clock.advance(3000);
      // The token is expired now: a new connection with it is refused...
      const late = await connect(strict.url(`/${tokenQuery(token)}`));
      assert.equal((await closed(late)).code, 1008);
      // ...but the open one keeps recording.
      assert.equal((await sendAndClose(ws, ['[2,null,"after expiry",3000]'])).code, 1000);
      const [record] = await waitForRecords(strict, 1, { session: 'aging' });
      assert.equal(record.frameCount, 2);
      assert.deepEqual(readDump(record.location).slice(2, -1), ['[1,null,"fresh",0]', '[2,null,"after expiry",3000]']);
    } finally {
      await strict.close();
    }
  });

  it('loses nothing with 200 concurrent connections sending 100 frames each', async () => {
    const clients = 200;
    const perClient = 100;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const token = sign({ rtcStats: { user: `load-${c}`, session: 'load' } });
        const ws = await connect(t.url(`/load/${c}${tokenQuery(token)}`));
        const frames = Array.from({ length: perClient }, (_, i) => `["g","PC_0",{"c":${c},"i":${i}},1000]`);
        assert.equal((await sendAndClose(ws, frames)).code, 1000);
      }),
    );
    const rows = await waitForRecords(t, clients, { session: 'load' });
    assert.equal(rows.length, clients);
    for (const r of rows) {
      const c = Number(r.user!.slice('load-'.length));
      assert.equal(r.frameCount, perClient);
      const lines = readDump(r.location).slice(2, -1);
      assert.deepEqual(lines, Array.from({ length: perClient }, (_, i) => `["g","PC_0",{"c":${c},"i":${i}},1000]`));
    }
  });
});

describe('ingestion limits and liveness', () => {
  it('closes a frame over RTCSTATS_MAX_PAYLOAD with 1009 and keeps the dump up to it', async () => {
    const t = await startApp({ RTCSTATS_MAX_PAYLOAD: '2048' });
    try {
      const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'big' } }))}`));
      const done = closed(ws);
      ws.send('[1,null,"small",0]');
      ws.send(`[2,null,"${'x'.repeat(4096)}",1]`);
      assert.equal((await done).code, 1009);
      const [record] = await waitForRecords(t, 1, { session: 'big' });
      assert.equal(record.closeCode, 1009);
      assert.equal(record.frameCount, 1);
      const lines = readDump(record.location);
      assert.deepEqual(lines.slice(2, -1), ['[1,null,"small",0]']);
      assert.equal(JSON.parse(lines[lines.length - 1])[2], 1009);
    } finally {
      await t.close();
    }
  });

  it('detects a dead peer by ping and finalizes its dump with 1006', async () => {
    const t = await startApp({ RTCSTATS_PING_INTERVAL_MS: '200' });
    try {
      // autoPong off: the client stops answering pings, like a vanished browser.
      const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'dead' } }))}`), 'rtcstats#5.0', { autoPong: false });
      const done = closed(ws);
      ws.send('[1,null,"last words",0]');
      assert.equal((await done).code, 1006);
      const [record] = await waitForRecords(t, 1, { session: 'dead' });
      assert.equal(record.closeCode, 1006);
      assert.deepEqual(readDump(record.location).slice(2, -1), ['[1,null,"last words",0]']);
    } finally {
      await t.close();
    }
  });

  it('closes live connections with 1001 on shutdown and stores their dumps', async () => {
    const t = await startApp();
    const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'shutdown' } }))}`));
    const done = closed(ws);
    ws.send('[1,null,"x",0]');
    await waitFor(() => (fs.readdirSync(`${t.dataDir}/work`).length > 0 ? true : undefined), 'live file');
    const closing = t.close({ keepData: true });
    assert.equal((await done).code, 1001);
    await within(closing, 'app close');
    const again = await startApp({ RTCSTATS_DATA_DIR: t.dataDir });
    try {
      const [record] = await waitForRecords(again, 1, { session: 'shutdown' });
      assert.equal(record.closeCode, 1001);
      assert.equal(record.frameCount, 1);
    } finally {
      await again.close();
      removeTempDir(t.dataDir);
    }
  });

  it('one client sending garbage never affects another client', async () => {
    const t = await startApp();
    try {
      const good = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'neighbour' } }))}`));
      good.send('[1,null,"before",0]');
      // Invalid UTF-8 in a text frame, then a reserved opcode: protocol errors on raw sockets.
      const bad = [Buffer.from([0xc3, 0x28]), Buffer.from('x')];
      const codes = await Promise.all([
        rawFrames(t.port, `/${tokenQuery(sign({ rtcStats: { session: 'garbage-utf8' } }))}`, [clientFrame('[1,null,"ok",0]'), clientFrame(bad[0])]),
        rawFrames(t.port, `/${tokenQuery(sign({ rtcStats: { session: 'garbage-opcode' } }))}`, [clientFrame('[1,null,"ok",0]'), clientFrame(bad[1], 0x3)]),
      ]);
      assert.deepEqual(codes, [1007, 1002]);
      const utf8 = await waitForRecords(t, 1, { session: 'garbage-utf8' });
      assert.equal(utf8[0].closeCode, 1007);
      assert.deepEqual(readDump(utf8[0].location).slice(2, -1), ['[1,null,"ok",0]']);
      assert.equal(good.readyState, good.OPEN);
      assert.equal((await sendAndClose(good, ['[2,null,"after",1]'])).code, 1000);
      const [record] = await waitForRecords(t, 1, { session: 'neighbour' });
      assert.deepEqual(readDump(record.location).slice(2, -1), ['[1,null,"before",0]', '[2,null,"after",1]']);
    } finally {
      await t.close();
    }
  });

  it('answers GET /healthcheck with 200 and an empty body', async () => {
    const t = await startApp();
    try {
      const res = await fetch(`http://127.0.0.1:${t.port}/healthcheck`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '');
      assert.equal(res.headers.get('x-powered-by'), null);
    } finally {
      await t.close();
    }
  });
});
