import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import { KyselyMetadataStore, type KyselyMetadataStoreOptions, toRow } from './kysely-metadata.store.js';
import type { DumpRecord } from './metadata.store.js';
import { migrateToLatest } from './migrations.js';
import { type Database as Schema, DEFAULT_TABLE } from './schema.js';

/** How long one write may wait for another connection's lock (blocking the event loop meanwhile). */
export const SQLITE_BUSY_TIMEOUT_MS = 10;

const fsyncInPool = promisify(fs.fsync);

/** Opens (and migrates) the embedded SQLite metadata database. */
export async function openSqliteMetadataStore(
  file: string,
  options: Omit<KyselyMetadataStoreOptions, 'backend'> = { table: DEFAULT_TABLE, hostIdentifier: null },
  onMigrated?: (applied: string[]) => void,
  syncFile: (fd: number) => Promise<void> = fsyncInPool,
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
  // With WAL, NORMAL syncs at checkpoints instead of every commit, on the main thread; FULL would
  // fsync every commit there. The store fsyncs the WAL itself after each insert, in the pool.
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const applied = await migrateToLatest(db, { dialect: 'sqlite', table: options.table });
    if (applied.length > 0) onMigrated?.(applied);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new SqliteMetadataStore(db, sqlite, `${file}-wal`, syncFile, { ...options, backend: 'sqlite' });
}

/**
 * Inserts through one prepared statement in a better-sqlite3 transaction: Kysely compiles the
 * query and SQLite prepares it again for every insert (measured: about 260 us per record against
 * 30 us per record in a group of ten, on one core). The SQL is Kysely's own, compiled once.
 * A locked database fails the insert with SQLITE_BUSY after the busy timeout, as through Kysely.
 */
class SqliteMetadataStore extends KyselyMetadataStore {
  private readonly insertRows: (records: readonly DumpRecord[]) => void;
  /** The WAL file, opened at the first insert (SQLite reuses it for the life of the connection). */
  private walFd: number | undefined;
  private readonly syncing = new Set<Promise<void>>();

  constructor(
    db: Kysely<Schema>,
    sqlite: Database.Database,
    private readonly walFile: string,
    private readonly syncFile: (fd: number) => Promise<void>,
    options: KyselyMetadataStoreOptions,
  ) {
    super(db, options);
    const sample = toRow(SAMPLE, null);
    const columns = Object.keys(sample) as (keyof typeof sample)[];
    const { sql } = db
      .insertInto(this.table)
      .values(sample)
      .onConflict((oc) => oc.column('dump_id').doNothing())
      .compile();
    const statement = sqlite.prepare(sql);
    this.insertRows = sqlite.transaction((records: readonly DumpRecord[]) => {
      for (const r of records) {
        const row = toRow(r, this.hostIdentifier);
        statement.run(columns.map((c) => row[c] ?? null));
      }
    });
  }

  override async insertMany(records: readonly DumpRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Through Kysely's connection lock: run while one of its transactions is open (an analysis
    // result being recorded), the statement would join that transaction and share its fate.
    await this.db.connection().execute(async () => this.insertRows(records));
    // Resolved means durable: the queue then removes the dump's source file, so a power loss must
    // not take a commit that synchronous = NORMAL leaves unsynced (one fsync per group, off the loop).
    this.walFd ??= fs.openSync(this.walFile, 'r');
    const sync = this.syncFile(this.walFd);
    this.syncing.add(sync);
    try {
      await sync;
    } finally {
      this.syncing.delete(sync);
    }
  }

  override async close(): Promise<void> {
    // The descriptor stays open until no fsync in the pool uses it.
    await Promise.allSettled([...this.syncing]);
    if (this.walFd !== undefined) fs.closeSync(this.walFd);
    this.walFd = undefined;
    await super.close();
  }
}

/** Any record: only the column order of its row is used. */
const SAMPLE: DumpRecord = {
  id: '',
  startTime: 0,
  endTime: 0,
  closeCode: 0,
  frameCount: 0,
  bytes: 0,
  location: '',
  user: null,
  session: null,
  conference: null,
  kid: null,
  origin: null,
  userAgent: null,
  clientProtocol: null,
  path: '',
  remoteAddress: null,
};
