import type { Insertable, Kysely, Selectable } from 'kysely';

import type { AnalysisResult, DumpQuery, DumpRecord, MetadataStore, StoredDumpRecord } from './metadata.store.js';
import type { Database, MetadataTable } from './schema.js';

const iso = (ms: number): string => new Date(ms).toISOString();

function millis(v: Date | string | null): number {
  if (v === null) return NaN;
  return v instanceof Date ? v.getTime() : Date.parse(v);
}

export function toRow(r: DumpRecord, hostIdentifier: string | null): Insertable<MetadataTable> {
  return {
    dump_id: r.id,
    session_start: iso(r.startTime),
    session_end: iso(r.endTime),
    blob_url: r.location,
    rtcstats_user: r.user,
    rtcstats_session: r.session,
    rtcstats_conference: r.conference,
    host_identifier: hostIdentifier,
    close_code: r.closeCode,
    frame_count: r.frameCount,
    bytes: r.bytes,
    kid: r.kid,
    origin: r.origin,
    user_agent: r.userAgent,
    client_protocol: r.clientProtocol,
    path: r.path,
    remote_address: r.remoteAddress,
    stats_session_id: r.statsSessionId ?? null,
    conference_name: r.conferenceName ?? null,
    display_name: r.displayName ?? null,
    meeting_id: r.meetingId ?? null,
  };
}

function fromRow(r: Selectable<MetadataTable>): StoredDumpRecord {
  return {
    id: r.dump_id ?? '',
    rowId: Number(r.id),
    createdAt: millis(r.created_at),
    startTime: millis(r.session_start),
    endTime: millis(r.session_end),
    closeCode: r.close_code ?? 0,
    frameCount: r.frame_count ?? 0,
    bytes: Number(r.bytes ?? 0),
    location: r.blob_url ?? '',
    user: r.rtcstats_user,
    session: r.rtcstats_session,
    conference: r.rtcstats_conference,
    kid: r.kid,
    origin: r.origin,
    userAgent: r.user_agent,
    clientProtocol: r.client_protocol,
    path: r.path ?? '',
    remoteAddress: r.remote_address,
    statsSessionId: r.stats_session_id,
    conferenceName: r.conference_name,
    displayName: r.display_name,
    meetingId: r.meeting_id,
    hostIdentifier: r.host_identifier,
    embedUrl: r.rtcstats_embed_url,
  };
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
const number = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

function timestamp(v: unknown): string | null {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? iso(ms) : null;
}

/** Rows per INSERT statement of a group commit. */
const INSERT_CHUNK = 500;

export interface KyselyMetadataStoreOptions {
  /** The configured table name (RTCSTATS_DATABASE_TABLE). */
  table: string;
  /** Written to `host_identifier` of each record. */
  hostIdentifier: string | null;
  /** For metrics labels: `sqlite` or `postgres`. */
  backend: string;
}

/** Metadata records through Kysely, so SQLite and PostgreSQL share one implementation. */
export class KyselyMetadataStore implements MetadataStore {
  // Kysely's types know the table as `metadata`; the SQL names the configured table.
  protected readonly table: 'metadata';
  private readonly analysisTable: 'rtcstats_analysis';
  private readonly observationsTable: 'rtcstats_observations';
  protected readonly hostIdentifier: string | null;

  constructor(
    protected readonly db: Kysely<Database>,
    options: KyselyMetadataStoreOptions,
  ) {
    this.table = options.table as 'metadata';
    const dot = options.table.indexOf('.');
    const schema = dot === -1 ? '' : options.table.slice(0, dot + 1);
    this.analysisTable = `${schema}rtcstats_analysis` as 'rtcstats_analysis';
    this.observationsTable = `${schema}rtcstats_observations` as 'rtcstats_observations';
    this.hostIdentifier = options.hostIdentifier;
    this.backend = options.backend;
  }

  readonly backend: string;

  /**
   * Readiness: a write transaction that changes nothing (the nil UUID is never a dump id: ours are
   * version 4), so it fails when the database is unreachable or write-locked, as an insert would.
   */
  async ping(): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom(this.table).where('dump_id', '=', '00000000-0000-0000-0000-000000000000').execute();
    });
  }

  async insert(record: DumpRecord): Promise<void> {
    await this.insertMany([record]);
  }

  async insertMany(records: readonly DumpRecord[]): Promise<void> {
    if (records.length === 0) return;
    // One statement (atomic) per chunk, the chunks in one transaction; a chunk stays far below
    // PostgreSQL's 65535 bound parameters (21 columns per row).
    const insert = (db: Kysely<Database>, chunk: readonly DumpRecord[]) =>
      db
        .insertInto(this.table)
        .values(chunk.map((r) => toRow(r, this.hostIdentifier)))
        .onConflict((oc) => oc.column('dump_id').doNothing())
        .execute();
    if (records.length <= INSERT_CHUNK) {
      await insert(this.db, records);
      return;
    }
    await this.db.transaction().execute(async (tx) => {
      for (let i = 0; i < records.length; i += INSERT_CHUNK) await insert(tx, records.slice(i, i + INSERT_CHUNK));
    });
  }

  async get(id: string): Promise<StoredDumpRecord | undefined> {
    const row = await this.db.selectFrom(this.table).selectAll().where('dump_id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  async find(query: DumpQuery, limit = 100): Promise<StoredDumpRecord[]> {
    let q = this.db.selectFrom(this.table).selectAll().where('dump_id', 'is not', null);
    if (query.user !== undefined) q = q.where('rtcstats_user', '=', query.user);
    if (query.session !== undefined) q = q.where('rtcstats_session', '=', query.session);
    if (query.conference !== undefined) q = q.where('rtcstats_conference', '=', query.conference);
    const rows = await q.orderBy('session_start', 'desc').limit(limit).execute();
    return rows.map(fromRow);
  }

  async recordAnalysis(id: string, result: AnalysisResult): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom(this.table).select('id').where('dump_id', '=', id).executeTakeFirst();
      if (row === undefined) throw new Error(`no metadata record for dump ${id}`);
      if (typeof result.embedUrl === 'string') {
        await trx.updateTable(this.table).set({ rtcstats_embed_url: result.embedUrl }).where('id', '=', row.id).execute();
      }
      const data = result.data;
      if (data === undefined || data === null || typeof data !== 'object') return;
      const analysis = await trx
        .insertInto(this.analysisTable)
        .values({
          dump_id: Number(row.id),
          rtcstats_id: text(result.rtcstatsId) ?? text(data.id),
          schema_version: text(data.schemaVersion),
          analysis_version: text(data.analysisVersion),
          observations_version: text(data.observationsVersion),
          upload_timestamp: timestamp(data.uploadTimestamp),
          experience_score: number(data.experienceScore),
          audio_score: number(data.audioScore),
          video_score: number(data.videoScore),
          connectivity_score: number(data.connectivityScore),
          observations_score: number(data.observationsScore),
          observations_count: json(data.observationsCount),
          ai_summary: json(data.aiSummary),
          user_agent_data: json(data.userAgentData),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const observations = Array.isArray(data.observations) ? data.observations : [];
      const rows = observations
        .filter((o): o is Record<string, unknown> => o !== null && typeof o === 'object')
        .map((o) => ({
          analysis_id: Number(analysis.id),
          pid: text((o.source as Record<string, unknown> | undefined)?.pid),
          type: text(o.type),
          severity: text(o.severity),
          category: text(o.category),
          first_seen_at: number(o.firstSeenAt),
          observation: json(o),
        }));
      if (rows.length > 0) await trx.insertInto(this.observationsTable).values(rows).execute();
    });
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
