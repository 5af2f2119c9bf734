import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseJitsiUrl } from './jitsi-url.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJl';
const SID = '9a8aabfa-8155-48b0-ba70-05248d3be174';

describe('parseJitsiUrl', () => {
  it('query value followed by the path the client appended', () => {
    const u = parseJitsiUrl(`/?rtcstats-token=${JWT}/meet.example.com/room1?statsSessionId=${SID}&isReconnect=true`);
    assert.deepEqual(u.tokens, [JWT]);
    assert.equal(u.statsSessionId, SID);
    assert.equal(u.isReconnect, true);
    assert.equal(u.path, '/meet.example.com/room1');
    assert.equal(u.url, `/?rtcstats-token=obfuscated/meet.example.com/room1?statsSessionId=${SID}&isReconnect=true`);
  });

  it('path form /t/<token>/...', () => {
    const u = parseJitsiUrl(`/stats/t/${JWT}/room1?statsSessionId=${SID}&isReconnect=false`);
    assert.deepEqual(u.tokens, [JWT]);
    assert.equal(u.statsSessionId, SID);
    assert.equal(u.isReconnect, false);
    assert.equal(u.path, '/stats/t/obfuscated/room1');
    assert.ok(!u.url.includes(JWT));
  });

  it('plain query parameter', () => {
    const u = parseJitsiUrl(`/room1?statsSessionId=${SID}&rtcstats-token=${encodeURIComponent(JWT)}&isReconnect=false`);
    assert.deepEqual(u.tokens, [JWT]);
    assert.equal(u.url, `/room1?statsSessionId=${SID}&rtcstats-token=obfuscated&isReconnect=false`);
  });

  it('no token, and tokens in two places', () => {
    assert.deepEqual(parseJitsiUrl(`/room1?statsSessionId=${SID}`).tokens, []);
    assert.equal(parseJitsiUrl(undefined).path, '/');
    assert.equal(parseJitsiUrl(`/t/${JWT}/room?rtcstats-token=${JWT}`).tokens.length, 2);
  });
});
