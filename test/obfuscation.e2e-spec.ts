import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { connect, fixtureLines, readDump, sendAndClose, sign, startApp, type TestApp, tokenQuery, waitForRecords } from './helpers.js';

// Host addresses of the machine that recorded the fixtures, in every textual form they could take.
const LEAKS = [/192\.0\.2\.2(?!\d)/, /fd00::2(?![0-9a-f])/i, /fd00:0{0,4}:0{0,4}:0{0,4}:0{0,4}:0{0,4}:0{0,4}:0{0,3}2/i, /::ffff:c000:202/i];
const HOST = /192\.0\.2\.2(?!\d)|fd00::2(?![0-9a-f])/g;
const MASKED = /192\.0\.2\.x|fd00:0:0:x:x:x:x:x/g;

describe('IP obfuscation on the ingestion path', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ RTCSTATS_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8' });
  });
  after(() => t.close());

  for (const fixture of ['chrome-loopback-30s', 'chrome-loopback-90s']) {
    it(`replaying ${fixture}: no host address reaches the dump, other bytes untouched`, async () => {
      const frames = fixtureLines(`rtcstats/${fixture}.frames.jsonl`);
      const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: fixture } }))}`));
      assert.equal((await sendAndClose(ws, frames)).code, 1000);
      const [record] = await waitForRecords(t, 1, { session: fixture });
      assert.equal(record.frameCount, frames.length);
      const stored = readDump(record.location);
      const text = stored.join('\n');
      for (const leak of LEAKS) assert.doesNotMatch(text, leak);
      const out = stored.slice(2, -1);
      assert.equal(out.length, frames.length);
      let changed = 0;
      frames.forEach((input, i) => {
        if (!HOST.test(input)) {
          assert.equal(out[i], input, `frame ${i} has no address and must be byte-identical`);
          return;
        }
        HOST.lastIndex = 0;
        changed++;
        // Only the addresses differ: the text between them is identical.
        assert.deepEqual(out[i].split(MASKED), input.split(HOST), `frame ${i} differs only in masked addresses`);
      });
      assert.ok(changed >= 8, `the fixture's address frames were rewritten (${changed})`);
    });
  }

  it('masks addresses in a frame that is not valid JSON, and still stores and counts it', async () => {
    const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'broken' } }))}`));
    const broken = '[20,"PC_0",{"candidate":"candidate:1 1 udp 2122260223 198.51.100.23 54321 typ host raddr 2001:db8:85a3::8a2e:370:7334';
    assert.equal((await sendAndClose(ws, [broken, '[1,null,"fine",0]'])).code, 1000);
    const [record] = await waitForRecords(t, 1, { session: 'broken' });
    assert.equal(record.frameCount, 2);
    const [frame] = readDump(record.location).slice(2, 3);
    assert.equal(frame, broken.replace('198.51.100.23', '198.51.100.x').replace('2001:db8:85a3::8a2e:370:7334', '2001:db8:85a3:x:x:x:x:x'));
  });

  it('keeps relay candidates, masks raddr and host candidates, rewrites SDP lines', async () => {
    const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session: 'ice' } }))}`));
    const frames = [
      '[20,"PC_0",{"candidate":"candidate:3 1 udp 41885439 203.0.113.50 3478 typ relay raddr 198.51.100.23 rport 5000 generation 0 network-id 1","sdpMid":"0","sdpMLineIndex":0},5]',
      '[10,"PC_0",{"candidate":"candidate:1 1 udp 2122260223 198.51.100.23 54321 typ host generation 0 network-id 1","sdpMid":"0","sdpMLineIndex":0},5]',
      '[8,"PC_0",{"type":"offer","sdp":"v=0\\r\\nc=IN IP4 198.51.100.23\\r\\na=rtcp:9 IN IP4 198.51.100.23\\r\\n"},3]',
      '["g","PC_0",{"5":{"134":"198.51.100.23","136":"srflx","141":"10.1.2.3","ip":"198.51.100.23"},"6":{"134":"203.0.113.50","136":"relay"},"t":1},1000]',
    ];
    assert.equal((await sendAndClose(ws, frames)).code, 1000);
    const [record] = await waitForRecords(t, 1, { session: 'ice' });
    assert.deepEqual(readDump(record.location).slice(2, -1), [
      '[20,"PC_0",{"candidate":"candidate:3 1 udp 41885439 203.0.113.50 3478 typ relay raddr 198.51.100.x rport 5000 generation 0 network-id 1","sdpMid":"0","sdpMLineIndex":0},5]',
      '[10,"PC_0",{"candidate":"candidate:1 1 udp 2122260223 198.51.100.x 54321 typ host generation 0 network-id 1","sdpMid":"0","sdpMLineIndex":0},5]',
      '[8,"PC_0",{"type":"offer","sdp":"v=0\\r\\nc=IN IP4 0.0.0.0\\r\\na=rtcp:9 IN IP4 0.0.0.0\\r\\n"},3]',
      '["g","PC_0",{"5":{"134":"198.51.100.x","136":"srflx","141":"10.1.2.x"},"6":{"134":"203.0.113.50","136":"relay"},"t":1},1000]',
    ]);
  });

  const forwarded: [string, string | undefined, string][] = [
    ['trusted proxy chain: rightmost untrusted hop', '198.51.100.7, 203.0.113.9, 10.0.0.1', '203.0.113.x'],
    ['a forged left part is ignored', '1.2.3.4, 198.51.100.7', '198.51.100.x'],
    ['no header: the peer', undefined, '127.0.0.1'],
  ];
  for (const [name, xff, expected] of forwarded) {
    it(`metadata address, ${name}`, async () => {
      const session = `xff-${name}`;
      const headers = xff === undefined ? {} : { 'X-Forwarded-For': xff };
      const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session } }))}`), 'rtcstats#5.0', { headers });
      assert.equal((await sendAndClose(ws, ['[1]'])).code, 1000);
      const [record] = await waitForRecords(t, 1, { session });
      assert.equal(record.remoteAddress, expected);
      assert.deepEqual(JSON.parse(readDump(record.location)[1]).remoteAddresses, [expected]);
    });
  }

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const untrusted = await startApp();
    try {
      const ws = await connect(untrusted.url(`/${tokenQuery(sign({ rtcStats: { session: 'spoof' } }))}`), 'rtcstats#5.0', {
        headers: { 'X-Forwarded-For': '198.51.100.7' },
      });
      assert.equal((await sendAndClose(ws, ['[1]'])).code, 1000);
      const [record] = await waitForRecords(untrusted, 1, { session: 'spoof' });
      assert.equal(record.remoteAddress, '127.0.0.1');
    } finally {
      await untrusted.close();
    }
  });

  it('RTCSTATS_OBFUSCATE_IPS=false stores addresses as sent', async () => {
    const raw = await startApp({ RTCSTATS_OBFUSCATE_IPS: 'false', RTCSTATS_TRUSTED_PROXIES: '127.0.0.1' });
    try {
      const frame = '[20,"PC_0",{"candidate":"candidate:1 1 udp 1 198.51.100.23 1 typ host"},1]';
      const ws = await connect(raw.url(`/${tokenQuery(sign({ rtcStats: { session: 'raw' } }))}`), 'rtcstats#5.0', {
        headers: { 'X-Forwarded-For': '198.51.100.7' },
      });
      assert.equal((await sendAndClose(ws, [frame])).code, 1000);
      const [record] = await waitForRecords(raw, 1, { session: 'raw' });
      assert.equal(record.remoteAddress, '198.51.100.7');
      assert.deepEqual(readDump(record.location).slice(2, -1), [frame]);
    } finally {
      await raw.close();
    }
  });
});
