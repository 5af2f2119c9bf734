#!/usr/bin/env node
// CPU of obfuscateFrame per frame, by kind of frame, over the frames the bench replays (the 90 s
// Chrome fixture and the large getStats reports), optionally against another build in the same
// process (interleaved rounds, medians). For instruction counts that other load cannot disturb, run
// it under `valgrind --tool=callgrind` with two --iterations values and subtract.
//   npm run build && node bench/obfuscation.measure.mjs [--ref OTHER_CHECKOUT] [--rounds 7] [--iterations 200]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { largeFrames, realFrames, REPO_ROOT } from './lib/frames.mjs';

const { values: args } = parseArgs({
  options: { ref: { type: 'string' }, rounds: { type: 'string', default: '7' }, iterations: { type: 'string', default: '200' } },
});
const load = async (root) => (await import(pathToFileURL(path.join(root, 'dist/src/obfuscation/frame-obfuscator.js')).href)).obfuscateFrame;
const impls = { current: await load(REPO_ROOT), ...(args.ref ? { ref: await load(path.resolve(args.ref)) } : {}) };

function kind(frame) {
  const head = frame.toString('latin1', 0, 16);
  if (/^\["(?:g|getStats)"/.test(head)) return /"(?:134|141|ip|address|relatedAddress)"/.test(frame.toString()) ? 'getStats with address keys' : 'getStats';
  if (/^\[[35678],/.test(head)) return 'SDP methods';
  if (/^\[(?:10|20),/.test(head)) return 'candidates';
  return 'other';
}
const sets = [];
for (const [name, frames] of [['real', realFrames()], ['large', largeFrames()]]) {
  sets.push({ name: `${name}: all`, frames });
  const byKind = new Map();
  for (const f of frames) byKind.set(kind(f), [...(byKind.get(kind(f)) ?? []), f]);
  for (const [k, list] of byKind) sets.push({ name: `${name}: ${k}`, frames: list });
}
const iterations = Number(args.iterations);
const results = new Map();
for (let round = 0; round < Number(args.rounds); round++) {
  for (const set of sets) {
    for (const [impl, fn] of Object.entries(impls)) {
      const n = Math.max(1, Math.round((iterations * 300) / set.frames.length));
      const t0 = process.cpuUsage();
      for (let i = 0; i < n; i++) for (const f of set.frames) fn(f);
      const d = process.cpuUsage(t0);
      const key = `${set.name}|${impl}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push((d.user + d.system) / (n * set.frames.length));
    }
  }
}
const median = (a) => a.toSorted((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`| frames | n | ${Object.keys(impls).map((i) => `${i} (us/frame)`).join(' | ')} |${args.ref ? ' current / ref |' : ''}`);
console.log(`|---|---|${Object.keys(impls).map(() => '---|').join('')}${args.ref ? '---|' : ''}`);
for (const set of sets) {
  const cur = median(results.get(`${set.name}|current`));
  const ref = args.ref ? median(results.get(`${set.name}|ref`)) : undefined;
  console.log(`| ${set.name} | ${set.frames.length} | ${cur.toFixed(2)} |${ref === undefined ? '' : ` ${ref.toFixed(2)} | ${(cur / ref).toFixed(2)}x |`}`);
}
