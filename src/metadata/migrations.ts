import {
  type ColumnDataType,
  type Expression,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  type RawBuilder,
  sql,
} from 'kysely';

import { type SqlDialect, splitTableName } from './schema.js';

/** Column types of the one logical schema, per dialect (SQLite has no timestamp, uuid or jsonb). */
interface Types {
  timestamp: ColumnDataType;
  uuid: ColumnDataType;
  json: ColumnDataType;
  double: ColumnDataType;
  now: RawBuilder<unknown>;
}

const TYPES: Record<SqlDialect, Types> = {
  postgres: { timestamp: 'timestamptz', uuid: 'uuid', json: 'jsonb', double: 'double precision', now: sql`now()` },
  // ISO-8601 text with milliseconds, the form the store writes: it sorts and compares correctly.
  sqlite: { timestamp: 'text', uuid: 'text', json: 'text', double: 'real', now: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` },
};

export interface MigrationContext {
  dialect: SqlDialect;
  /** The configured metadata table (`schema.table` allowed). */
  table: string;
}

/** The columns a table has and their types (empty when it does not exist). */
async function columnsOf(db: Kysely<any>, ctx: MigrationContext, table: string): Promise<Map<string, string>> {
  const { schema, name } = splitTableName(table);
  if (ctx.dialect === 'sqlite') {
    const rows = await sql<{ name: string; type: string }>`select name, type from pragma_table_info(${name})`.execute(db);
    return new Map(rows.rows.map((r) => [r.name, r.type.toLowerCase()]));
  }
  const rows = await sql<{ column_name: string; data_type: string }>`select column_name, data_type from information_schema.columns
    where table_name = ${name} and table_schema = coalesce(${schema ?? null}::text, current_schema())`.execute(db);
  return new Map(rows.rows.map((r) => [r.column_name, r.data_type]));
}

function qualified(ctx: MigrationContext, name: string): string {
  const { schema } = splitTableName(ctx.table);
  return schema === undefined ? name : `${schema}.${name}`;
}

/** Index names are per schema in PostgreSQL; prefixing the table's name keeps ours apart. */
function indexName(ctx: MigrationContext, suffix: string): string {
  return `${splitTableName(ctx.table).name}_${suffix}`;
}

function migrations(ctx: MigrationContext): Record<string, Migration> {
  const t = TYPES[ctx.dialect];
  const table = ctx.table;
  return {
    // The reference's table, created when absent; a table made by an older reference version
    // gets the columns it lacks, and ours. Existing rows and columns are never touched.
    '0001_metadata_table': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable(table)
          .ifNotExists()
          .addColumn('id', ctx.dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            ctx.dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('session_start', t.timestamp)
          .addColumn('session_end', t.timestamp)
          .addColumn('blob_url', 'text')
          .addColumn('rtcstats_user', 'text')
          .addColumn('rtcstats_conference', 'text')
          .addColumn('rtcstats_session', 'text')
          .execute();
        const later: [string, ColumnDataType][] = [
          ['features_processing_start', t.timestamp],
          ['features_processing_stop', t.timestamp],
          ['rtcstats_embed_url', 'text'],
          ['host_identifier', 'text'],
          // Ours. Nullable, since rows written by the reference have none of them.
          ['dump_id', t.uuid],
          ['close_code', 'integer'],
          ['frame_count', 'integer'],
          ['bytes', 'bigint'],
          ['kid', 'text'],
          ['origin', 'text'],
          ['user_agent', 'text'],
          ['client_protocol', 'text'],
          ['path', 'text'],
          ['remote_address', 'text'],
          // Jitsi clients' identity (statsSessionId, confName, displayName, meetingUniqueId).
          ['stats_session_id', 'text'],
          ['conference_name', 'text'],
          ['display_name', 'text'],
          ['meeting_id', 'text'],
        ];
        const existing = await columnsOf(db, ctx, table);
        const idType = existing.get('id');
        if (idType !== undefined && !['bigint', 'integer'].includes(idType)) {
          // The reference's first releases keyed rows by uuid; its tools (and ours) join on a bigint.
          throw new Error(
            `table ${table} has an id of type ${idType}: apply the reference server's migration that makes it a bigint identity (rename_id) first`,
          );
        }
        for (const [column, type] of later) {
          if (!existing.has(column)) await db.schema.alterTable(table).addColumn(column, type).execute();
        }
        // One record per dump: the insert's ON CONFLICT target.
        await db.schema.createIndex(indexName(ctx, 'dump_id_key')).ifNotExists().unique().on(table).column('dump_id').execute();
        for (const column of ['rtcstats_user', 'rtcstats_session', 'rtcstats_conference', 'session_start', 'stats_session_id', 'meeting_id']) {
          await db.schema.createIndex(indexName(ctx, `${column}_idx`)).ifNotExists().on(table).column(column).execute();
        }
      },
    },
    // The reference's analysis tables (filled from the analysis service's answers).
    '0002_analysis_tables': {
      async up(db: Kysely<any>) {
        const analysis = qualified(ctx, 'rtcstats_analysis');
        const observations = qualified(ctx, 'rtcstats_observations');
        const identity = ctx.dialect === 'postgres' ? 'bigint' : 'integer';
        await db.schema
          .createTable(analysis)
          .ifNotExists()
          .addColumn('id', identity, (c) =>
            ctx.dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('dump_id', 'bigint', (c) => c.references(`${table}.id`).onUpdate('cascade'))
          .addColumn('rtcstats_id', 'text')
          .addColumn('schema_version', 'text')
          .addColumn('analysis_version', 'text')
          .addColumn('observations_version', 'text')
          .addColumn('upload_timestamp', t.timestamp)
          .addColumn('experience_score', 'real')
          .addColumn('audio_score', 'real')
          .addColumn('video_score', 'real')
          .addColumn('connectivity_score', 'real')
          .addColumn('observations_score', 'real')
          .addColumn('observations_count', t.json)
          .addColumn('ai_summary', t.json)
          .addColumn('user_agent_data', t.json)
          .execute();
        await db.schema
          .createTable(observations)
          .ifNotExists()
          .addColumn('id', identity, (c) =>
            ctx.dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('analysis_id', 'bigint', (c) => c.references(`${analysis}.id`).onDelete('cascade'))
          .addColumn('pid', 'text')
          .addColumn('type', 'text')
          .addColumn('severity', 'text')
          .addColumn('category', 'text')
          .addColumn('first_seen_at', t.double)
          .addColumn('observation', t.json)
          .execute();
        await db.schema.createIndex('rtcstats_analysis_dump_id_idx').ifNotExists().on(analysis).column('dump_id').execute();
        await db.schema
          .createIndex('rtcstats_observations_analysis_id_idx')
          .ifNotExists()
          .on(observations)
          .column('analysis_id')
          .execute();
        await db.schema.createIndex('rtcstats_observations_pid_idx').ifNotExists().on(observations).column('pid').execute();
      },
    },
    // Embedded databases of earlier versions kept records in `dumps` (epoch-ms times, `id` the
    // dump id, `location` the file): move them over, then drop `dumps` and its migration history.
    // Only our own SQLite file ever had that table; a PostgreSQL `dumps` would be someone else's.
    '0003_move_legacy_dumps': {
      async up(db: Kysely<any>) {
        if (ctx.dialect !== 'sqlite') return;
        const legacy = await columnsOf(db, ctx, 'dumps');
        if (legacy.size === 0) return;
        const iso = (column: string): Expression<string> =>
          sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', ${sql.ref(column)} / 1000.0, 'unixepoch')`;
        // Same names on both sides; the Jitsi identity columns exist only after `dumps` got them.
        const same = ['rtcstats_user', 'rtcstats_session', 'rtcstats_conference', 'close_code', 'frame_count', 'bytes', 'kid',
          'origin', 'user_agent', 'client_protocol', 'path', 'remote_address', 'stats_session_id', 'conference_name',
          'display_name', 'meeting_id'].filter((c) => legacy.has(c));
        const columns = sql.join(same.map((c) => sql.ref(c)));
        await sql`insert into ${sql.table(table)}
            (dump_id, created_at, session_start, session_end, blob_url, ${columns})
          select id, ${iso('end_time')}, ${iso('start_time')}, ${iso('end_time')}, location, ${columns}
          from dumps order by start_time
          on conflict (dump_id) do nothing`.execute(db);
        await db.schema.dropTable('dumps').execute();
        await db.schema.dropTable('kysely_migration').ifExists().execute();
        await db.schema.dropTable('kysely_migration_lock').ifExists().execute();
      },
    },
  };
}

class StaticProvider implements MigrationProvider {
  constructor(private readonly ctx: MigrationContext) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.ctx);
  }
}

/**
 * Applies the pending migrations and returns the names it applied. On PostgreSQL the whole run,
 * including creating the history tables, holds a session advisory lock for this table, so
 * collectors starting together apply each migration once: the others wait, then find nothing to do.
 */
export async function migrateToLatest(db: Kysely<any>, ctx: MigrationContext): Promise<string[]> {
  const { schema, name } = splitTableName(ctx.table);
  const run = async (conn: Kysely<any>): Promise<string[]> => {
    const migrator = new Migrator({
      db: conn,
      provider: new StaticProvider(ctx),
      // Named after the table: a database shared with other Kysely users keeps histories apart,
      // and a table name of its own gets its own history.
      migrationTableName: `${name}_migrations`,
      migrationLockTableName: `${name}_migration_lock`,
      migrationTableSchema: schema,
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'setup';
      throw new Error(`metadata migration ${failed} failed: ${(error as Error).message ?? String(error)}`);
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  };
  if (ctx.dialect === 'sqlite') return run(db);
  return db.connection().execute(async (conn) => {
    const key = `rtcstats-migrations:${ctx.table}`;
    await sql`select pg_advisory_lock(hashtext(${key}))`.execute(conn);
    try {
      return await run(conn);
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${key}))`.execute(conn);
    }
  });
}
