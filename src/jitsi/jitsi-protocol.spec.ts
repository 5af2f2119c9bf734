import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseJitsiMessage, selectJitsiSubprotocol, snMessage, statsFormat } from './jitsi-protocol.js';

const SID = '9a8aabfa-8155-48b0-ba70-05248d3be174';

describe('Jitsi protocol', () => {
  it('selects the offered Jitsi subprotocol', () => {
    assert.equal(selectJitsiSubprotocol(new Set(['3.1_STANDARD'])), '3.1_STANDARD');
    assert.equal(selectJitsiSubprotocol(new Set(['foo', '1.0_JIGASI'])), '1.0_JIGASI');
    assert.equal(selectJitsiSubprotocol(new Set(['3.2_STANDARD'])), undefined);
  });

  it('builds sn messages the client reads', () => {
    assert.deepEqual(JSON.parse(snMessage(0, true)), { type: 'sn', body: { value: 0, state: 'initial' } });
    assert.deepEqual(JSON.parse(snMessage(42, false)), { type: 'sn', body: { value: 42 } });
  });

  it('keeps a stats-entry line exactly as the client wrote it and reads its seq', () => {
    const line = '["getstats","PC_0",{"a":{"timestamp":0,"bytesSent":5},"timestamp":1695819351617},1695819351620,17]';
    const msg = parseJitsiMessage(JSON.stringify({ statsSessionId: SID, type: 'stats-entry', data: line }), false);
    assert.equal(msg.kind, 'stats-entry');
    assert.ok(msg.kind === 'stats-entry');
    assert.equal(msg.line, line);
    assert.equal(msg.entry.seq, 17);
    assert.equal(msg.entry.method, 'getstats');
  });

  it('entries of old clients without seq are accepted', () => {
    const line = '["create","PC_0",{"bundlePolicy":"max-bundle"},1647251291781]';
    const msg = parseJitsiMessage(JSON.stringify({ statsSessionId: SID, type: 'stats-entry', data: line }), false);
    assert.ok(msg.kind === 'stats-entry');
    assert.equal(msg.entry.seq, undefined);
  });

  it("keeps the identity array's own text and reads the identity fields", () => {
    const text = `{"statsSessionId":"${SID}","type":"identity","data":["identity", null, {"confName":"room1","displayName":"Ann"},1695819338625,1]}`;
    const msg = parseJitsiMessage(text, false);
    assert.ok(msg.kind === 'identity');
    assert.equal(msg.line, '["identity", null, {"confName":"room1","displayName":"Ann"},1695819338625,1]');
    assert.equal(msg.entry.seq, 1);
    assert.deepEqual(msg.entry.identity, { confName: 'room1', displayName: 'Ann' });
  });

  it('never lets a line break split a dump line', () => {
    const data = '[\n"getstats",\n"PC_0",\n{},\n1,\n2\n]';
    const msg = parseJitsiMessage(JSON.stringify({ statsSessionId: SID, type: 'stats-entry', data }), false);
    assert.ok(msg.kind === 'stats-entry');
    assert.equal(msg.line, '["getstats","PC_0",{},1,2]');
  });

  it('tells messages that name no session from malformed ones that end a session', () => {
    assert.equal(parseJitsiMessage('not json', false).kind, 'invalid');
    assert.equal(parseJitsiMessage('[1,2]', false).kind, 'invalid');
    assert.equal(parseJitsiMessage('{"type":"stats-entry","data":"[]"}', false).kind, 'invalid');
    assert.equal(parseJitsiMessage('{"statsSessionId":"../x","type":"keepalive"}', false).kind, 'invalid');
    const bad = (data: unknown, type = 'stats-entry') => parseJitsiMessage(JSON.stringify({ statsSessionId: SID, type, data }), false);
    for (const m of [bad({}), bad('not json'), bad('{"a":1}'), bad('[1,null,2,3]'), bad('x', 'identity'), bad(undefined, undefined)]) {
      assert.equal(m.kind, 'malformed', JSON.stringify(m));
    }
    assert.equal(bad(undefined, 'keepalive').kind, 'keepalive');
    assert.equal(bad(undefined, 'close').kind, 'close');
    assert.equal(bad('x', 'future-type').kind, 'unknown');
  });

  it('backend messages are stored whole', () => {
    const text = JSON.stringify({ statsSessionId: 'jvb-1', type: 'stats-entry', data: { conferences: 3 } });
    const msg = parseJitsiMessage(text, true);
    assert.ok(msg.kind === 'stats-entry');
    assert.equal(msg.line, text);
  });

  it('derives the stats format Jitsi tools read', () => {
    assert.equal(statsFormat('3.1_STANDARD', 'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0.0.0 Safari/537.36'), 'chrome_standard');
    assert.equal(statsFormat('3.1_STANDARD', 'Mozilla/5.0 Gecko/20100101 Firefox/118.0'), 'firefox');
    assert.equal(statsFormat('3.1_STANDARD', 'Mozilla/5.0 (Macintosh) Version/17.0 Safari/605.1.15'), 'safari');
    assert.equal(statsFormat('3.0_JVB', undefined), 'jvb');
  });
});
