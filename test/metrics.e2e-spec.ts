import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { MetricsModule } from '../src/metrics/metrics.module.js';
import { closed, connect, OTHER_SECRET, sendAndClose, sign, startApp, TEST_SECRET, tempDir, type TestApp, tokenQuery, waitFor } from './helpers.js';
import { type Exposition, parseExposition, scrape } from './prometheus-text.js';

const API_KEY = 'metrics-test-api-key-0123456789-abcdefgh';
const CLAIMS = { user: 'user-claim-7f3a91', session: 'session-claim-2c8e44', conference: 'conference-claim-9d1b07' };

describe('GET /metrics (real app, real clients, parsed as Prometheus text format)', () => {
  let t: TestApp;
  before(async () => {
    const dataDir = tempDir();
    const keyring = path.join(dataDir, 'keyring.json');
    const notAfter = new Date(Date.now() + 3_600_000).toISOString();
    fs.writeFileSync(
      keyring,
      JSON.stringify({
        keys: [
          { kid: 'k-current', secret: TEST_SECRET, state: 'current' },
          { kid: 'k-previous', secret: 'previous-secret-0123456789-abcdefghijk', state: 'previous', notAfter },
        ],
        apiKeys: [{ id: 'backend', key: API_KEY, scopes: ['tokens'] }],
      }),
      { mode: 0o600 },
    );
    t = await startApp({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_KEYRING_FILE: keyring, RTCSTATS_KEYRING_WATCH: 'false', RTCSTATS_TRUSTED_PROXIES: '127.0.0.1' });
  });
  after(async () => {
    await t.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  const get = (): Promise<Exposition> => scrape(`http://127.0.0.1:${t.port}/metrics`);
  const delta = (a: Exposition, b: Exposition, name: string, labels?: Record<string, string>) => b.value(name, labels) - a.value(name, labels);

  it('counters move as clients connect, send, get rejected and close; no label holds a secret, token, claim or address', async () => {
    const m0 = await get();
    for (const name of ['rtcstats_websocket_connections', 'rtcstats_files_processed', 'rtcstats_files_errored', 'rtcstats_connections_rejected_total', 'rtcstats_finalize_queue_depth', 'rtcstats_dump_size_bytes', 'rtcstats_session_duration_seconds', 'rtcstats_store_duration_seconds', 'rtcstats_metadata_duration_seconds', 'rtcstats_token_verifications_total', 'rtcstats_keyring_reloads_total', 'rtcstats_tokens_minted_total', 'rtcstats_http_requests_total', 'nodejs_eventloop_lag_seconds', 'process_resident_memory_bytes']) {
      assert.ok(m0.types.has(name), `${name} is exposed`);
    }
    assert.equal(m0.types.get('rtcstats_files_processed'), 'counter');
    assert.equal(m0.types.get('rtcstats_websocket_connections'), 'gauge');

    // A client token from POST /tokens (counted), used by a real client with a forwarded address.
    const res = await fetch(`http://127.0.0.1:${t.port}/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(CLAIMS),
    });
    assert.equal(res.status, 201);
    const { token } = (await res.json()) as { token: string };
    const ws = await connect(t.url(`/app${tokenQuery(token)}`), 'rtcstats#5.0', { headers: { 'X-Forwarded-For': '198.51.100.77' } });
    const frames = ['["a",1]', '["b",2]', '["c",3]'];
    for (const f of frames) ws.send(f);
    const m1 = await waitFor(async () => {
      const m = await get();
      return m.value('rtcstats_frames_received_total', { protocol: 'rtcstats' }) - m0.value('rtcstats_frames_received_total', { protocol: 'rtcstats' }) === 3 ? m : undefined;
    }, 'frames counted while the connection is open');
    assert.equal(m1.value('rtcstats_websocket_connections', { protocol: 'rtcstats' }), 1);
    assert.equal(delta(m0, m1, 'rtcstats_bytes_received_total', { protocol: 'rtcstats' }), frames.join('').length);
    assert.equal(delta(m0, m1, 'rtcstats_connections_accepted_total', { protocol: 'rtcstats' }), 1);
    assert.equal(delta(m0, m1, 'rtcstats_tokens_minted_total'), 1);
    assert.equal(delta(m0, m1, 'rtcstats_http_requests_total', { route: '/tokens', method: 'POST', status: '201' }), 1);
    assert.equal(delta(m0, m1, 'rtcstats_token_verifications_total', { kid: 'k-current' }), 1);
    assert.ok(m1.value('rtcstats_token_last_verified_timestamp_seconds', { kid: 'k-current' }) > Date.now() / 1000 - 60);
    assert.ok(m1.value('rtcstats_key_not_after_timestamp_seconds', { kid: 'k-previous', state: 'previous' }) > Date.now() / 1000);

    // Rejections by reason: a token signed with an unknown secret, and none at all.
    const bad = sign({ rtcStats: CLAIMS }, OTHER_SECRET);
    for (const q of [tokenQuery(bad), '']) {
      const r = await connect(t.url(`/bad${q}`));
      assert.equal((await closed(r)).code, 1008);
    }
    assert.equal((await sendAndClose(ws, [])).code, 1000);

    const m2 = await waitFor(async () => {
      const m = await get();
      return delta(m0, m, 'rtcstats_files_processed', { backend: 'local' }) === 1 ? m : undefined;
    }, 'the dump to be processed');
    assert.equal(delta(m0, m2, 'rtcstats_connections_rejected_total', { reason: 'bad_signature' }), 1);
    assert.equal(delta(m0, m2, 'rtcstats_connections_rejected_total', { reason: 'token_missing' }), 1);
    assert.equal(m2.value('rtcstats_websocket_connections', { protocol: 'rtcstats' }), 0);
    assert.equal(delta(m0, m2, 'rtcstats_dumps_stored_total', { backend: 'local' }), 1);
    assert.equal(delta(m0, m2, 'rtcstats_dump_size_bytes_count'), 1);
    assert.equal(delta(m0, m2, 'rtcstats_dump_size_bytes_sum'), frames.join('').length);
    assert.equal(delta(m0, m2, 'rtcstats_session_duration_seconds_count'), 1);
    assert.equal(delta(m0, m2, 'rtcstats_store_duration_seconds_count', { backend: 'local' }), 1);
    assert.equal(delta(m0, m2, 'rtcstats_metadata_duration_seconds_count', { backend: 'sqlite' }), 1);
    assert.equal(m2.value('rtcstats_finalize_queue_depth'), 0);

    // Nothing secret, personal or addressing in any label, over the whole output.
    const body = await (await fetch(`http://127.0.0.1:${t.port}/metrics`)).text();
    const parsed = parseExposition(body);
    const forbidden = [token, bad, API_KEY, TEST_SECRET, OTHER_SECRET, ...token.split('.'), ...bad.split('.').slice(1), ...Object.values(CLAIMS), '198.51.100', '127.0.0.1'];
    for (const s of forbidden) assert.ok(!body.includes(s), `metrics output contains ${s.slice(0, 12)}...`);
    for (const sample of parsed.samples) {
      for (const [name, value] of Object.entries(sample.labels)) {
        assert.ok(!/\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f]*:[0-9a-f]*/i.test(value), `${sample.name}{${name}="${value}"} looks like an address`);
        assert.ok(!/^eyJ/.test(value), `${sample.name}{${name}} holds a token`);
      }
    }
  });
});

describe('RTCSTATS_METRICS_PORT', () => {
  it('serves /metrics on its own port, not on the main one', async () => {
    const t = await startApp({ RTCSTATS_METRICS_PORT: '0' });
    try {
      const port = t.app.get(MetricsModule).port!;
      assert.ok(port > 0 && port !== t.port);
      const m = await scrape(`http://127.0.0.1:${port}/metrics`);
      assert.ok(m.types.has('rtcstats_websocket_connections'));
      assert.equal((await fetch(`http://127.0.0.1:${t.port}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});
