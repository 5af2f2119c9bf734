#!/usr/bin/env node
// Focused measure of the connection path (not part of `npm run bench`): server CPU per valid
// handshake and per rejected token, for the bench's targets, in interleaved rounds on the same
// machine state. Each round starts every target fresh (like `npm run bench`, so JIT warm-up
// counts) unless --warm, opens N connections with valid tokens 64 at a time (CPU measured over
// the handshakes only), closes them, waits for the server to go quiet, then sends N bad tokens
// (the bench's five kinds). Prints each round and the medians. After `npm run build`:
//   taskset -c 1 node bench/connect.measure.mjs --targets baseline,collector-ref,collector --rounds 5
// (collector-ref: the build in $BENCH_REF_DIR, e.g. a copy of main's dist/ with node_modules linked).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { WebSocket } from 'ws';

import { badToken, closeAndWait, goodToken, open, pool, runId, withToken } from './lib/load.mjs';
import { cpuSeconds } from './lib/proc.mjs';
import { TARGETS } from './lib/targets.mjs';

const { values: opt } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    targets: { type: 'string', default: 'baseline,collector' },
    warm: { type: 'boolean', default: false },
    'server-cpu': { type: 'string', default: '0' },
  },
});
const n = Number(opt.connections);
const names = opt.targets.split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const secret = 'bench-secret-0123456789-abcdefghijklmnopq';
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'connect-measure-'));

/** Waits until the server used under 2 ms of CPU in 100 ms (the previous phase's work is done). */
async function quiet(pid) {
  for (let i = 0; i < 100; i++) {
    const c0 = cpuSeconds(pid);
    await sleep(100);
    if (cpuSeconds(pid) - c0 < 0.002) return;
  }
}

async function phases(server, round) {
  const good = Array.from({ length: n }, (_, i) => withToken(server.url, goodToken(secret, round, i)));
  const bad = Array.from({ length: n }, (_, i) => withToken(server.url, badToken(secret, i)));
  await quiet(server.pid);
  const sockets = new Array(n);
  let c0 = cpuSeconds(server.pid);
  await pool(n, 64, async (i) => (sockets[i] = await open(good[i])));
  const handshake = (1e6 * (cpuSeconds(server.pid) - c0)) / n;
  await Promise.all(sockets.map((ws) => closeAndWait(ws)));
  await quiet(server.pid);
  c0 = cpuSeconds(server.pid);
  let notRejected = 0;
  await pool(n, 64, async (i) => {
    const ws = await open(bad[i]).catch(() => null);
    if (ws === null) return;
    const code = await new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve('closed');
      ws.once('close', resolve);
    });
    if (code !== 1008) notRejected++;
  });
  const rejection = (1e6 * (cpuSeconds(server.pid) - c0)) / n;
  if (notRejected > 0) throw new Error(`${notRejected} bad tokens not closed with 1008`);
  return { handshake, rejection };
}

const results = Object.fromEntries(names.map((t) => [t, { handshake: [], rejection: [] }]));
const warm = {};
try {
  for (let r = 0; r < Number(opt.rounds); r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      let server = warm[name];
      if (server === undefined) {
        const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
        server = await TARGETS[name].start({ dir, secret, pinCpu: Number(opt['server-cpu']) });
        if (opt.warm) warm[name] = server;
      }
      try {
        const m = await phases(server, runId());
        results[name].handshake.push(m.handshake);
        results[name].rejection.push(m.rejection);
        console.log(`round ${r + 1} ${name}: cpuUsPerHandshake=${m.handshake.toFixed(0)} cpuUsPerRejection=${m.rejection.toFixed(0)}`);
      } finally {
        if (!opt.warm) await server.stop();
      }
    }
  }
} finally {
  for (const s of Object.values(warm)) await s.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
}
const base = results[names[0]];
for (const name of names) {
  const h = median(results[name].handshake);
  const j = median(results[name].rejection);
  console.log(
    `median ${name}: handshake ${h.toFixed(0)} us (${(h / median(base.handshake)).toFixed(2)}x ${names[0]}), ` +
      `rejection ${j.toFixed(0)} us (${(j / median(base.rejection)).toFixed(2)}x)`,
  );
}
