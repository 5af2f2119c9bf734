import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { startApp, tempDir, type TestApp, within } from './helpers.js';

const SECRET = 'scopes-secret-0123456789-abcdefghijklmnop';
const TOKENS_KEY = 'scopes-tokens-key-0123456789-abcdefghijkl';
const ADMIN_KEY = 'scopes-admin-key-0123456789-abcdefghijklm';
const BOTH_KEY = 'scopes-both-key-0123456789-abcdefghijklmn';
const DEFAULT_KEY = 'scopes-default-key-0123456789-abcdefghijk';
const ENV_KEY = 'scopes-env-key-0123456789-abcdefghijklmno';

async function status(t: TestApp, route: 'tokens' | 'admin', apiKey: string): Promise<{ status: number; body: string }> {
  const url = `http://127.0.0.1:${t.port}${route === 'tokens' ? '/tokens' : '/admin/keys'}`;
  const init: RequestInit =
    route === 'tokens'
      ? { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: '{}' }
      : { headers: { authorization: `Bearer ${apiKey}` } };
  const res = await within(fetch(url, init), `${route} request`);
  return { status: res.status, body: await res.text() };
}

describe('API key scopes (least privilege)', () => {
  it('tokens may mint, admin may read key status, neither may do the other (403, not 401)', async () => {
    const dir = tempDir('rtcstats-scopes-');
    const file = path.join(dir, 'keyring.json');
    const spec = {
      keys: [{ kid: 'k', secret: SECRET, state: 'current' }],
      apiKeys: [
        { id: 'minter', key: TOKENS_KEY, scopes: ['tokens'] },
        { id: 'ops', key: ADMIN_KEY, scopes: ['admin'] },
        { id: 'both', key: BOTH_KEY, scopes: ['tokens', 'admin'] },
        { id: 'plain', key: DEFAULT_KEY },
      ],
    };
    fs.writeFileSync(file, JSON.stringify(spec), { mode: 0o600 });
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_API_KEYS: ENV_KEY, RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      const expected: [string, string, number, number][] = [
        ['tokens scope', TOKENS_KEY, 201, 403],
        ['admin scope', ADMIN_KEY, 403, 200],
        ['both scopes', BOTH_KEY, 201, 200],
        ['no scopes given (default tokens)', DEFAULT_KEY, 201, 403],
        ['RTCSTATS_API_KEYS (tokens)', ENV_KEY, 201, 403],
      ];
      for (const [name, key, tokens, admin] of expected) {
        const a = await status(t, 'tokens', key);
        assert.equal(a.status, tokens, `${name}: POST /tokens answered ${a.status} ${a.body}`);
        const b = await status(t, 'admin', key);
        assert.equal(b.status, admin, `${name}: GET /admin/keys answered ${b.status} ${b.body}`);
        for (const r of [a, b]) {
          if (r.status === 403) {
            assert.match(JSON.parse(r.body).message, /^This API key lacks the "(tokens|admin)" scope$/);
            assert.ok(!r.body.includes(key), 'the key is not echoed');
          }
        }
      }
      assert.equal((await status(t, 'admin', 'not-a-key-0123456789-abcdefghijklmnopq')).status, 401, 'a wrong key is still 401');
    } finally {
      await t.close();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });

  it('the API key generated on first start has both scopes', async () => {
    const t = await startApp({ RTCSTATS_JWT_SECRET: '' });
    try {
      const spec = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'keyring.json'), 'utf8')) as KeyringFileSpec;
      assert.deepEqual(spec.apiKeys?.map((a) => a.scopes), [['tokens', 'admin']]);
      const key = spec.apiKeys![0].key;
      assert.equal((await status(t, 'tokens', key)).status, 201);
      assert.equal((await status(t, 'admin', key)).status, 200);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });

  it('/docs is public by default and gone with RTCSTATS_DOCS=false', async () => {
    for (const [env, code] of [[{}, 200], [{ RTCSTATS_DOCS: 'false' }, 404]] as const) {
      const t = await startApp(env);
      try {
        for (const p of ['/docs', '/docs-json']) {
          const res = await within(fetch(`http://127.0.0.1:${t.port}${p}`), p);
          assert.equal(res.status, code, `${p} with ${JSON.stringify(env)}`);
          await res.arrayBuffer();
        }
      } finally {
        await t.close();
        fs.rmSync(t.dataDir, { recursive: true, force: true });
      }
    }
  });
});
