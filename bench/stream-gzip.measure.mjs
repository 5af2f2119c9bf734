// Issue 12's lever "gzip streamed while the session records instead of re-reading the file after
// close", measured before building it. Every variant writes the plain live file, as the collector
// must (after kill -9, recovery rebuilds the dump from what the kernel received); they differ in
// when the .gz is made:
//   raw-only       the plain file and its fsync only (what the bench's baseline server does)
//   after-close    then, at close, one read, one gzip call (256 KiB output chunk) and one write + fsync
//                  of the .gz (what LocalDumpStore does for a dump up to 1 MiB)
//   after-close-sync  the same with zlib.gzipSync on the event loop instead of the thread pool
//   stream-frame   every frame also written into a zlib Gzip stream piped to the .gz file
//   stream-64k     frames gathered to 64 KiB before each write into the Gzip stream
// plus the compression floor: zlib.gzipSync of each session's bytes, in memory, no file at all.
// S sessions of F frames of the real 90 s Chrome session, written interleaved (one frame per session
// in turn, as many connections arrive). CPU from process.cpuUsage (every thread, libuv's pool
// included), per frame, until every .gz (or plain file) is synced; "recording" is the part until the
// last frame was handed over. Pin it to one core like the bench pins the server:
//   taskset -c 0 node bench/stream-gzip.measure.mjs [--sessions 50] [--frames 1000] [--rounds 5]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

import { realFrames } from './lib/frames.mjs';

const { values: opt } = parseArgs({
  options: {
    sessions: { type: 'string', default: '50' },
    frames: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    level: { type: 'string', default: '1' },
  },
});
const sessions = Number(opt.sessions);
const perSession = Number(opt.frames);
const rounds = Number(opt.rounds);
const level = Number(opt.level);
const frames = realFrames();
const NL = Buffer.from('\n');
const BATCH = 64 * 1024;

const fsyncFile = async (file) => {
  const h = await fs.promises.open(file, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
};

/** One variant over a fresh directory; returns CPU microseconds per frame (recording, total). */
async function run(variant, dir) {
  const raw = [];
  const gz = [];
  const batches = [];
  for (let s = 0; s < sessions; s++) {
    raw.push(fs.createWriteStream(path.join(dir, `${s}.jsonl`), { highWaterMark: 256 * 1024 }));
    if (variant.startsWith('stream')) {
      const z = zlib.createGzip({ level });
      const out = fs.createWriteStream(path.join(dir, `${s}.jsonl.gz`));
      z.pipe(out);
      gz.push({ z, out });
      batches.push({ parts: [], bytes: 0 });
    }
  }
  const cpu0 = process.cpuUsage();
  for (let f = 0; f < perSession; f++) {
    for (let s = 0; s < sessions; s++) {
      const frame = frames[(f + s * 37) % frames.length];
      raw[s].write(frame);
      raw[s].write(NL);
      if (variant === 'stream-frame') {
        gz[s].z.write(frame);
        gz[s].z.write(NL);
      } else if (variant === 'stream-64k') {
        const b = batches[s];
        b.parts.push(frame, NL);
        b.bytes += frame.length + 1;
        if (b.bytes >= BATCH) {
          gz[s].z.write(Buffer.concat(b.parts, b.bytes));
          b.parts = [];
          b.bytes = 0;
        }
      }
    }
    // Let the streams and the pool work between rounds of frames, as a server's event loop does.
    if (f % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  const cpu1 = process.cpuUsage(cpu0);
  await Promise.all(
    raw.map(async (stream, s) => {
      stream.end();
      await finished(stream);
      const file = path.join(dir, `${s}.jsonl`);
      if (variant === 'raw-only') return fsyncFile(file);
      if (variant === 'after-close-sync') {
        const data = await fs.promises.readFile(file);
        const h = await fs.promises.open(`${file}.gz`, 'w');
        try {
          await h.writeFile(zlib.gzipSync(data, { level }));
          await h.sync();
        } finally {
          await h.close();
        }
        return;
      }
      if (variant === 'after-close') {
        const data = await fs.promises.readFile(file);
        const out = await new Promise((resolve, reject) =>
          zlib.gzip(data, { level, chunkSize: 256 * 1024 }, (err, r) => (err ? reject(err) : resolve(r))),
        );
        const h = await fs.promises.open(`${file}.gz`, 'w');
        try {
          await h.writeFile(out);
          await h.sync();
        } finally {
          await h.close();
        }
        return;
      }
      const b = batches[s];
      if (b.parts.length > 0) gz[s].z.write(Buffer.concat(b.parts, b.bytes));
      gz[s].z.end();
      await finished(gz[s].out);
      await fsyncFile(`${file}.gz`);
    }),
  );
  const cpu2 = process.cpuUsage(cpu0);
  const total = sessions * perSession;
  const us = (c) => (c.user + c.system) / total;
  return { recording: us(cpu1), total: us(cpu2) };
}

/** The floor: gzipSync of the same bytes, per frame. */
function floor() {
  const cpu0 = process.cpuUsage();
  for (let s = 0; s < sessions; s++) {
    const parts = [];
    for (let f = 0; f < perSession; f++) parts.push(frames[(f + s * 37) % frames.length], NL);
    zlib.gzipSync(Buffer.concat(parts), { level });
  }
  const c = process.cpuUsage(cpu0);
  return (c.user + c.system) / (sessions * perSession);
}

const floors = [];
const variants = ['raw-only', 'after-close', 'after-close-sync', 'stream-frame', 'stream-64k'];
const results = Object.fromEntries(variants.map((v) => [v, { recording: [], total: [] }]));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-stream-gzip-'));
try {
  for (let r = 0; r < rounds; r++) {
    floors.push(floor());
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const dir = fs.mkdtempSync(path.join(scratch, `${v}-`));
      const m = await run(v, dir);
      fs.rmSync(dir, { recursive: true, force: true });
      results[v].recording.push(m.recording);
      results[v].total.push(m.total);
      console.log(`round ${r + 1} ${v}: recording ${m.recording.toFixed(2)} us/frame, total ${m.total.toFixed(2)} us/frame`);
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const base = median(results['raw-only'].total);
console.log(`\n${sessions} sessions x ${perSession} frames, gzip level ${level}, ${rounds} rounds, medians (CPU us per frame, all threads):`);
console.log(`compression floor (gzipSync of the same bytes, with building them): ${median(floors).toFixed(2)} us/frame`);
console.log('| variant | recording | total until durable | total - raw-only |');
console.log('|---|---|---|---|');
for (const v of variants) {
  const t = median(results[v].total);
  console.log(`| ${v} | ${median(results[v].recording).toFixed(2)} | ${t.toFixed(2)} | ${(t - base).toFixed(2)} |`);
}
