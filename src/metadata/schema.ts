import type { ColumnType, Generated } from 'kysely';

/** Timestamps are written as ISO-8601 strings; PostgreSQL reads them back as Date, SQLite as text. */
type Timestamp = ColumnType<Date | string, string, string>;
/** int8 comes back from pg as a string (it can exceed 2^53), from SQLite as a number. */
type BigInt8 = ColumnType<string | number, number, number>;
/** JSON is written as text; jsonb reads back parsed on PostgreSQL, as text on SQLite. */
type Json = ColumnType<unknown, string | null, string | null>;

/**
 * The reference server's table (default name `rtcstats-server`): its columns with its names and
 * types, plus ours (from `dump_id` on). Its feature extractor and dashboards read this table.
 */
export interface MetadataTable {
  id: Generated<string | number>;
  created_at: Generated<Date | string>;
  session_start: Timestamp | null;
  session_end: Timestamp | null;
  blob_url: string | null;
  rtcstats_user: string | null;
  rtcstats_conference: string | null;
  rtcstats_session: string | null;
  features_processing_start: Timestamp | null;
  features_processing_stop: Timestamp | null;
  rtcstats_embed_url: string | null;
  host_identifier: string | null;
  dump_id: string | null;
  close_code: number | null;
  frame_count: number | null;
  bytes: BigInt8 | null;
  kid: string | null;
  origin: string | null;
  user_agent: string | null;
  client_protocol: string | null;
  path: string | null;
  remote_address: string | null;
  stats_session_id: string | null;
  conference_name: string | null;
  display_name: string | null;
  meeting_id: string | null;
}

/** The reference's analysis results of the rtcstats.com upload (one row per analysed dump). */
export interface AnalysisTable {
  id: Generated<string | number>;
  created_at: Generated<Date | string>;
  dump_id: BigInt8 | null;
  rtcstats_id: string | null;
  schema_version: string | null;
  analysis_version: string | null;
  observations_version: string | null;
  upload_timestamp: Timestamp | null;
  experience_score: number | null;
  audio_score: number | null;
  video_score: number | null;
  connectivity_score: number | null;
  observations_score: number | null;
  observations_count: Json;
  ai_summary: Json;
  user_agent_data: Json;
}

export interface ObservationsTable {
  id: Generated<string | number>;
  analysis_id: BigInt8 | null;
  pid: string | null;
  type: string | null;
  severity: string | null;
  category: string | null;
  first_seen_at: number | null;
  observation: Json;
}

/**
 * `metadata` stands for the configured table name (RTCSTATS_DATABASE_TABLE): queries name the
 * real table and cast it to this key, since Kysely's types need a fixed name.
 */
export interface Database {
  metadata: MetadataTable;
  rtcstats_analysis: AnalysisTable;
  rtcstats_observations: ObservationsTable;
}

export type SqlDialect = 'sqlite' | 'postgres';

/** The reference server's table name, the default of RTCSTATS_DATABASE_TABLE. */
export const DEFAULT_TABLE = 'rtcstats-server';

/** `schema.table` or `table`, split; the schema is undefined for the default search path. */
export function splitTableName(table: string): { schema: string | undefined; name: string } {
  const dot = table.indexOf('.');
  return dot === -1 ? { schema: undefined, name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}
