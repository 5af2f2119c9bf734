import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { readDump, sign, startApp, type TestApp, tokenQuery } from './helpers.js';

const META = { url: '/call?rtcstats-token=secret-token-value&room=1', origin: 'https://app.example', userAgent: 'UA', startTime: 1_700_000_000_000, remoteAddresses: ['203.0.113.7'], clientProtocol: 'rtcstats#5.0', fileFormat: 3 };
const FRAMES = [
  '[39,null,{"hardwareConcurrency":8},1700000000001]',
  '[20,"PC_0",{"candidate":"candidate:1 1 udp 2122260223 192.168.1.5 54321 typ host","sdpMid":"0","sdpMLineIndex":0},7]',
  '["g","PC_0",{"0":{"134":"203.0.113.9","136":"srflx"}},1000]',
];
const dumpText = (frames = FRAMES, close = '["close",null,1000,250]') =>
  ['RTCStatsDump', JSON.stringify(META), ...frames, ...(close ? [close] : [])].join('\n') + '\n';

function form(content: string, filename = 'dump.jsonl'): FormData {
  const f = new FormData();
  f.append('note', 'ignored field');
  f.append('file', new Blob([content]), filename);
  return f;
}

async function post(t: TestApp, pathAndQuery: string, body: FormData | string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${t.port}${pathAndQuery}`, { method: 'POST', body, headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

const recordOf = async (t: TestApp, id: string) => (await t.metadata.find({}, 10_000)).find((r) => r.id === id);
const token = () => sign({ rtcStats: { user: 'up-user', session: 'up-session', conference: 'up-conf' } });

describe('HTTP upload of a complete dump (protocol.md section 7)', () => {
  let off: TestApp;
  let t: TestApp;
  before(async () => {
    off = await startApp();
    t = await startApp({ RTCSTATS_UPLOAD_PATH: '/upload', RTCSTATS_MAX_UPLOAD_BYTES: '4096' });
  });
  after(async () => {
    await off.close();
    await t.close();
    for (const d of [off.dataDir, t.dataDir]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('404 when upload is disabled or on a wrong path', async () => {
    assert.equal((await post(off, `/upload${tokenQuery(token())}`, form(dumpText()))).status, 404);
    assert.equal((await post(t, `/uploads${tokenQuery(token())}`, form(dumpText()))).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${t.port}/upload${tokenQuery(token())}`)).status, 404);
  });

  it('403 when the token is missing or invalid', async () => {
    assert.equal((await post(t, '/upload', form(dumpText()))).status, 403);
    assert.equal((await post(t, `/upload${tokenQuery(sign({}, 'wrong-secret-0123456789-abcdefghijklmnop'))}`, form(dumpText()))).status, 403);
    assert.equal((await post(t, `/upload${tokenQuery(sign({ exp: 1000 }))}`, form(dumpText()))).status, 403);
  });

  it('400 for a body that is not multipart, has no boundary, or holds no dump', async () => {
    const q = `/upload${tokenQuery(token())}`;
    assert.equal((await post(t, q, JSON.stringify({ a: 1 }), { 'Content-Type': 'application/json' })).status, 400);
    assert.equal((await post(t, q, 'x', { 'Content-Type': 'multipart/form-data' })).status, 400);
    assert.equal((await post(t, q, form(`NotADump\n${JSON.stringify(META)}\n[1]\n`))).status, 400);
    assert.equal((await post(t, q, form('RTCStatsDump\n[1,2]\n[1]\n'))).status, 400);
    assert.equal((await post(t, q, form('RTCStatsDump\n{"url":\n[1]\n'))).status, 400);
    const noFile = new FormData();
    noFile.append('only', 'a field');
    assert.equal((await post(t, q, noFile)).status, 400);
  });

  it('422 when no frame follows the metadata line', async () => {
    assert.equal((await post(t, `/upload${tokenQuery(token())}`, form(dumpText([], '')))).status, 422);
    assert.equal((await post(t, `/upload${tokenQuery(token())}`, form(dumpText([])))).status, 422);
  });

  it('413 over RTCSTATS_MAX_UPLOAD_BYTES', async () => {
    const big = dumpText([...FRAMES, `["pad","${'z'.repeat(5000)}"]`]);
    assert.equal((await post(t, `/upload${tokenQuery(token())}`, form(big))).status, 413);
  });

  it('200 with the new id only once the dump is stored and recorded, obfuscated like a live one', async () => {
    const res = await post(t, `/upload${tokenQuery(token())}`, form(dumpText()));
    assert.equal(res.status, 200, res.body);
    const { id, frames } = JSON.parse(res.body);
    assert.equal(frames, 3);
    const record = await recordOf(t, id);
    assert.ok(record, 'recorded before the answer');
    assert.equal(record.user, 'up-user');
    assert.equal(record.session, 'up-session');
    assert.equal(record.conference, 'up-conf');
    assert.equal(record.closeCode, 1000);
    assert.equal(record.frameCount, 3);
    assert.equal(record.path, '/call');
    assert.equal(record.remoteAddress, '203.0.113.x');
    const lines = readDump(record.location);
    assert.equal(lines[0], 'RTCStatsDump');
    const header = JSON.parse(lines[1]);
    assert.equal(header.url, '/call?rtcstats-token=obfuscated&room=1');
    assert.equal(header.dumpId, id);
    assert.deepEqual(header.remoteAddresses, ['203.0.113.x']);
    assert.equal(lines.length, 2 + 3 + 1);
    assert.equal(lines[2], FRAMES[0]);
    assert.match(lines[3], /192\.168\.1\.x 54321 typ host/);
    assert.ok(!lines.join('\n').includes('192.168.1.5') && !lines.join('\n').includes('203.0.113.9'), 'addresses masked');
    assert.ok(!lines.join('\n').includes('secret-token-value'));
    assert.equal(lines[5], '["close",null,1000,250]');
    assert.deepEqual(fs.readdirSync(path.join(t.dataDir, 'outbox')), []);
  });

  it('a dump without a close line is stored with 1005 (no status)', async () => {
    const res = await post(t, `/upload${tokenQuery(token())}`, form(dumpText(FRAMES, '')));
    assert.equal(res.status, 200, res.body);
    const record = await recordOf(t, JSON.parse(res.body).id);
    assert.equal(record?.closeCode, 1005);
    assert.equal(readDump(record!.location).at(-1), '["close",null,1005,0]');
  });
});
