import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { burstConnect, closed, connect, sendAndClose, startApp, storedFiles, type TestApp, waitForRecords } from './helpers.js';
import { ACCEPTED, expectedReason, forge, KEYRING_ENV, REJECTED } from './token-cases.js';

function query(tokens: string[]): string {
  return tokens.length === 0 ? '' : '?' + tokens.map((t) => `rtcstats-token=${encodeURIComponent(t)}`).join('&');
}

describe('WebSocket authentication (keyring.md bad inputs)', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp(KEYRING_ENV);
  });
  after(() => t.close());

  for (const c of REJECTED) {
    it(`opens then closes 1008 and stores nothing: ${c.name}`, async () => {
      const url = t.url(`/rejected${query(c.tokens())}`);
      if (url.length > 16 * 1024) {
        // keyring.md allows the HTTP layer to refuse a request this large before the upgrade.
        await assert.rejects(connect(url), /Unexpected server response: 431/);
        return;
      }
      const ws = await connect(url);
      const done = closed(ws);
      // Frames sent right after open must not be stored either.
      ws.send('[39,null,{"rejected":true},1]');
      const { code, reason } = await done;
      assert.equal(code, 1008);
      assert.equal(reason, expectedReason(c));
    });
  }

  it('logs the contract lines, without the token', async () => {
    const token = forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const ws = await connect(t.url(`/log-check?rtcstats-token=${token}`));
    assert.equal((await closed(ws)).code, 1008);
    assert.ok(t.logs.some((l) => l.includes('Authentication is configured but rtcstats-token is missing')));
    assert.ok(t.logs.some((l) => l.includes('JWT authorization failed TokenExpiredError: jwt expired')));
    assert.ok(t.logs.some((l) => l.includes('JWT authorization failed JsonWebTokenError: jwt malformed')));
    assert.ok(t.logs.some((l) => l.includes('JWT authorization failed JsonWebTokenError: invalid signature')));
    assert.ok(!t.logs.some((l) => l.includes(token.split('.')[2])), 'no token in logs');
  });

  it('never records frames sent in the same packet as a rejected upgrade', async () => {
    const bad = forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) + 60 }, 'wrong-secret-0123456789-abcdefghijklmnop');
    const code = await burstConnect(t.port, `/burst?rtcstats-token=${bad}`, ['[1,null,"early",0]', '[2,null,"early",1]']);
    assert.equal(code, 1008);
  });

  it('left no dump file and no record for any rejected connection', async () => {
    // Accepted connections after all rejections: their records prove earlier work has drained.
    for (const c of ACCEPTED) {
      const ws = await connect(t.url(`/accepted${query(c.tokens())}`));
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000, c.name);
    }
    const rows = await waitForRecords(t, ACCEPTED.length);
    assert.equal(rows.length, ACCEPTED.length);
    assert.ok(rows.every((r) => r.path === '/accepted'), 'only accepted connections have records');
    assert.deepEqual(rows.map((r) => r.kid).sort(), ACCEPTED.map((c) => c.kid).sort());
    assert.equal(storedFiles(t.dataDir).length, ACCEPTED.length);
  });
});

describe('close reasons never carry the expected issuer or audience', () => {
  it('a wrong iss or aud closes 1008 "invalid token"; the detail is in the server log only', async () => {
    const t = await startApp({ ...KEYRING_ENV, RTCSTATS_JWT_ISSUER: 'https://issuer.internal.example', RTCSTATS_JWT_AUDIENCE: 'aud-internal-42' });
    try {
      const exp = Math.floor(Date.now() / 1000) + 600;
      for (const [payload, detail] of [
        [{ exp, iss: 'https://issuer.internal.example', aud: 'someone-else' }, 'jwt audience invalid. expected: aud-internal-42'],
        [{ exp, iss: 'https://evil.example', aud: 'aud-internal-42' }, 'jwt issuer invalid. expected: https://issuer.internal.example'],
      ] as const) {
        const before = t.logs.length;
        const ws = await connect(t.url(`/iss-aud?rtcstats-token=${forge({ alg: 'HS256' }, payload)}`));
        const { code, reason } = await closed(ws);
        assert.equal(code, 1008);
        assert.equal(reason, 'invalid token');
        assert.ok(t.logs.slice(before).some((l) => l.includes(`JWT authorization failed JsonWebTokenError: ${detail}`)), 'detail in the log');
      }
    } finally {
      await t.close();
    }
  });
});

describe('RTCSTATS_AUTH=disabled', () => {
  it('accepts connections without a token and records them', async () => {
    const t = await startApp({ RTCSTATS_AUTH: 'disabled' });
    try {
      const ws = await connect(t.url('/open'));
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
      const [r] = await waitForRecords(t, 1);
      assert.equal(r.kid, null);
      assert.equal(r.user, null);
    } finally {
      await t.close();
    }
  });
});
