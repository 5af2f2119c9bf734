import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import { KyselyMetadataStore, type KyselyMetadataStoreOptions } from './kysely-metadata.store.js';
import { migrateToLatest } from './migrations.js';
import { type Database as Schema, DEFAULT_TABLE } from './schema.js';

/** How long one write may wait for another connection's lock (blocking the event loop meanwhile). */
export const SQLITE_BUSY_TIMEOUT_MS = 10;

/** Opens (and migrates) the embedded SQLite metadata database. */
export async function openSqliteMetadataStore(
  file: string,
  options: Omit<KyselyMetadataStoreOptions, 'backend'> = { table: DEFAULT_TABLE, hostIdentifier: null },
  onMigrated?: (applied: string[]) => void,
): Promise<KyselyMetadataStore> {
  makeDataDir(path.dirname(file));
  // SQLite would create the file 0644; created here first, it gives -wal and -shm the same mode as the database.
  fs.closeSync(fs.openSync(file, 'a', DATA_FILE_MODE));
  const sqlite = new Database(file);
  // WAL lets readers (operators' queries) run while the collector writes.
  sqlite.pragma('journal_mode = WAL');
  // better-sqlite3 waits for a lock on the main thread, stalling every socket of the process.
  // Wait at most a few ms; a write that still finds the database locked fails with SQLITE_BUSY and
  // the finalization queue retries it with backoff (the same path a PostgreSQL outage takes).
  // Measured (bench/sqlite-lock.measure.mjs): 5000 ms here stalled the event loop 5.1 s per insert.
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  // With WAL, NORMAL syncs at checkpoints instead of every commit: a power loss can drop the
  // last records but never corrupts the database (dumps themselves are fsynced by the store).
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const applied = await migrateToLatest(db, { dialect: 'sqlite', table: options.table });
    if (applied.length > 0) onMigrated?.(applied);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new KyselyMetadataStore(db, { ...options, backend: 'sqlite' });
}
