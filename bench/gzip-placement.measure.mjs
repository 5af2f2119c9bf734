// Issue 12: can the gzip after close cost less CPU while the output stays one standard gzip file and
// the event loop stays responsive? Stores the same pre-made dumps (frames of the real 90 s Chrome
// session, or the large getStats reports of bench/data) with:
//   store       LocalDumpStore of this build (dist/): inline up to 64 KiB, one thread-pool gzip call
//               up to 1 MiB, streamed through the pool beyond
//   sync-whole  the whole file gzipped on the event loop in one call: an unbounded stall, shown as the
//               lower bound of what moving gzip out of the pool can save
//   sliced      one gzip member made on the event loop from --slice slices, each raw-deflated on its
//               own and ended by a sync flush, with a turn of the event loop between slices; a header,
//               a final empty block and the trailer (CRC-32 and length) around them
//   members     each slice its own gzip member (concatenated members are standard gzip, but fflate's
//               gunzipSync, Python's zlib.decompress(wbits=31) and browsers' DecompressionStream
//               read only the first)
//   libdeflate  members from the WASM build of libdeflate (npm `libdeflate`, not a dependency: give
//               an installed copy with --libdeflate DIR); whole-buffer only, so members it is
// Each writes a .partial, fsyncs it in the thread pool and renames it, --concurrency dumps at a time
// as the finalize queue does; the floor is zlib.gzipSync of the same bytes in memory. CPU from
// process.cpuUsage (every thread), per frame, median [min-max] of interleaved rounds; the
// compression ratio (raw / stored bytes) of each; and, in one more pass per variant that is not
// timed, the wall time of the synchronous steps on the event loop (a slice's read, gzip and write),
// median and longest (the longest includes any time the process was not scheduled: on a busy
// machine read the median, the size of a slice bounds the work of each step).
//   npm run build && taskset -c 0 node bench/gzip-placement.measure.mjs \
//     [--sets real-50x2000,real-200x500,large-20x1000] [--rounds 7] [--slice 131072] [--libdeflate DIR]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import zlib from 'node:zlib';

import { largeFrames, realFrames } from './lib/frames.mjs';

const { values: opt } = parseArgs({
  options: {
    sets: { type: 'string', default: 'real-50x2000,real-200x500,large-20x1000' },
    rounds: { type: 'string', default: '7' },
    slice: { type: 'string', default: String(128 * 1024) },
    concurrency: { type: 'string', default: String(Math.max(4, os.availableParallelism())) },
    level: { type: 'string', default: '1' },
    libdeflate: { type: 'string' },
  },
});
const SLICE = Number(opt.slice);
const level = Number(opt.level);
const concurrency = Number(opt.concurrency);
const { LocalDumpStore } = await import(path.resolve(import.meta.dirname, '../dist/src/storage/local-dump.store.js'));
const libdeflate = opt.libdeflate === undefined ? undefined : await import(path.join(path.resolve(opt.libdeflate), 'index.js'));
const fsync = promisify(fs.fsync);
const turn = () => new Promise((resolve) => setImmediate(resolve));
const NL = Buffer.from('\n');
/** While set, the wall time (ms) of every synchronous step of the run. */
let steps;
function step(fn) {
  if (steps === undefined) return fn();
  const t0 = performance.now();
  const result = fn();
  steps.push(performance.now() - t0);
  return result;
}

function writeAll(fd, data) {
  for (let done = 0; done < data.length; ) done += fs.writeSync(fd, data, done);
}

/** Reads `file` in slices on the event loop, hands each to `write(state, slice, out)`, then syncs and renames. */
function slicedStore(begin, write, end) {
  return async (file, target) => {
    const temp = `${target}.partial`;
    const src = fs.openSync(file, 'r');
    const out = fs.openSync(temp, 'w', 0o600);
    const buf = Buffer.allocUnsafe(SLICE);
    try {
      const state = begin(out);
      for (let pos = 0; ; ) {
        const n = step(() => {
          const read = fs.readSync(src, buf, 0, SLICE, pos);
          if (read > 0 || pos === 0) write(state, buf.subarray(0, read), out);
          return read;
        });
        pos += n;
        if (n < SLICE) break;
        await turn();
      }
      end(state, out);
      await fsync(out);
    } finally {
      fs.closeSync(src);
      fs.closeSync(out);
    }
    fs.renameSync(temp, target);
  };
}

const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
const variants = {
  store: (dir) => {
    const store = new LocalDumpStore(dir, level);
    return (file, target) => store.store(path.basename(target, '.jsonl.gz'), file);
  },
  'sync-whole': () => async (file, target) => {
    const temp = `${target}.partial`;
    const out = fs.openSync(temp, 'w', 0o600);
    try {
      step(() => writeAll(out, zlib.gzipSync(fs.readFileSync(file), { level })));
      await fsync(out);
    } finally {
      fs.closeSync(out);
    }
    fs.renameSync(temp, target);
  },
  sliced: () =>
    slicedStore(
      (out) => {
        writeAll(out, GZIP_HEADER);
        return { crc: 0, length: 0 };
      },
      (state, slice, out) => {
        state.crc = zlib.crc32(slice, state.crc);
        state.length += slice.length;
        writeAll(out, zlib.deflateRawSync(slice, { level, finishFlush: zlib.constants.Z_SYNC_FLUSH }));
      },
      (state, out) => {
        const trailer = Buffer.alloc(10);
        trailer[0] = 3; // with trailer[1]: a final block of fixed codes holding nothing
        trailer.writeUInt32LE(state.crc >>> 0, 2);
        trailer.writeUInt32LE(state.length >>> 0, 6);
        writeAll(out, trailer);
      },
    ),
  members: () => slicedStore(() => undefined, (_, slice, out) => writeAll(out, zlib.gzipSync(slice, { level })), () => undefined),
};
if (libdeflate !== undefined) {
  variants.libdeflate = () => slicedStore(() => undefined, (_, slice, out) => writeAll(out, libdeflate.gzip(slice, level)), () => undefined);
}

/** Writes `count` dumps of `perDump` frames into `dir`; returns their paths and the frame count. */
function makeDumps(dir, kind, count, perDump) {
  const frames = kind === 'large' ? largeFrames() : realFrames();
  const files = [];
  for (let c = 0; c < count; c++) {
    const parts = [Buffer.from('RTCStatsDump\n{"fileFormat":3}\n')];
    for (let i = 0; i < perDump; i++) parts.push(frames[(c * 37 + i) % frames.length], NL);
    const file = path.join(dir, `${c}.jsonl`);
    fs.writeFileSync(file, Buffer.concat(parts));
    files.push(file);
  }
  return files;
}

async function run(name, files, dir, timeSteps = false) {
  fs.mkdirSync(path.join(dir, 'dumps'));
  const targets = files.map((_, i) => path.join(dir, 'dumps', `d${i}.jsonl.gz`));
  await new Promise((resolve) => setTimeout(resolve, 50));
  steps = timeSteps ? [] : undefined;
  const c0 = process.cpuUsage();
  if (name === 'floor') {
    for (const f of files) zlib.gzipSync(fs.readFileSync(f), { level });
  } else {
    const store = variants[name](path.join(dir, 'dumps'));
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        await store(files[i], targets[i]);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  const cpu = process.cpuUsage(c0);
  let raw = 0;
  let stored = 0;
  if (name !== 'floor') {
    for (let i = 0; i < files.length; i++) {
      const input = fs.readFileSync(files[i]);
      const gz = fs.readFileSync(targets[i]);
      if (!zlib.gunzipSync(gz).equals(input)) throw new Error(`${name}: ${targets[i]} does not gunzip to its source`);
      raw += input.length;
      stored += gz.length;
    }
  }
  return { cpuUs: cpu.user + cpu.system, ratio: stored > 0 ? raw / stored : undefined, steps };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const names = ['store', 'sync-whole', 'sliced', 'members', ...(libdeflate === undefined ? [] : ['libdeflate']), 'floor'];
for (const set of opt.sets.split(',')) {
  const m = /^(real|large)-(\d+)x(\d+)$/.exec(set);
  if (!m) throw new Error(`bad set ${set}`);
  const kind = m[1];
  const count = Number(m[2]);
  const perDump = Number(m[3]);
  const once = async (name, timeSteps) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gzip-placement-'));
    try {
      return await run(name, makeDumps(dir, kind, count, perDump), dir, timeSteps);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < Number(opt.rounds); r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) results[name].push(await once(name, false));
  }
  const stepMs = {};
  for (const name of names) stepMs[name] = (await once(name, true)).steps;
  const frames = count * perDump;
  const base = median(results.store.map((x) => x.cpuUs));
  console.log(`\n${set}: ${count} dumps x ${perDump} frames, ${concurrency} at a time, slices of ${SLICE} B, gzip level ${level}, ${opt.rounds} rounds`);
  console.log('| variant | CPU us/frame, median [min-max] | / store | ratio | synchronous steps, wall ms: median / longest |');
  console.log('|---|---|---|---|---|');
  for (const name of names) {
    const cpu = results[name].map((x) => x.cpuUs / frames);
    const ratio = results[name][0].ratio;
    console.log(
      `| ${name} | ${median(cpu).toFixed(2)} [${Math.min(...cpu).toFixed(2)}-${Math.max(...cpu).toFixed(2)}] | ${(median(cpu) / (base / frames)).toFixed(2)}x | ${ratio === undefined ? '-' : ratio.toFixed(3)} | ${stepMs[name].length === 0 ? '-' : `${median(stepMs[name]).toFixed(2)} / ${Math.max(...stepMs[name]).toFixed(2)}`} |`,
    );
  }
}
