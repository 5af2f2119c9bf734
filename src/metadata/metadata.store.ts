/** One finished dump, as handed to the metadata store. */
export interface DumpRecord {
  /** The dump id (a UUID): `dump_id` in the table. */
  id: string;
  /** Epoch ms: `session_start`. */
  startTime: number;
  /** Epoch ms: `session_end`. */
  endTime: number;
  closeCode: number;
  frameCount: number;
  bytes: number;
  /** Where the dump store put it (a path, or the object URL): `blob_url`. */
  location: string;
  user: string | null;
  session: string | null;
  conference: string | null;
  kid: string | null;
  origin: string | null;
  userAgent: string | null;
  clientProtocol: string | null;
  path: string;
  remoteAddress: string | null;
  /** Jitsi sessions only (NULL otherwise): the client's statsSessionId and identity fields. */
  statsSessionId?: string | null;
  conferenceName?: string | null;
  displayName?: string | null;
  meetingId?: string | null;
}

/** A record as read back, with what the table adds. */
export interface StoredDumpRecord extends DumpRecord {
  /** The table's bigint `id`, which the reference's tools join on. */
  rowId: number;
  createdAt: number;
  hostIdentifier: string | null;
  embedUrl: string | null;
}

export interface DumpQuery {
  user?: string;
  session?: string;
  conference?: string;
}

/** What an rtcstats.com-style analysis service answered for one dump. */
export interface AnalysisResult {
  embedUrl?: string;
  rtcstatsId?: string;
  data?: Record<string, unknown>;
}

/** The searchable metadata records: SQLite or PostgreSQL, through one Kysely implementation. */
export interface MetadataStore {
  /** Idempotent on the dump id: inserting the same dump id again changes nothing. */
  insert(record: DumpRecord): Promise<void>;
  /**
   * Group commit: the records in one transaction, all or none. Idempotent per dump id like insert
   * (ids already recorded are skipped, the others inserted).
   */
  insertMany(records: readonly DumpRecord[]): Promise<void>;
  get(id: string): Promise<StoredDumpRecord | undefined>;
  find(query: DumpQuery, limit?: number): Promise<StoredDumpRecord[]>;
  /** Sets the dump's `rtcstats_embed_url` and stores `data` in rtcstats_analysis/observations. */
  recordAnalysis(id: string, result: AnalysisResult): Promise<void>;
  close(): Promise<void>;
  /** A short name for metrics labels (`sqlite`, `postgres`): never a URL, host or credential. */
  readonly backend: string;
  /** Readiness: resolves when a record could be inserted now (reachable, not write-locked), rejects with the reason otherwise. */
  ping(): Promise<void>;
}

export const METADATA_STORE = Symbol('METADATA_STORE');
