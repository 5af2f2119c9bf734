import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { obfuscateTokenInUrl } from './connection-info.js';

describe('obfuscateTokenInUrl', () => {
  it('replaces every rtcstats-token value, however encoded, and keeps the rest', () => {
    assert.equal(obfuscateTokenInUrl('/app'), '/app');
    assert.equal(obfuscateTokenInUrl('/app?room=1'), '/app?room=1');
    assert.equal(obfuscateTokenInUrl('/a?rtcstats-token=eyJ.x.y&room=2'), '/a?rtcstats-token=obfuscated&room=2');
    assert.equal(obfuscateTokenInUrl('/a?x=1&rtcstats-token=t1&rtcstats-token=t2'), '/a?x=1&rtcstats-token=obfuscated&rtcstats-token=obfuscated');
    assert.equal(obfuscateTokenInUrl('/a?rtcstats%2Dtoken=secret'), '/a?rtcstats%2Dtoken=obfuscated');
    assert.equal(obfuscateTokenInUrl('/a?rtcstats-token'), '/a?rtcstats-token=obfuscated');
    assert.equal(obfuscateTokenInUrl('/a?rtcstats-token=t#frag'), '/a?rtcstats-token=obfuscated#frag');
    assert.equal(obfuscateTokenInUrl('/a?%E0%A4%A=1&rtcstats-token=t'), '/a?%E0%A4%A=1&rtcstats-token=obfuscated');
  });
});
