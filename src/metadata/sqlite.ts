import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import { KyselyMetadataStore, type KyselyMetadataStoreOptions } from './kysely-metadata.store.js';
import { migrateToLatest } from './migrations.js';
import { type Database as Schema, DEFAULT_TABLE } from './schema.js';

/** Opens (and migrates) the embedded SQLite metadata database. */
export async function openSqliteMetadataStore(
  file: string,
  options: KyselyMetadataStoreOptions = { table: DEFAULT_TABLE, hostIdentifier: null },
  onMigrated?: (applied: string[]) => void,
): Promise<KyselyMetadataStore> {
  makeDataDir(path.dirname(file));
  // SQLite would create the file 0644; created here first, it gives -wal and -shm the same mode as the database.
  fs.closeSync(fs.openSync(file, 'a', DATA_FILE_MODE));
  const sqlite = new Database(file);
  // WAL lets readers (operators' queries) run while the collector writes.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
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
  return new KyselyMetadataStore(db, options);
}
