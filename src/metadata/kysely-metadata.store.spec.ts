import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import type { DumpRecord } from './metadata.store.js';
import { openSqliteMetadataStore } from './sqlite.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'metadata-store-spec-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const record = (id: string, location = '/a'): DumpRecord => ({
  id, startTime: 1, endTime: 2, closeCode: 1000, frameCount: 3, bytes: 4, location, user: 'u', session: 's',
  conference: 'c', kid: 'k', origin: null, userAgent: null, clientProtocol: null, path: '/', remoteAddress: null,
});

/**
 * Far below the 5 s a blocking busy_timeout costs, far above what a preempted process loses on a
 * shared 2-core machine (the 100 ms bound of the issue is checked end to end in durability.e2e-spec).
 */
const MAX_STALL_MS = 1000;

describe('KyselyMetadataStore on SQLite', () => {
  it('insert is idempotent on the dump id: no error, no second row, the first row kept', async () => {
    const store = await openSqliteMetadataStore(path.join(root, 'idem.sqlite'));
    try {
      await store.insert(record('r1', '/first'));
      await store.insert(record('r1', '/second'));
      const rows = await store.find({ user: 'u' });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].location, '/first');
    } finally {
      await store.close();
    }
  });

  it('a write to a database locked by another connection fails fast (SQLITE_BUSY) instead of stalling the process', async () => {
    const file = path.join(root, 'locked.sqlite');
    const store = await openSqliteMetadataStore(file);
    const locker = new Database(file);
    const delay = monitorEventLoopDelay({ resolution: 5 });
    try {
      locker.exec('BEGIN IMMEDIATE');
      delay.enable();
      for (let i = 0; i < 10; i++) {
        await assert.rejects(store.insert(record(`busy${i}`)), (err: Error & { code?: string }) => err.code === 'SQLITE_BUSY');
        await new Promise((r) => setTimeout(r, 5));
      }
      delay.disable();
      assert.ok(delay.max / 1e6 < MAX_STALL_MS, `event loop stalled ${(delay.max / 1e6).toFixed(1)} ms`);
      locker.exec('COMMIT');
      await store.insert(record('after'));
      assert.ok((await store.find({ user: 'u' })).some((r) => r.id === 'after'));
    } finally {
      locker.close();
      await store.close();
    }
  });
});
