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

// OpenSSL's verification codes as Node reports them: the certificate chain was not trusted.
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/**
 * The driver's message without the connection string (which may hold a password), and for a
 * rejected server certificate which setting to look at (OpenSSL's wording alone does not say TLS).
 */
export function describePgError(err: unknown): string {
  const e = err as { message?: string; code?: string };
  const hint =
    e.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? ': the server\'s TLS certificate is not for the host in RTCSTATS_DATABASE_URL (verify-full checks the host name, verify-ca does not)'
      : e.code !== undefined && UNTRUSTED_CERTIFICATE_CODES.has(e.code)
        ? ': the server\'s TLS certificate was rejected (check RTCSTATS_DATABASE_CA_FILE, the CA that issued it, and RTCSTATS_DATABASE_SSL_MODE)'
        : '';
  return `${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}${hint}`;
}
