import fs from 'node:fs';

/*
 * Least privilege on disk: dumps and the metadata database hold user ids, user agents and
 * (unless obfuscated) addresses, so the collector's own user writes them and its group may read
 * them (a backup or analysis job), nobody else. The process umask can narrow these, never widen.
 */

/** The data directory and every folder the collector creates in it. */
export const DATA_DIR_MODE = 0o750;
/** Dumps (live and finished) and the SQLite files. */
export const DATA_FILE_MODE = 0o640;

/** Creates a directory (and missing parents) with DATA_DIR_MODE; an existing one is left as the operator set it. */
export function makeDataDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
}
