import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';

import { REDIS_URL, redisPrefix, redisUnavailable } from './backends.js';
import { closed, connect, sign, startApp, type TestApp, tokenQuery, within } from './helpers.js';

const API_KEY = 'api-key-one-0123456789-abcdefghijklmnopq';
const LIMIT = 10;

async function post(t: TestApp, apiKey = API_KEY): Promise<number> {
  const res = await within(
    fetch(`http://127.0.0.1:${t.port}/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: '{}',
    }),
    'POST /tokens',
  );
  await res.arrayBuffer();
  return res.status;
}

/** Sends `n` requests at once, alternating between the instances; returns the statuses per instance. */
async function spread(apps: TestApp[], n: number, apiKey = API_KEY): Promise<number[][]> {
  const statuses = await Promise.all(Array.from({ length: n }, (_, i) => post(apps[i % apps.length], apiKey).then((s) => [i % apps.length, s])));
  return apps.map((_, a) => statuses.filter(([i]) => i === a).map(([, s]) => s));
}

async function twoInstances(env: Record<string, string>): Promise<TestApp[]> {
  const base = { RTCSTATS_API_KEYS: API_KEY, RTCSTATS_TOKENS_RATE_LIMIT: String(LIMIT), RTCSTATS_AUTH_FAILURE_LIMIT: '3', ...env };
  return [await startApp(base), await startApp(base)];
}

async function stop(apps: TestApp[]): Promise<void> {
  for (const t of apps) {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  }
}

describe('POST /tokens rate limit across instances', () => {
  describe('with RTCSTATS_REDIS_URL (shared state)', { skip: redisUnavailable }, () => {
    const redis = redisPrefix();
    let apps: TestApp[] = [];
    after(async () => {
      await stop(apps);
      await redis.clean();
    });

    it(`accepts at most ${LIMIT} requests per API key in total over two instances`, async () => {
      apps = await twoInstances({ RTCSTATS_REDIS_URL: REDIS_URL, RTCSTATS_REDIS_KEY_PREFIX: redis.prefix });
      const perInstance = await spread(apps, 3 * LIMIT);
      const accepted = perInstance.flat().filter((s) => s === 201).length;
      assert.equal(accepted, LIMIT, `the sum of accepted requests is the limit (per instance: ${perInstance.map((s) => s.filter((x) => x === 201).length)})`);
      assert.ok(perInstance.flat().every((s) => s === 201 || s === 429), 'the rest get 429');
      assert.ok((await redis.keys()).length > 0, 'the state is in Redis under the test prefix');
    });

    it('blocks a client that failed authentication on one instance on the other too', async () => {
      // Three wrong keys on instance A reach the failure limit (3)...
      for (let i = 0; i < 3; i++) assert.equal(await post(apps[0], `${API_KEY.slice(0, -1)}x`), 401);
      assert.equal(await post(apps[0], `${API_KEY.slice(0, -1)}x`), 429);
      // ...and instance B refuses that client even with the right key.
      assert.equal(await post(apps[1]), 429);
    });
  });

  describe('with RTCSTATS_REDIS_URL pointing at nothing', () => {
    let apps: TestApp[] = [];
    let server: net.Server | undefined;
    after(async () => {
      await stop(apps);
      if (server) await new Promise((r) => server!.close(r));
    });

    it('answers POST /tokens 503 (fail closed, no hang) while Redis is unreachable; the WebSocket side is unaffected', async () => {
      // A port that was just free: nothing listens there.
      server = net.createServer();
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      await new Promise((r) => server!.close(r));
      server = undefined;
      apps = [await startApp({ RTCSTATS_API_KEYS: API_KEY, RTCSTATS_REDIS_URL: `redis://:redis-password@127.0.0.1:${port}` })];
      assert.equal(await post(apps[0]), 503);
      const ws = await connect(apps[0].url(tokenQuery(sign({ rtcStats: { session: 'r' } }))));
      ws.close(1000);
      assert.equal((await closed(ws)).code, 1000);
      assert.ok(apps[0].logs.some((l) => /Redis \(RTCSTATS_REDIS_URL\) unavailable/.test(l)));
      assert.ok(!apps[0].logs.some((l) => l.includes('redis-password')), 'the URL password is never logged');
    });
  });

  describe('without RTCSTATS_REDIS_URL (per process)', () => {
    let apps: TestApp[] = [];
    after(() => stop(apps));

    it(`each instance accepts ${LIMIT} on its own`, async () => {
      apps = await twoInstances({});
      const perInstance = await spread(apps, 3 * LIMIT);
      assert.deepEqual(perInstance.map((s) => s.filter((x) => x === 201).length), [LIMIT, LIMIT]);
    });
  });
});
