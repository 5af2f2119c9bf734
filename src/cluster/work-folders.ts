import fs from 'node:fs';
import path from 'node:path';

import { makeDataDir } from '../common/file-modes.js';

const SLOT_DIR = /^worker-(\d+)$/;

/** The folder of a cluster worker's slot under `base` (work/ or outbox/); `base` itself without a cluster. */
export function slotDir(base: string, slot: number | undefined): string {
  return slot === undefined ? base : path.join(base, `worker-${slot}`);
}

/**
 * Moves the dumps of folders no process will own into `target`, so that their recovery happens
 * exactly once, in the process that owns `target`. A run with fewer workers than the last one
 * (or none) leaves slots behind; a cluster started after a single-process run finds files at the
 * top of `base`. Must run while no process writes under `base` (before workers are forked).
 * Renames within one directory tree are atomic, and dump ids are unique, so nothing collides.
 * Returns how many files moved.
 */
export function adoptOrphans(base: string, target: string, slots: number | undefined): number {
  if (!fs.existsSync(base)) return 0;
  makeDataDir(target);
  let moved = 0;
  const move = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      fs.renameSync(path.join(dir, entry.name), path.join(target, entry.name));
      moved++;
    }
  };
  if (slots !== undefined) move(base);
  for (const entry of fs.readdirSync(base, { withFileTypes: true })) {
    const m = SLOT_DIR.exec(entry.name);
    if (!entry.isDirectory() || m === null) continue;
    if (slots !== undefined && Number(m[1]) <= slots) continue;
    const dir = path.join(base, entry.name);
    move(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return moved;
}
