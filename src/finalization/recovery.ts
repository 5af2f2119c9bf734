import fs from 'node:fs';
import path from 'node:path';

import type { FinalizeJob } from './finalize-queue.js';

const DUMP_FILE = /^([0-9A-Za-z-]{1,64})\.jsonl$/;

/**
 * The jobs that finish what a previous run left behind: every sealed dump in the outbox, and every
 * live dump in work/ (sealed with a 1006 close line). Run before the server accepts connections.
 * Temp files of an interrupted seal are removed: their source is still there.
 */
export function recoveryJobs(workDir: string, outboxDir: string): FinalizeJob[] {
  const jobs: FinalizeJob[] = [];
  const sealed = new Set<string>();
  for (const name of fs.existsSync(outboxDir) ? fs.readdirSync(outboxDir) : []) {
    const file = path.join(outboxDir, name);
    if (name.endsWith('.tmp')) {
      fs.rmSync(file, { force: true });
      continue;
    }
    const m = DUMP_FILE.exec(name);
    if (m === null) continue;
    sealed.add(m[1]);
    jobs.push({ id: m[1], file, sealed: true });
  }
  for (const name of fs.existsSync(workDir) ? fs.readdirSync(workDir) : []) {
    const m = DUMP_FILE.exec(name);
    if (m === null) continue;
    const file = path.join(workDir, name);
    // A crash between sealing and removing the live file: the sealed copy is complete.
    if (sealed.has(m[1])) fs.rmSync(file, { force: true });
    else jobs.push({ id: m[1], file, sealed: false });
  }
  return jobs;
}
