import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

import { DATA_FILE_MODE, makeDataDir } from '../common/file-modes.js';
import type { DumpStore } from './dump-store.js';

/**
 * Keeps finished dumps as `<dir>/<id>.jsonl.gz`, written to a temp name, synced, then renamed.
 * Idempotent per id: the rename is atomic, so an existing target is a complete earlier store.
 */
export class LocalDumpStore implements DumpStore {
  constructor(
    private readonly dir: string,
    private readonly gzipLevel = 1,
  ) {
    makeDataDir(dir);
  }

  async store(id: string, file: string): Promise<string> {
    const target = path.join(this.dir, `${id}.jsonl.gz`);
    const exists = await fs.promises.access(target).then(
      () => true,
      () => false,
    );
    if (exists) return target;
    const temp = `${target}.partial`;
    const out = fs.createWriteStream(temp, { flags: 'w', mode: DATA_FILE_MODE });
    await pipeline(fs.createReadStream(file), zlib.createGzip({ level: this.gzipLevel }), out);
    const handle = await fs.promises.open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temp, target);
    return target;
  }
}
