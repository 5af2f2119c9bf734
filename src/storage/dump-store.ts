/** Where finished dumps go. Implementations: local directory now; object storage later. */
export interface DumpStore {
  /**
   * Stores the finished dump file under the dump id (gzip-compressed) and returns its location.
   * Idempotent: storing the same id again leaves one object. On failure nothing partial remains.
   */
  store(id: string, file: string): Promise<string>;
}

export const DUMP_STORE = Symbol('DUMP_STORE');
