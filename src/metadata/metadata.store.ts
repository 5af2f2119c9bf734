/** One finished dump, as kept in the metadata database. */
export interface DumpRecord {
  id: string;
  startTime: number;
  endTime: number;
  closeCode: number;
  frameCount: number;
  bytes: number;
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

export interface DumpQuery {
  user?: string;
  session?: string;
  conference?: string;
}

/** The searchable metadata records. Implementations: embedded SQLite now; PostgreSQL later. */
export interface MetadataStore {
  /** Idempotent on `record.id`: inserting a dump id that exists is a no-op (not an error, not a second row). */
  insert(record: DumpRecord): Promise<void>;
  find(query: DumpQuery, limit?: number): Promise<DumpRecord[]>;
  close(): Promise<void>;
  /** A short name for metrics labels (`sqlite`, `postgres`): never a URL, host or credential. */
  readonly backend: string;
  /** Readiness: resolves when a record could be inserted now (reachable, not write-locked), rejects with the reason otherwise. */
  ping(): Promise<void>;
}

export const METADATA_STORE = Symbol('METADATA_STORE');
