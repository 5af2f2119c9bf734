import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import type { DumpStore } from './dump-store.js';

const PARTIAL = '.partial';

/**
 * A crash mid-store leaves a temp file; its source is still in work/ or outbox/ and is stored
 * again (over the same temp name), so a leftover is only clutter. Call while nothing stores here.
 */
export function removeStalePartials(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(PARTIAL)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Keeps finished dumps as `<dir>/<id>.jsonl.gz`, written to a temp name, synced, then renamed.
 * Idempotent per id: the rename is atomic, so an existing target is a complete earlier store and
 * is not written again.
 */
export class LocalDumpStore implements DumpStore {
  readonly backend = 'local';

  /**
   * `removeStale`: clear temp files of an earlier run at start. Not in a cluster worker, which
   * starts while other workers write theirs; the primary clears them before forking any.
   */
  constructor(
    private readonly dir: string,
    private readonly gzipLevel = 1,
    removeStale = true,
  ) {
    makeDataDir(dir);
    if (removeStale) removeStalePartials(dir);
  }

  /** Writes and removes a probe file: the directory exists and takes a write. */
  async ping(): Promise<void> {
    const probe = path.join(this.dir, `.ping-${process.pid}${PARTIAL}`);
    await fs.promises.writeFile(probe, '', { mode: DATA_FILE_MODE });
    await fs.promises.rm(probe, { force: true });
  }

  async store(id: string, file: string): Promise<string> {
    const target = path.join(this.dir, `${id}.jsonl.gz`);
    const exists = await fs.promises.access(target).then(
      () => true,
      () => false,
    );
    if (exists) return target;
    const temp = `${target}${PARTIAL}`;
    try {
      const out = fs.createWriteStream(temp, { flags: 'w', mode: DATA_FILE_MODE });
      await pipeline(fs.createReadStream(file), zlib.createGzip({ level: this.gzipLevel }), out);
      const handle = await fs.promises.open(temp, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(temp, target);
    } catch (err) {
      await fs.promises.rm(temp, { force: true });
      throw err;
    }
    return target;
  }
}
