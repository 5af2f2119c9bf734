import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import type { WebSocket } from 'ws';

import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { KeyringService } from '../src/keyring/keyring.service.js';
import {
  closed,
  connect,
  keyringLanded,
  readDump,
  sendAndClose,
  sign,
  startApp,
  tempDir,
  TestClock,
  type TestApp,
  tokenQuery,
  waitFor,
  waitForRecords,
  within,
  writeKeyring,
} from './helpers.js';
import { type Exposition, scrape } from './prometheus-text.js';

const A = 'rotation-secret-A-0123456789-abcdefghijk';
const B = 'rotation-secret-B-0123456789-abcdefghijk';
const C = 'rotation-secret-C-0123456789-abcdefghijk';

function keyringDir(spec: KeyringFileSpec): string {
  const dir = tempDir('rtcstats-keyring-');
  writeKeyring(path.join(dir, 'keyring.json'), spec);
  return path.join(dir, 'keyring.json');
}

const keys = (...entries: [string, string, string, string?][]): KeyringFileSpec => ({
  keys: entries.map(([kid, secret, state, notAfter]) => ({ kid, secret, state: state as 'current', ...(notAfter && { notAfter }) })),
});

async function accepts(t: TestApp, token: string, session: string): Promise<void> {
  const ws = await connect(t.url(`/check${tokenQuery(token)}`));
  assert.equal((await sendAndClose(ws, [`[1,null,"${session}",0]`])).code, 1000, `${session} must be accepted`);
}

async function rejects(t: TestApp, token: string): Promise<void> {
  const ws = await connect(t.url(`/check${tokenQuery(token)}`));
  assert.equal((await closed(ws)).code, 1008);
}

describe('secret rotation without downtime', () => {
  it('introduce, promote, retire under continuous load: nothing rejected, closed or lost', async () => {
    const file = keyringDir(keys(['ka', A, 'current']));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      // "Backends" sign with their current secret, half with a kid and half without.
      let backend = { kid: 'ka', secret: A };
      let running = true;
      const failures: string[] = [];
      let sessions = 0;
      const tokenFor = (i: number, session: string) =>
        sign({ rtcStats: { user: `u${i}`, session } }, backend.secret, i % 2 === 0 ? { keyid: backend.kid } : {});

      // Long-lived calls opened before the rotation, recording throughout it.
      const long: { ws: WebSocket; sent: number; session: string; done: Promise<{ code: number }> }[] = [];
      for (let i = 0; i < 6; i++) {
        const session = `long-${i}`;
        const ws = await connect(t.url(`/long${tokenQuery(tokenFor(i, session))}`));
        long.push({ ws, sent: 0, session, done: closed(ws, 120_000) });
      }
      const ticker = setInterval(() => {
        for (const l of long) l.ws.send(`["g","PC_0",{"n":${l.sent++}},100]`);
      }, 20);

      // 20 clients connecting and sending in a loop.
      const completed = new Array<number>(20).fill(0);
      const loops = Array.from({ length: 20 }, async (_, i) => {
        while (running) {
          const session = `loop-${i}-${sessions++}`;
          const token = tokenFor(i, session);
          try {
            const ws = await connect(t.url(`/loop${tokenQuery(token)}`));
            const frames = Array.from({ length: 5 }, (_, n) => `[${n},null,"${session}",1]`);
            const { code } = await sendAndClose(ws, frames);
            if (code !== 1000) failures.push(`${session}: closed with ${code}`);
          } catch (err) {
            failures.push(`${session}: ${(err as Error).message}`);
          }
          completed[i]++;
        }
      });
      // A phase lasts until every loop has completed two more sessions, so each has run a whole
      // session that started after the phase began (progress, not a timer).
      const progress = () => {
        const target = completed.map((n) => n + 2);
        return waitFor(() => (completed.every((n, i) => n >= target[i]) ? true : undefined), 'two more sessions per loop');
      };

      await progress();
      writeKeyring(file, keys(['ka', A, 'current'], ['kb', B, 'next']));
      await keyringLanded(t, 'ka(current), kb(next)');
      await progress();
      writeKeyring(file, keys(['ka', A, 'previous', new Date(Date.now() + 3600_000).toISOString()], ['kb', B, 'current']));
      await keyringLanded(t, 'ka(previous), kb(current)');
      backend = { kid: 'kb', secret: B };
      await progress();
      writeKeyring(file, keys(['kb', B, 'current']));
      await keyringLanded(t, 'kb(current)');
      await progress();
      running = false;
      await within(Promise.all(loops), 'client loops');
      clearInterval(ticker);

      assert.deepEqual(failures, [], 'no valid token rejected');
      assert.ok(sessions > 60, `the loops kept connecting (${sessions} sessions)`);
      // Old-key tokens are refused after retirement, with and without kid.
      await rejects(t, sign({ rtcStats: {} }, A, { keyid: 'ka' }));
      await rejects(t, sign({ rtcStats: {} }, A));

      // The long calls were never closed by the rotation; they end now, and nothing is lost.
      for (const l of long) assert.equal(l.ws.readyState, l.ws.OPEN, `${l.session} still open`);
      for (const l of long) l.ws.close(1000);
      for (const l of long) assert.equal((await l.done).code, 1000);
      for (const l of long) {
        const [record] = await waitForRecords(t, 1, { session: l.session });
        assert.equal(record.frameCount, l.sent, `${l.session}: every frame stored`);
        assert.equal(record.closeCode, 1000);
        const frames = readDump(record.location).slice(2, -1);
        assert.deepEqual(frames, Array.from({ length: l.sent }, (_, n) => `["g","PC_0",{"n":${n}},100]`));
      }
      const loopRecords = await waitForRecords(t, sessions, {});
      assert.equal(loopRecords.filter((r) => r.path === '/loop').length, sessions);
      assert.ok(loopRecords.filter((r) => r.path === '/loop').every((r) => r.frameCount === 5));
    } finally {
      await t.close();
    }
  });

  const invalid: [string, string, RegExp][] = [
    ['bad JSON', '{"keys": [', /not valid JSON/],
    ['no current key', JSON.stringify(keys(['kb', B, 'next'])), /exactly one key must be "current" \(found 0\)/],
    ['two current keys', JSON.stringify(keys(['ka', A, 'current'], ['kb', B, 'current'])), /found 2/],
    ['duplicate kid', JSON.stringify(keys(['ka', A, 'current'], ['ka', B, 'next'])), /duplicate kid "ka"/],
    ['short secret', JSON.stringify(keys(['ka', 'too-short', 'current'])), /key "ka": secret is 9 bytes/],
    ['unknown state', JSON.stringify(keys(['ka', A, 'current'], ['kb', B, 'standby'])), /key "kb": state must be one of/],
    ['bad notAfter', JSON.stringify(keys(['ka', A, 'current'], ['kb', B, 'previous', 'next week'])), /key "kb": notAfter/],
  ];

  it('keeps the running keyring on every invalid file and logs the problem, never a secret', async () => {
    const file = keyringDir(keys(['ka', A, 'current']));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      for (const [name, content, problem] of invalid) {
        const before = t.logs.length;
        writeKeyring(file, content);
        const line = await waitFor(() => t.logs.slice(before).find((l) => l.includes('Keyring not reloaded')), `log for ${name}`);
        assert.ok(line.includes(file), `${name}: the log names the file`);
        assert.match(line, problem, `${name}: the log names the problem`);
        assert.ok(![A, B, 'too-short'].some((s) => line.includes(s)), `${name}: no secret in the log`);
        await accepts(t, sign({ rtcStats: {} }, A, { keyid: 'ka' }), name);
        await accepts(t, sign({ rtcStats: {} }, A), name);
      }
      assert.equal(t.app.get(KeyringService).stats.failures, invalid.length);
      // Identical content is a no-op.
      writeKeyring(file, keys(['ka', A, 'current']));
      writeKeyring(file, keys(['ka', A, 'current']));
      assert.equal(t.app.get(KeyringService).reload('test'), true);
      assert.equal(t.app.get(KeyringService).stats.reloads, 0);
    } finally {
      await t.close();
    }
  });

  it('reloads on SIGHUP', async () => {
    const file = keyringDir(keys(['ka', A, 'current']));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_WATCH: 'false', RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      writeKeyring(file, keys(['ka', A, 'current'], ['kc', C, 'next']));
      await new Promise((r) => setTimeout(r, 300));
      await rejects(t, sign({ rtcStats: {} }, C, { keyid: 'kc' }));
      process.kill(process.pid, 'SIGHUP');
      await keyringLanded(t, 'ka(current), kc(next)');
      await accepts(t, sign({ rtcStats: {} }, C, { keyid: 'kc' }), 'after SIGHUP');
    } finally {
      await t.close();
    }
  });

  it('follows a Kubernetes-style symlink swap of the mounted secret', async () => {
    const dir = tempDir('rtcstats-k8s-');
    const version = (name: string, spec: KeyringFileSpec) => {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'keyring.json'), JSON.stringify(spec));
    };
    version('..2026_11_28_1', keys(['ka', A, 'current']));
    fs.symlinkSync('..2026_11_28_1', path.join(dir, '..data'));
    fs.symlinkSync('..data/keyring.json', path.join(dir, 'keyring.json'));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: path.join(dir, 'keyring.json'), RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      await accepts(t, sign({ rtcStats: {} }, A), 'before swap');
      version('..2026_11_28_2', keys(['kb', B, 'current']));
      fs.symlinkSync('..2026_11_28_2', path.join(dir, '..data_tmp'));
      fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      await keyringLanded(t, 'kb(current)');
      await accepts(t, sign({ rtcStats: {} }, B), 'after swap');
      await rejects(t, sign({ rtcStats: {} }, A));
    } finally {
      await t.close();
    }
  });

  it('stops verifying a key when its notAfter passes, without a reload', async () => {
    const clock = new TestClock();
    const notAfter = new Date(clock.now() + 60_000).toISOString();
    const file = keyringDir(keys(['kb', B, 'current'], ['ka', A, 'previous', notAfter]));
    const env = { RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_WATCH: 'false', RTCSTATS_KEYRING_POLL_INTERVAL: '0' };
    const t = await startApp(env, { clock });
    try {
      await accepts(t, sign({ rtcStats: {} }, A), 'before notAfter');
      clock.advance(59_000);
      await accepts(t, sign({ rtcStats: {} }, A), 'a second before notAfter');
      clock.advance(1_001);
      await rejects(t, sign({ rtcStats: {} }, A));
      await rejects(t, sign({ rtcStats: {} }, A, { keyid: 'ka' }));
      await accepts(t, sign({ rtcStats: {} }, B), 'current key still fine');
      assert.equal(t.app.get(KeyringService).stats.reloads, 0);
    } finally {
      await t.close();
    }
  });

  it('emergency revoke closes exactly the connections of that kid with 1008 and keeps their dumps', async () => {
    const file = keyringDir(keys(['kb', B, 'current'], ['ka', A, 'previous']));
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
    try {
      const open = async (secret: string, kid: string | undefined, session: string) => {
        const ws = await connect(t.url(`/${tokenQuery(sign({ rtcStats: { session } }, secret, kid ? { keyid: kid } : {}))}`));
        const done = closed(ws);
        ws.send(`[1,null,"${session}",0]`);
        ws.send(`[2,null,"${session}",1]`);
        return { ws, done, session };
      };
      const leaked = [await open(A, 'ka', 'rev-a1'), await open(A, undefined, 'rev-a2'), await open(A, 'ka', 'rev-a3')];
      const safe = [await open(B, 'kb', 'rev-b1'), await open(B, undefined, 'rev-b2')];
      writeKeyring(file, keys(['kb', B, 'current'], ['ka', A, 'revoked']));
      for (const l of leaked) assert.deepEqual(await l.done, { code: 1008, reason: 'key revoked' });
      await new Promise((r) => setTimeout(r, 200));
      for (const s of safe) assert.equal(s.ws.readyState, s.ws.OPEN, `${s.session} stays open`);
      for (const l of leaked) {
        const [record] = await waitForRecords(t, 1, { session: l.session });
        assert.equal(record.closeCode, 1008);
        assert.equal(record.frameCount, 2);
        assert.deepEqual(readDump(record.location).slice(2, -1), [`[1,null,"${l.session}",0]`, `[2,null,"${l.session}",1]`]);
      }
      await rejects(t, sign({ rtcStats: {} }, A));
      // A new token naming the revoked kid: told apart from an unknown kid, in the close reason and the metric.
      const before = await scrape(`http://127.0.0.1:${t.port}/metrics`);
      const late = await connect(t.url(`/late${tokenQuery(sign({ rtcStats: {} }, A, { keyid: 'ka' }))}`));
      assert.deepEqual(await closed(late), { code: 1008, reason: 'key revoked' });
      const unknown = await connect(t.url(`/late${tokenQuery(sign({ rtcStats: {} }, A, { keyid: 'kz' }))}`));
      assert.deepEqual(await closed(unknown), { code: 1008, reason: 'unknown kid' });
      const after = await scrape(`http://127.0.0.1:${t.port}/metrics`);
      const rejected = (m: Exposition, reason: string) => m.value('rtcstats_connections_rejected_total', { reason });
      assert.equal(rejected(after, 'revoked') - rejected(before, 'revoked'), 1);
      assert.equal(rejected(after, 'unknown_kid') - rejected(before, 'unknown_kid'), 1);
      for (const s of safe) {
        s.ws.close(1000);
        assert.equal((await s.done).code, 1000);
      }
    } finally {
      await t.close();
    }
  });
});
