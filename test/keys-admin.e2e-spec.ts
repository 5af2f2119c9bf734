import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import { KeyringService } from '../src/keyring/keyring.service.js';
import { connect, removeTempDir, REPO_ROOT, TestClock, sendAndClose, sign, startApp, tempDir, tokenQuery, within } from './helpers.js';

const A = 'admin-secret-A-0123456789-abcdefghijklmno';
const B = 'admin-secret-B-0123456789-abcdefghijklmno';
const API_KEY = 'admin-api-key-0123456789-abcdefghijklmnop';
const CLI = path.join(REPO_ROOT, 'dist/src/cli/keys.cli.js');

describe('key usage visibility (GET /admin/keys, keys list --server)', () => {
  it('counts verifications per kid, needs an API key, and never shows secrets', async () => {
    const dir = tempDir('rtcstats-admin-');
    const file = path.join(dir, 'keyring.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { kid: 'kb', secret: B, state: 'current' },
          { kid: 'ka', secret: A, state: 'previous', notAfter: '2099-01-01T00:00:00Z' },
        ],
        apiKeys: [{ id: 'ops', key: API_KEY, scopes: ['admin'] }],
      }),
    );
    const clock = new TestClock();
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_POLL_INTERVAL: '0' }, { clock });
    try {
      for (const [secret, kid] of [[A, 'ka'], [A, undefined], [B, 'kb']] as const) {
        const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: {} }, secret, kid ? { keyid: kid } : {}))}`));
        assert.equal((await sendAndClose(ws, ['[1]'])).code, 1000);
      }
      const url = `http://127.0.0.1:${t.port}/admin/keys`;
      const denied = await fetch(url);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="rtcstats"');

      const res = await fetch(url, { headers: { Authorization: `Bearer ${API_KEY}` } });
      assert.equal(res.status, 200);
      const text = await res.text();
      for (const secret of [A, B, API_KEY]) assert.ok(!text.includes(secret), 'no secret in the response');
      const body = JSON.parse(text) as { keys: { kid: string; state: string; expired: boolean; verifications: number; lastVerifiedAt: string | null }[] };
      const byKid = Object.fromEntries(body.keys.map((k) => [k.kid, k]));
      assert.equal(byKid.ka.state, 'previous');
      assert.equal(byKid.ka.verifications, 2);
      assert.equal(byKid.kb.verifications, 1);
      assert.ok(Date.parse(byKid.ka.lastVerifiedAt!) <= Date.now());

      const { stdout } = await within(
        promisify(execFile)(process.execPath, [CLI, 'list', '--file', file, '--server', `http://127.0.0.1:${t.port}`], { cwd: dir, timeout: 10_000 }),
        'keys list --server',
      );
      assert.match(stdout, /^KID\s+STATE\s+NOT AFTER\s+VERIFIED\s+LAST VERIFIED$/m);
      assert.match(stdout, /^ka\s+previous\s+2099-01-01T00:00:00Z\s+2\s+\d{4}-/m);
      assert.match(stdout, /^kb\s+current\s+-\s+1\s+\d{4}-/m);
      for (const secret of [A, B, API_KEY]) assert.ok(!stdout.includes(secret), 'no secret in keys list');

      // Expiry is judged on the app's clock, the same one token verification uses.
      assert.equal(byKid.ka.expired, false);
      clock.advance(Date.parse('2099-01-01T00:00:01Z') - clock.now());
      const later = (await (await fetch(url, { headers: { Authorization: `Bearer ${API_KEY}` } })).json()) as typeof body;
      assert.equal(later.keys.find((k) => k.kid === 'ka')?.expired, true);
    } finally {
      await t.close();
      removeTempDir(dir);
    }
  });
});

describe('a reload failure never quotes the keyring file', () => {
  it('logs and GET /admin/keys lastFailure give line and column, no fragment of the secret', async () => {
    const secret = 'Zq8W-Qr3l0d-s3cr3t-Jx7vKp2mYt9LbR4nHd6FgC';
    const dir = tempDir('rtcstats-admin-');
    const file = path.join(dir, 'keyring.json');
    const good = { keys: [{ kid: 'ka', secret: A, state: 'current' }], apiKeys: [{ id: 'ops', key: API_KEY, scopes: ['admin'] }] };
    fs.writeFileSync(file, JSON.stringify(good));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_WATCH: 'false', RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      const faults: [string, RegExp][] = [
        [`{"keys": [{"kid": "ka", "secret": ${secret}, "state": "current"}]}`, /: not valid JSON \(syntax error at line 1, column 35\)$/],
        [`{"keys": [{"kid": "ka", "secret": '${secret}', "state": "current"}]}`, /: not valid JSON \(syntax error at line 1, column 35\)$/],
        [`{"keys": [{"kid": "ka", "secret": "${A}", "state": "${secret}"}]}`, /: key "ka": state must be one of next, current, previous, revoked$/],
      ];
      for (const [content, problem] of faults) {
        const before = t.logs.length;
        fs.writeFileSync(file, content);
        assert.equal(t.app.get(KeyringService).reload('test'), false);
        const logged = t.logs.slice(before).join('\n');
        assert.match(logged, /Keyring not reloaded \(test\)/);
        const res = await fetch(`http://127.0.0.1:${t.port}/admin/keys`, { headers: { Authorization: `Bearer ${API_KEY}` } });
        assert.equal(res.status, 200);
        const lastFailure = ((await res.json()) as { reloads: { lastFailure: string } }).reloads.lastFailure;
        assert.match(lastFailure, new RegExp(`^keyring file ${file.replace(/[.]/g, '\\.')}`));
        assert.match(lastFailure, problem);
        assert.ok(logged.includes(lastFailure), 'the log line carries the same message');
        for (let i = 0; i + 6 <= secret.length; i++) {
          const fragment = secret.slice(i, i + 6);
          assert.ok(!logged.includes(fragment) && !lastFailure.includes(fragment), `a fragment of the secret (${fragment}) leaked: ${logged}`);
        }
      }
    } finally {
      await t.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
