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
  /**
   * Takes a dump's source file once the dump is stored and recorded, in place of deleting it:
   * the file (emptied at once) may become the temp file of a later store. Absent: the file is deleted.
   */
  recycle?(file: string): void;
}

export const DUMP_STORE = Symbol('DUMP_STORE');

/**
 * Read and compression chunk sizes for storing a dump. With the stream defaults (64 KiB reads,
 * 16 KiB gzip chunks) a 1.5 MB dump takes about a hundred thread-pool round trips and costs about
 * 25 % more CPU than one gzip call over the same bytes; 256 KiB / 128 KiB chunks come within a
 * few % of it while memory per store stays bounded.
 */
export const STORE_READ_CHUNK = 256 * 1024;
export const STORE_GZIP_CHUNK = 128 * 1024;
