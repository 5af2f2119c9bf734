/** Where finished dumps go. Implementations: local directory, S3-compatible bucket. */
export interface DumpStore {
  /**
   * Stores the finished dump file under the dump id (gzip-compressed) and returns its location.
   * Idempotent: storing the same id again leaves one object. On failure nothing partial remains.
   */
  store(id: string, file: string): Promise<string>;
  /** A short name for metrics labels (`local`, `s3`): never a path, bucket, host or credential. */
  readonly backend: string;
  /**
   * Readiness: resolves when a dump could be stored now (the storage is reachable and accepts a
   * write), rejects with the reason otherwise. Cheap enough for a probe every few seconds.
   */
  ping(): Promise<void>;
  /** Releases connections at shutdown. */
  close?(): void;
}

export const DUMP_STORE = Symbol('DUMP_STORE');
