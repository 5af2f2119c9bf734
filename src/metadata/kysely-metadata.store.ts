import { type Kysely, type Selectable, sql } from 'kysely';

import type { DumpQuery, DumpRecord, MetadataStore } from './metadata.store.js';
import type { Database, DumpsTable } from './schema.js';

function toRow(r: DumpRecord): DumpsTable {
  return {
    id: r.id,
    start_time: r.startTime,
    end_time: r.endTime,
    close_code: r.closeCode,
    frame_count: r.frameCount,
    bytes: r.bytes,
    location: r.location,
    rtcstats_user: r.user,
    rtcstats_session: r.session,
    rtcstats_conference: r.conference,
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

function fromRow(r: Selectable<DumpsTable>): DumpRecord {
  return {
    id: r.id,
    startTime: Number(r.start_time),
    endTime: Number(r.end_time),
    closeCode: r.close_code,
    frameCount: r.frame_count,
    bytes: Number(r.bytes),
    location: r.location,
    user: r.rtcstats_user,
    session: r.rtcstats_session,
    conference: r.rtcstats_conference,
    kid: r.kid,
    origin: r.origin,
    userAgent: r.user_agent,
    clientProtocol: r.client_protocol,
    path: r.path,
    remoteAddress: r.remote_address,
    statsSessionId: r.stats_session_id,
    conferenceName: r.conference_name,
    displayName: r.display_name,
    meetingId: r.meeting_id,
  };
}

/** Metadata records through Kysely, so SQLite and PostgreSQL share one implementation. */
export class KyselyMetadataStore implements MetadataStore {
  constructor(
    private readonly db: Kysely<Database>,
    readonly backend: string,
  ) {}

  /** A write transaction that changes nothing: fails when the database is unreachable or write-locked. */
  async ping(): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await sql`delete from dumps where id = ${'\u0000ping'}`.execute(tx);
    });
  }

  /** Idempotent on the dump id: a retried or recovered dump never gets a second row. */
  async insert(record: DumpRecord): Promise<void> {
    await this.db
      .insertInto('dumps')
      .values(toRow(record))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  async find(query: DumpQuery, limit = 100): Promise<DumpRecord[]> {
    let q = this.db.selectFrom('dumps').selectAll();
    if (query.user !== undefined) q = q.where('rtcstats_user', '=', query.user);
    if (query.session !== undefined) q = q.where('rtcstats_session', '=', query.session);
    if (query.conference !== undefined) q = q.where('rtcstats_conference', '=', query.conference);
    const rows = await q.orderBy('start_time', 'desc').limit(limit).execute();
    return rows.map(fromRow);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
