/** Where finished dumps go. Implementations: local directory, S3-compatible bucket. */
export interface DumpStore {
  /**
   * Stores the finished dump file under the dump id (gzip-compressed) and returns its location.
   * Idempotent: storing the same id again leaves one object. On failure nothing partial remains.
   */
  store(id: string, file: string): Promise<string>;
  /** Releases connections at shutdown. */
  close?(): void;
}

export const DUMP_STORE = Symbol('DUMP_STORE');
