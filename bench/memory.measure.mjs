#!/usr/bin/env node
// Focused measure of memory at rest (not part of `npm run bench`): each round starts every target
// fresh at its defaults (like the bench), waits until it answers HTTP and then --settle-ms more,
// and reads /proc: resident set, its anonymous part (V8's heap, malloc) and its file-backed part
// (the node binary, native addons); with --heap, V8's heap spaces too (reported by a preload
// the server is started with). Prints each round and the medians. After `npm run build`:
//   node bench/memory.measure.mjs --targets baseline,collector-ref,collector --rounds 5 --heap
// (collector-ref: the build in $BENCH_REF_DIR, e.g. a copy of main's dist/ with node_modules linked).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { runId } from './lib/load.mjs';
import { TARGETS } from './lib/targets.mjs';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    targets: { type: 'string', default: 'baseline,collector' },
    'settle-ms': { type: 'string', default: '2000' },
    heap: { type: 'boolean', default: false },
  },
});
const targets = opt.targets.split(',');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-memory-'));
const MiB = (kib) => kib / 1024;

function procKiB(file, field) {
  const m = fs.readFileSync(file, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m === null ? 0 : Number(m[1]);
}

// The preload writes V8's heap spaces (physical MiB) to a file named by its pid on SIGUSR2.
const preload = path.join(scratch, 'heap-spaces.mjs');
fs.writeFileSync(
  preload,
  `import fs from 'node:fs'; import v8 from 'node:v8';
process.on('SIGUSR2', () => {
  const file = ${JSON.stringify(scratch)} + '/heap-' + process.pid + '.json';
  fs.writeFileSync(file + '.tmp', JSON.stringify(Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.physical_space_size > 0).map((s) => [s.space_name, s.physical_space_size / 1048576]))));
  fs.renameSync(file + '.tmp', file);
});\n`,
);

async function heapSpaces(pid) {
  const file = path.join(scratch, `heap-${pid}.json`);
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await sleep(20);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

const rows = Object.fromEntries(targets.map((t) => [t, []]));
const savedArgs = process.env.BENCH_SERVER_NODE_ARGS;
if (opt.heap) process.env.BENCH_SERVER_NODE_ARGS = `${savedArgs ?? ''} --import=${preload}`;
try {
  for (let round = 1; round <= Number(opt.rounds); round++) {
    // Alternate the order, as the bench does.
    for (const name of round % 2 === 1 ? targets : [...targets].reverse()) {
      const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
      const server = await TARGETS[name].start({ dir, secret: `memory-${runId()}-${runId()}-${runId()}`, pinCpu: null });
      try {
        await sleep(Number(opt['settle-ms']));
        const row = {
          rss: MiB(procKiB(`/proc/${server.pid}/status`, 'VmRSS')),
          anon: MiB(procKiB(`/proc/${server.pid}/smaps_rollup`, 'Anonymous')),
          file: MiB(procKiB(`/proc/${server.pid}/smaps_rollup`, 'Rss') - procKiB(`/proc/${server.pid}/smaps_rollup`, 'Anonymous')),
          ...(opt.heap ? await heapSpaces(server.pid) : {}),
        };
        rows[name].push(row);
        console.log(`round ${round} ${name}: ${Object.entries(row).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ')} MiB`);
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log('\nmedians (MiB):');
for (const name of targets) {
  const keys = [...new Set(rows[name].flatMap((r) => Object.keys(r)))];
  console.log(`${name}: ${keys.map((k) => `${k}=${median(rows[name].map((r) => r[k] ?? 0)).toFixed(1)}`).join(' ')}`);
}
