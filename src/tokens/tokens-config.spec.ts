import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConfigError, parseConfig } from '../config/app-config.js';

const env = (values: Record<string, string>) => (name: string) => values[name];
const KEY_1 = 'api-key-one-0123456789-abcdefghijklmnopq';
const KEY_2 = 'api-key-two-0123456789-abcdefghijklmnopq';

describe('POST /tokens settings', () => {
  it('defaults: no API key, no public URL, 600 requests per key and 10 failures per IP per 60 s', () => {
    const { tokens } = parseConfig(env({}));
    assert.deepEqual(tokens, { apiKeys: [], publicUrl: undefined, rateLimit: 600, authFailureLimit: 10, rateLimitWindowSec: 60 });
  });

  it('reads every setting', () => {
    const { tokens } = parseConfig(
      env({
        RTCSTATS_API_KEYS: ` ${KEY_1} ,${KEY_2},`.replace(/,$/, ''),
        RTCSTATS_PUBLIC_URL: 'wss://stats.example.com/rtc',
        RTCSTATS_TOKENS_RATE_LIMIT: '1200',
        RTCSTATS_AUTH_FAILURE_LIMIT: '5',
        RTCSTATS_RATE_LIMIT_WINDOW: '2m',
      }),
    );
    assert.deepEqual(
      tokens.apiKeys.map((k) => [k.id, k.key.toString()]),
      [
        ['RTCSTATS_API_KEYS[1]', KEY_1],
        ['RTCSTATS_API_KEYS[2]', KEY_2],
      ],
    );
    assert.equal(tokens.publicUrl, 'wss://stats.example.com/rtc');
    assert.equal(tokens.rateLimit, 1200);
    assert.equal(tokens.authFailureLimit, 5);
    assert.equal(tokens.rateLimitWindowSec, 120);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ RTCSTATS_API_KEYS: 'short' }, /^RTCSTATS_API_KEYS: key 1 is 5 bytes, at least 32 are required$/],
    [{ RTCSTATS_API_KEYS: `${KEY_1},,${KEY_2}` }, /^RTCSTATS_API_KEYS: key 2 is 0 bytes/],
    [{ RTCSTATS_API_KEYS: `${KEY_1},${KEY_1}` }, /^RTCSTATS_API_KEYS: key 2 repeats an earlier key$/],
    [{ RTCSTATS_PUBLIC_URL: 'https://stats.example.com' }, /^RTCSTATS_PUBLIC_URL must be a ws:\/\/ or wss:\/\/ URL/],
    [{ RTCSTATS_PUBLIC_URL: 'stats.example.com' }, /^RTCSTATS_PUBLIC_URL must be a ws:\/\/ or wss:\/\/ URL/],
    [{ RTCSTATS_TOKENS_RATE_LIMIT: '0' }, /^RTCSTATS_TOKENS_RATE_LIMIT must be between 1 and/],
    [{ RTCSTATS_AUTH_FAILURE_LIMIT: 'ten' }, /^RTCSTATS_AUTH_FAILURE_LIMIT must be a whole number/],
    [{ RTCSTATS_RATE_LIMIT_WINDOW: '0' }, /^RTCSTATS_RATE_LIMIT_WINDOW must be between 1s and 86400s/],
  ];
  for (const [values, message] of bad) {
    it(`refuses ${JSON.stringify(values).slice(0, 60)}`, () => {
      assert.throws(() => parseConfig(env(values)), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, message);
        for (const v of [KEY_1, 'short']) assert.ok(!err.message.includes(v), 'the key is never in the message');
        return true;
      });
    });
  }
});
