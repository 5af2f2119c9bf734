import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { connect, sendAndClose, sign, startApp, tempDir, tokenQuery, waitFor, waitForRecords } from './helpers.js';

const SECRET = 'perm-secret-0123456789-abcdefghijklmnopq';
/** What a mode becomes under this process's umask (a stricter umask may narrow it, never widen). */
const UMASK = process.umask();
const expect = (mode: number) => mode & ~UMASK;
const modeOf = (file: string) => fs.statSync(file).mode & 0o777;
const octal = (mode: number) => `0${mode.toString(8)}`;

function assertMode(file: string, mode: number): void {
  assert.equal(octal(modeOf(file)), octal(expect(mode)), `${file}`);
}

describe('file modes: dumps and metadata hold user ids and user agents', () => {
  it('data directory and folders 0750, live and finished dumps 0640, SQLite database, -wal and -shm 0640', async () => {
    const root = tempDir('rtcstats-perm-');
    const dataDir = path.join(root, 'data');
    const t = await startApp({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_JWT_SECRET: SECRET });
    try {
      const ws = await connect(t.url(`/perm${tokenQuery(sign({ rtcStats: { user: 'u' } }, SECRET))}`));
      ws.send('["create",null,{"a":1},1]');
      const live = await waitFor(() => {
        const files = fs.readdirSync(path.join(dataDir, 'work'));
        return files.length === 1 ? path.join(dataDir, 'work', files[0]) : undefined;
      }, 'the live dump');
      assertMode(live, 0o640);
      assert.equal((await sendAndClose(ws, ['["close",null,null,2]'])).code, 1000);
      const [record] = await waitForRecords(t, 1);
      assertMode(record.location, 0o640);
      for (const dir of [dataDir, path.join(dataDir, 'work'), path.join(dataDir, 'dumps')]) assertMode(dir, 0o750);
      const db = path.join(dataDir, 'rtcstats.sqlite');
      for (const file of [db, `${db}-wal`, `${db}-shm`]) assertMode(file, 0o640);
    } finally {
      await t.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('a keyring file readable by group or others gets a warning at start', async () => {
    const root = tempDir('rtcstats-perm-');
    const file = path.join(root, 'keyring.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [{ kid: 'k', secret: SECRET, state: 'current' }] }));
    try {
      for (const [mode, warned] of [[0o644, true], [0o640, true], [0o600, false], [0o400, false]] as const) {
        fs.chmodSync(file, mode);
        const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_DATA_DIR: path.join(root, 'data'), RTCSTATS_KEYRING_POLL_INTERVAL: '0' });
        try {
          const warning = t.logs.find((l) => l.startsWith('warn [Keyring]') && l.includes('readable by'));
          if (warned) {
            assert.equal(
              warning,
              `warn [Keyring] Keyring file ${file} is readable by group or others (mode ${octal(mode)}): chmod 600 it (Kubernetes: defaultMode 0400)`,
            );
          } else {
            assert.equal(warning, undefined, `no warning for ${octal(mode)}`);
          }
        } finally {
          await t.close();
        }
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
