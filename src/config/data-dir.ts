import fs from 'node:fs';
import path from 'node:path';

import { makeDataDir } from '../common/file-modes.js';
import { ConfigError } from './app-config.js';

/** Creates the directory if needed and proves it is writable, so a bad path fails the boot, not the first call. */
export function ensureWritableDir(dir: string, variable: string): void {
  try {
    makeDataDir(dir);
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`${variable}: data directory ${dir} is not writable (${code})`);
  }
}
