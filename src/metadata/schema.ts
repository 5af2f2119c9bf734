import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';

/** Column names follow the reference server (rtcstats_user, ...) so existing queries keep working. */
export interface DumpsTable {
  id: string;
  start_time: number;
  end_time: number;
  close_code: number;
  frame_count: number;
  bytes: number;
  location: string;
  rtcstats_user: string | null;
  rtcstats_session: string | null;
  rtcstats_conference: string | null;
  kid: string | null;
  origin: string | null;
  user_agent: string | null;
  client_protocol: string | null;
  path: string;
  remote_address: string | null;
  stats_session_id: string | null;
  conference_name: string | null;
  display_name: string | null;
  meeting_id: string | null;
}

export interface Database {
  dumps: DumpsTable;
}

// Written in Kysely's schema builder so the same migrations run on SQLite and PostgreSQL.
const migrations: Record<string, Migration> = {
  '0001_dumps': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('dumps')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('start_time', 'bigint', (c) => c.notNull())
        .addColumn('end_time', 'bigint', (c) => c.notNull())
        .addColumn('close_code', 'integer', (c) => c.notNull())
        .addColumn('frame_count', 'integer', (c) => c.notNull())
        .addColumn('bytes', 'bigint', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('rtcstats_user', 'text')
        .addColumn('rtcstats_session', 'text')
        .addColumn('rtcstats_conference', 'text')
        .addColumn('kid', 'varchar(64)')
        .addColumn('origin', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('client_protocol', 'text')
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('remote_address', 'text')
        .execute();
      for (const column of ['rtcstats_user', 'rtcstats_session', 'rtcstats_conference', 'start_time']) {
        await db.schema.createIndex(`dumps_${column}_idx`).on('dumps').column(column).execute();
      }
    },
  },
  // Jitsi clients' identity (their statsSessionId, confName, displayName, meetingUniqueId).
  '0002_jitsi_identity': {
    async up(db: Kysely<any>) {
      for (const column of ['stats_session_id', 'conference_name', 'display_name', 'meeting_id']) {
        await db.schema.alterTable('dumps').addColumn(column, 'text').execute();
      }
      for (const column of ['stats_session_id', 'meeting_id']) {
        await db.schema.createIndex(`dumps_${column}_idx`).on('dumps').column(column).execute();
      }
    },
  },
};

class StaticProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations;
  }
}

export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider: new StaticProvider() }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`metadata migration ${failed} failed: ${(error as Error).message ?? String(error)}`);
  }
}


