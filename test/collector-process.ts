import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

import Database from 'better-sqlite3';

import { REPO_ROOT, TEST_SECRET, within } from './helpers.js';

// RTCSTATS_TEST_MAIN runs these tests against another build (e.g. to show they fail on an old one).
const MAIN = process.env.RTCSTATS_TEST_MAIN ?? path.join(REPO_ROOT, 'dist/src/main.js');

export interface CollectorProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: string[];
  /** Resolves with the first output line matching `pattern` (already printed or to come). */
  line(pattern: RegExp, ms?: number): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  url(pathAndQuery?: string): string;
}

/**
 * Runs the built collector (`node dist/src/main.js`) as a child process on a free port, with the
 * given data directory as its working directory (so no .env of the repo applies).
 */
export async function startCollector(dataDir: string, env: Record<string, string> = {}): Promise<CollectorProcess> {
  const child = spawn(process.execPath, [MAIN], {
    cwd: dataDir,
    env: {
      PATH: process.env.PATH ?? '',
      RTCSTATS_PORT: '0',
      RTCSTATS_HOST: '127.0.0.1',
      RTCSTATS_DATA_DIR: dataDir,
      RTCSTATS_JWT_SECRET: TEST_SECRET,
      RTCSTATS_KEYRING_WATCH: 'false',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const watchers: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      output.push(line);
      for (const w of [...watchers]) {
        if (w.pattern.test(line)) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const line = (pattern: RegExp, ms?: number): Promise<string> => {
    const seen = output.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return within(new Promise<string>((resolve) => watchers.push({ pattern, resolve })), `collector output ${pattern}`, ms);
  };
  const listening = await line(/listening on ws:\/\/[^:]+:(\d+)\//, 30_000).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${output.join('\n')}`);
  });
  const port = Number(/:(\d+)\//.exec(listening)![1]);
  return { child, port, output, line, exited, url: (p = '/') => `ws://127.0.0.1:${port}${p}` };
}

/** Kills the collector if it still runs and waits for it to be gone. */
export async function stopCollector(c: CollectorProcess | undefined): Promise<void> {
  if (c === undefined) return;
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await c.exited;
}

export interface Row {
  id: string;
  close_code: number;
  frame_count: number;
  location: string;
  rtcstats_user: string | null;
  rtcstats_session: string | null;
  /** ISO-8601 text (the reference table's timestamps, as SQLite keeps them). */
  session_start: string;
  session_end: string;
  stats_session_id: string | null;
  meeting_id: string | null;
}

/** The metadata rows, read with a separate read-only connection (the collector may be running). */
export function metadataRows(dataDir: string): Row[] {
  const db = new Database(path.join(dataDir, 'rtcstats.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        `SELECT dump_id AS id, close_code, frame_count, blob_url AS location, rtcstats_user, rtcstats_session,
           session_start, session_end, stats_session_id, meeting_id FROM "rtcstats-server" ORDER BY dump_id`,
      )
      .all() as Row[];
  } finally {
    db.close();
  }
}
