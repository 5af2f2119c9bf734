import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import {
  burstConnect,
  closed,
  connect,
  liveFilesGone,
  readDump,
  sendAndClose,
  sign,
  startApp,
  storedFiles,
  type TestApp,
  waitFor,
  waitForRecords,
} from './helpers.js';
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

  /** Records one accepted session, waits until it and all earlier work is finalized, then checks nothing rejected was stored. */
  async function assertNothingRejectedStored(): Promise<void> {
    const session = `barrier-${crypto.randomUUID()}`;
    const ws = await connect(t.url(`/barrier${query([sign({ rtcStats: { session } })])}`));
    assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
    await waitForRecords(t, 1, { session });
    await liveFilesGone(t);
    const rows = await t.metadata.find({}, 10_000);
    assert.deepEqual(rows.filter((r) => r.path === '/rejected'), [], 'no record of a rejected connection');
    assert.equal(storedFiles(t.dataDir).length, rows.length, 'one dump per record, nothing else');
  }

  for (const c of REJECTED) {
    it(`opens then closes 1008, logs why and stores nothing: ${c.name}`, async () => {
      const url = t.url(`/rejected${query(c.tokens())}`);
      if (url.length > 16 * 1024) {
        // keyring.md allows the HTTP layer to refuse a request this large before the upgrade.
        await assert.rejects(connect(url), /Unexpected server response: 431/);
        return;
      }
      // The detailed reason is the verifier's (its unit test checks it per case); the log groups
      // repeats of one detail, so this test checks the close reason and that nothing was stored.
      const ws = await connect(url);
      const done = closed(ws);
      // Frames sent right after open must not be stored either.
      ws.send('[39,null,{"rejected":true},1]');
      const { code, reason } = await done;
      assert.equal(code, 1008);
      assert.equal(reason, expectedReason(c), 'the fixed close reason of its category');
      await assertNothingRejectedStored();
    });
  }

  it('logs the contract lines, without the token', async () => {
    // Its own app: repeats of a line are grouped per interval, so earlier tests must not have logged it.
    const own = await startApp(KEYRING_ENV);
    const expired = forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const wrongKey = forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) + 60 }, 'wrong-secret-0123456789-abcdefghijklmnop');
    let logged: string[];
    try {
      const before = own.logs.length;
      for (const tokens of [[], [expired], ['not-a-jwt'], [wrongKey]]) {
        const ws = await connect(own.url(`/log-check${query(tokens)}`));
        assert.equal((await closed(ws)).code, 1008);
      }
      logged = own.logs.slice(before).filter((l) => l.includes('[Auth]'));
    } finally {
      await own.close();
    }
    assert.equal(logged.length, 4, logged.join(' | '));
    assert.match(logged[0], /Authentication is configured but rtcstats-token is missing/);
    assert.match(logged[1], /JWT authorization failed TokenExpiredError: jwt expired/);
    assert.match(logged[2], /JWT authorization failed JsonWebTokenError: jwt malformed/);
    assert.match(logged[3], /JWT authorization failed JsonWebTokenError: invalid signature/);
    for (const token of [expired, wrongKey]) assert.ok(!logged.some((l) => l.includes(token.split('.')[2])), 'no token in logs');
  });

  it('never records frames sent in the same packet as a rejected upgrade', async () => {
    const bad = forge({ alg: 'HS256' }, { exp: Math.floor(Date.now() / 1000) + 60 }, 'wrong-secret-0123456789-abcdefghijklmnop');
    const code = await burstConnect(t.port, `/rejected?rtcstats-token=${bad}`, ['[1,null,"early",0]', '[2,null,"early",1]']);
    assert.equal(code, 1008);
    await assertNothingRejectedStored();
  });

  it('records every accepted case with the kid that verified it', async () => {
    const session = `accepted-${crypto.randomUUID()}`;
    for (const c of ACCEPTED) {
      const ws = await connect(t.url(`/accepted${query(c.tokens())}`));
      assert.equal((await sendAndClose(ws, [`[1,null,"${session}",0]`])).code, 1000, c.name);
    }
    await waitFor(async () => ((await t.metadata.find({}, 10_000)).filter((r) => r.path === '/accepted').length >= ACCEPTED.length ? true : undefined), 'accepted records');
    const rows = (await t.metadata.find({}, 10_000)).filter((r) => r.path === '/accepted');
    assert.deepEqual(rows.map((r) => r.kid).sort(), ACCEPTED.map((c) => c.kid).sort());
    for (const r of rows) assert.deepEqual(readDump(r.location).slice(2, -1), [`[1,null,"${session}",0]`]);
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
