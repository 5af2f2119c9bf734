#!/usr/bin/env node
// Focused measure (not part of `npm run bench`): system calls per short session, every thread of
// the server, for the bench's targets. Each target is started fresh, warmed with a few sessions,
// then `strace -f -c` is attached while N one-frame sessions (connect, one frame, close, 64 at a
// time) run until every one is durable. Prints, per target, the calls per session by name. Needs
// strace and ptrace rights. After `npm run build`:
//   node bench/syscalls.measure.mjs [--sessions 500] [--targets baseline,collector]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { closeAndWait, goodToken, open, pool, runId, sendFrames, withToken } from './lib/load.mjs';
import { TARGETS } from './lib/targets.mjs';

const { values: opt } = parseArgs({
  options: {
    sessions: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '200' },
    targets: { type: 'string', default: 'baseline,collector' },
  },
});
const n = Number(opt.sessions);
const secret = 'bench-secret-0123456789-abcdefghijklmnopq';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'syscalls-measure-'));

async function sessions(server, run, count, first) {
  await pool(count, 64, async (i) => {
    const ws = await open(withToken(server.url, goodToken(secret, run, first + i)));
    await sendFrames(ws, { run, conn: first + i, frames: [], count: 1, offset: 0 });
    await closeAndWait(ws);
  });
  while (server.durableCount() < first + count) await sleep(20);
}

/** strace -c's table: { name: calls }. */
function parseSummary(text) {
  const calls = {};
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m !== null && m[2] !== 'total') calls[m[2]] = Number(m[1]);
  }
  return calls;
}

const results = {};
try {
  for (const name of opt.targets.split(',')) {
    const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
    const server = await TARGETS[name].start({ dir, secret, pinCpu: null });
    try {
      const run = runId();
      await sessions(server, run, Number(opt.warmup), 0);
      await sleep(500);
      const out = path.join(dir, 'strace.txt');
      const strace = spawn('strace', ['-f', '-c', '-o', out, '-p', String(server.pid)], { stdio: 'ignore' });
      await sleep(1000); // attached to every thread
      await sessions(server, run, n, Number(opt.warmup));
      await sleep(300);
      const exited = new Promise((r) => strace.once('exit', r));
      strace.kill('SIGINT');
      await exited;
      results[name] = parseSummary(fs.readFileSync(out, 'utf8'));
    } finally {
      await server.stop();
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

const names = Object.keys(results);
const all = [...new Set(names.flatMap((t) => Object.keys(results[t])))];
const per = (t, s) => (results[t][s] ?? 0) / n;
all.sort((a, b) => Math.max(...names.map((t) => per(t, b))) - Math.max(...names.map((t) => per(t, a))));
console.log(`system calls per one-frame session (${n} sessions, every thread)`);
console.log(['syscall'.padEnd(18), ...names.map((t) => t.padStart(12))].join(' '));
for (const s of all) {
  if (Math.max(...names.map((t) => per(t, s))) < 0.05) continue;
  console.log([s.padEnd(18), ...names.map((t) => per(t, s).toFixed(2).padStart(12))].join(' '));
}
console.log(['total'.padEnd(18), ...names.map((t) => (Object.values(results[t]).reduce((a, b) => a + b, 0) / n).toFixed(2).padStart(12))].join(' '));
