// Where the CPU after close goes: the real FinalizeQueue + LocalDumpStore + SQLite metadata store
// finalize N pre-made live dumps (frames of the 90 s Chrome session, as the bench sends them),
// against the compression floor (zlib.gzipSync of the same bytes) and against what the bench's
// baseline server does at close (fsync + rename of the raw file), all measured in this process with
// process.cpuUsage (every thread: libuv's pool included). Pin it to one core like the bench pins
// the server, so wall time ~= CPU. Run after `npm run build`:
//   taskset -c 0 node bench/finalize-cost.measure.mjs [--rounds 3] [--sets real-50x1000,real-200x250,one-1000]
//   taskset -c 0 node bench/finalize-cost.measure.mjs --only collector --profile /tmp/prof   (main thread only)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

import { realFrames } from './lib/frames.mjs';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    sets: { type: 'string', default: 'real-50x1000,real-200x250,one-1000' },
    only: { type: 'string' },
    concurrency: { type: 'string', default: String(Math.max(4, os.availableParallelism())) },
    level: { type: 'string', default: '1' },
    /** Writes a .cpuprofile of the main thread over the measured part of each collector run. */
    profile: { type: 'string' },
    /** A/B: also run `collector-ref`, the same path from another build's dist/ (e.g. a copy of main's). */
    ref: { type: 'string' },
  },
});
const load = async (dist) => ({
  ...(await import(path.join(dist, 'src/finalization/finalize-queue.js'))),
  ...(await import(path.join(dist, 'src/storage/local-dump.store.js'))),
  ...(await import(path.join(dist, 'src/metadata/sqlite.js'))),
});
const builds = { collector: await load(path.resolve(import.meta.dirname, '../dist')) };
if (opt.ref !== undefined) builds['collector-ref'] = await load(path.resolve(opt.ref));
const level = Number(opt.level);
const frames = realFrames();
const NL = Buffer.from('\n');

/** Writes `count` live dumps of `perDump` frames into `dir` the way DumpSession does; returns jobs. */
function makeDumps(dir, count, perDump) {
  const jobs = [];
  for (let c = 0; c < count; c++) {
    const id = crypto.randomUUID();
    const file = path.join(dir, `${id}.jsonl`);
    const startTime = Date.now() - 60_000;
    const meta = { url: '/bench?x=1', origin: 'https://example.com', userAgent: 'Mozilla/5.0 bench', startTime, remoteAddresses: ['127.0.0.x'], clientProtocol: 'rtcstats#5.0', fileFormat: 3, dumpId: id, kid: 'k1', rtcStats: { user: 'u', session: 's', conference: 'c' } };
    const parts = [Buffer.from(`RTCStatsDump\n${JSON.stringify(meta)}\n`)];
    let bytes = 0;
    for (let i = 0; i < perDump; i++) {
      const f = frames[(c * 37 + i) % frames.length];
      parts.push(f, NL);
      bytes += f.length;
    }
    parts.push(Buffer.from(`${JSON.stringify(['close', null, 1000, 5])}\n`));
    fs.writeFileSync(file, Buffer.concat(parts));
    const record = { id, startTime, endTime: Date.now(), closeCode: 1000, frameCount: perDump, bytes, user: 'u', session: 's', conference: 'c', kid: 'k1', origin: 'https://example.com', userAgent: 'Mozilla/5.0 bench', clientProtocol: 'rtcstats#5.0', path: '/bench', remoteAddress: '127.0.0.x' };
    jobs.push({ id, file, sealed: false, record, complete: true });
  }
  return jobs;
}

const quiet = { log() {}, warn() {}, error(m) { console.error(m); } };
const cpuUs = (u) => u.user + u.system;

let session;
const post = (method, params) => new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r))));

async function measure(fn, profile = false) {
  if (profile && opt.profile !== undefined) {
    session ??= new (await import('node:inspector')).Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.start');
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const r = { cpuUs: cpuUs(process.cpuUsage(c0)), wallMs: performance.now() - t0 };
  if (profile && opt.profile !== undefined) {
    const { profile: p } = await post('Profiler.stop');
    fs.mkdirSync(opt.profile, { recursive: true });
    fs.writeFileSync(path.join(opt.profile, `collector-${Date.now()}.cpuprofile`), JSON.stringify(p));
    session.disconnect();
  }
  return r;
}

const targets = {
  /** The compression floor: one gzipSync per dump, nothing written. */
  floor: async (jobs) => measure(async () => {
    for (const j of jobs) zlib.gzipSync(fs.readFileSync(j.file), { level });
  }),
  /** The bench baseline at close: fsync and rename the raw file (its close cost, the floor excluded). */
  baseline: async (jobs) => measure(async () => {
    await Promise.all(jobs.map(async (j) => {
      const h = await fs.promises.open(j.file, 'r+');
      await h.sync();
      await h.close();
      await fs.promises.rename(j.file, `${j.file}.done`);
    }));
  }),
};
for (const [name, { FinalizeQueue, LocalDumpStore, openSqliteMetadataStore }] of Object.entries(builds)) {
  targets[name] = async (jobs, dir) => {
    const dumps = new LocalDumpStore(path.join(dir, 'dumps'), level);
    const metadata = await openSqliteMetadataStore(path.join(dir, 'meta.sqlite'));
    const queue = new FinalizeQueue({ dumps, metadata, outboxDir: path.join(dir, 'outbox'), concurrency: Number(opt.concurrency), log: quiet });
    const r = await measure(async () => {
      for (const j of jobs) queue.submit(j);
      await queue.idle();
    }, true);
    const stored = (await metadata.find({}, jobs.length + 1)).length;
    if (stored !== jobs.length) throw new Error(`${stored} of ${jobs.length} recorded`);
    await metadata.close();
    return r;
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const names = opt.only ? opt.only.split(',') : Object.keys(targets);
for (const set of opt.sets.split(',')) {
  const m = /^(?:real|one)-(\d+)(?:x(\d+))?$/.exec(set);
  if (!m) throw new Error(`bad set ${set}`);
  const count = Number(m[1]);
  const perDump = Number(m[2] ?? 1);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  let totalFrames = 0;
  for (let r = 0; r < Number(opt.rounds); r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'finalize-cost-'));
      try {
        const work = path.join(dir, 'work');
        fs.mkdirSync(work);
        const jobs = makeDumps(work, count, perDump);
        totalFrames = count * perDump;
        await new Promise((res) => setTimeout(res, 50));
        results[name].push(await targets[name](jobs, dir));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const line = names.map((n) => {
    const cpu = median(results[n].map((x) => x.cpuUs));
    const wall = median(results[n].map((x) => x.wallMs));
    return `${n}: ${(cpu / count).toFixed(0)} us/dump ${(cpu / totalFrames).toFixed(2)} us/frame wall ${wall.toFixed(0)} ms`;
  });
  console.log(`${set} (${count} dumps x ${perDump} frames, median of ${opt.rounds}): ${line.join(' | ')}`);
}
