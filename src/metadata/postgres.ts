import type { ConnectionOptions } from 'node:tls';

import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

import type { AppConfig } from '../config/app-config.js';
import { KyselyMetadataStore } from './kysely-metadata.store.js';
import { migrateToLatest } from './migrations.js';
import type { Database as Schema } from './schema.js';

/** node-postgres TLS options for RTCSTATS_DATABASE_SSL_MODE (libpq's meanings). */
export function tlsOptions(database: AppConfig['database']): pg.PoolConfig['ssl'] {
  const { sslMode, ca } = database;
  switch (sslMode) {
    case undefined:
      return undefined; // the URL's sslmode decides
    case 'disable':
      return false;
    case 'require':
      // Encrypted; with a CA file libpq verifies the chain (as verify-ca).
      return ca === undefined ? { rejectUnauthorized: false } : { ca, checkServerIdentity: () => undefined };
    case 'verify-ca':
      return { ca, checkServerIdentity: () => undefined } satisfies ConnectionOptions;
    case 'verify-full':
      return { ca } satisfies ConnectionOptions;
  }
}

export interface PostgresStoreOptions {
  database: AppConfig['database'];
  hostIdentifier: string | null;
  /** Told which migrations this process applied (none when another instance did). */
  onMigrated?: (applied: string[]) => void;
}

/** Opens a pool to PostgreSQL and migrates the schema (see migrateToLatest for concurrent starts). */
export async function openPostgresMetadataStore({ database, hostIdentifier, onMigrated }: PostgresStoreOptions): Promise<KyselyMetadataStore> {
  const connect = (max: number, queryTimeoutMs: number | undefined) => {
    const pool = new pg.Pool({
      connectionString: database.url,
      ssl: tlsOptions(database),
      max,
      connectionTimeoutMillis: 10_000,
      query_timeout: queryTimeoutMs,
    });
    // An idle client losing its connection (server restart) must not crash the process.
    pool.on('error', () => undefined);
    return new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  };
  // Migrations get a connection without a query timeout: waiting for another instance's
  // migration, or indexing a large existing table, may take long.
  const migrationDb = connect(1, undefined);
  try {
    const applied = await migrateToLatest(migrationDb, { dialect: 'postgres', table: database.table });
    if (applied.length > 0) onMigrated?.(applied);
  } catch (err) {
    throw new Error(`PostgreSQL metadata database: ${describePgError(err)}`);
  } finally {
    await migrationDb.destroy();
  }
  // A stalled server must not hold a finalize forever: its query fails and is retried.
  return new KyselyMetadataStore(connect(database.poolSize, 30_000), { table: database.table, hostIdentifier, backend: 'postgres' });
}

/** The driver's message without the connection string (which may hold a password). */
export function describePgError(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return `${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`;
}
