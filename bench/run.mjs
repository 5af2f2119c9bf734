#!/usr/bin/env node
// `npm run bench`: this collector against a minimal `ws` + append-to-file server
// (bench/baseline-server.mjs) in the same run. Each server runs pinned to one CPU, this process
// (driver and load generator) to another; for every round, every scenario runs against every
// target (order alternating between rounds), each time on a freshly started server. Prints, per
// scenario, the median [min-max] of every metric per target and the ratio to the baseline.
// Options: node bench/run.mjs --help
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { REPO_ROOT } from './lib/frames.mjs';
import { runId } from './lib/load.mjs';
import { parseScenario, runScenario } from './lib/scenarios.mjs';
import { TARGETS } from './lib/targets.mjs';

const FULL = ['real-50x2000', 'real-200x500', 'large-20x1000', 'idle-2000', 'oneframe-2000', 'badtoken-2000'];
const QUICK = ['real-50x1000', 'real-200x250', 'large-20x500', 'idle-1000', 'oneframe-1000', 'badtoken-1000'];

const HELP = `usage: npm run bench -- [options]       (or: node bench/run.mjs [options], after npm run build)
  --quick              smaller scenarios (${QUICK.join(' ')}), about a minute
  --rounds N           interleaved rounds, medians over them (default 5)
  --scenarios LIST     comma-separated (default: ${FULL.join(',')})
                       real-CxF: C connections x F frames of the real 90 s Chrome session
                       large-CxF: C connections x F frames of ~6 KB getStats reports
                       idle-N: N connections, one frame each, held open, then closed
                       oneframe-N: N short sessions (connect, one frame, close), 64 at a time
                       badtoken-N: N connections with invalid tokens, 64 at a time
  --targets LIST       default baseline,collector; also collector-plain (obfuscation off),
                       nest-raw and nest-pipeline (bench/nest-pipeline.mjs; no auth, ingest scenarios only)
  --hold-ms MS         how long idle connections are held (default 3000)
  --no-pin             do not pin with taskset (results are then only indicative)
  --server-cpu N       CPU for the servers (default 0); --gen-cpu N: for this process (default 1)
  --json FILE          also write every run's raw result as JSON
  --timeout S          max seconds to wait for a scenario's dumps to be durable (default 300)`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    scenarios: { type: 'string' },
    targets: { type: 'string', default: 'baseline,collector' },
    'hold-ms': { type: 'string', default: '3000' },
    'no-pin': { type: 'boolean', default: false },
    'server-cpu': { type: 'string', default: '0' },
    'gen-cpu': { type: 'string', default: '1' },
    json: { type: 'string' },
    timeout: { type: 'string', default: '300' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}
function usageError(message) {
  console.error(`bench: ${message} (see --help)`);
  process.exit(2);
}
const rounds = Number(opt.rounds ?? 5);
if (!Number.isInteger(rounds) || rounds < 1) usageError('--rounds must be a whole number of at least 1');
let scenarios;
try {
  scenarios = (opt.scenarios?.split(',') ?? (opt.quick ? QUICK : FULL)).map(parseScenario);
} catch (err) {
  usageError(err.message);
}
const targets = opt.targets.split(',');
for (const t of targets) if (!(t in TARGETS)) usageError(`unknown target "${t}" (${Object.keys(TARGETS).join(', ')})`);
if (targets[0] !== 'baseline') usageError('the first target must be baseline: ratios are to it');
const pin = !opt['no-pin'];

// Pin this process (driver and load generator) to its CPU by re-running it under taskset.
if (pin && process.env.RTCSTATS_BENCH_PINNED !== '1') {
  if (os.cpus().length < 2) throw new Error('pinning needs 2 CPUs; run with --no-pin');
  const r = spawnSync('taskset', ['-c', opt['gen-cpu'], process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, RTCSTATS_BENCH_PINNED: '1' },
  });
  if (r.error) throw new Error(`taskset failed (${r.error.message}); install util-linux or run with --no-pin`);
  process.exit(r.status ?? 1);
}

async function gzipLevel() {
  const { parseConfig } = await import(path.join(REPO_ROOT, 'dist/src/config/app-config.js'));
  return parseConfig(() => undefined).gzipLevel;
}

/** CPU of gzip at the collector's level over the dumps it stored, on the server's CPU. */
function compressionFloor(files, level) {
  if (files.length === 0) return undefined;
  const argv = [path.join(REPO_ROOT, 'bench/gzip-floor.mjs'), '--level', String(level), ...files];
  const out = pin ? execFileSync('taskset', ['-c', opt['server-cpu'], process.execPath, ...argv]) : execFileSync(process.execPath, argv);
  return JSON.parse(out.toString());
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const METRICS = {
  cpuUsPerFrameSend: 'server CPU per frame, send phase (us)',
  cpuUsPerFrameTotal: 'server CPU per frame incl. work after close, until durable (us)',
  gzipFloorUsPerFrame: 'compression floor: gzip of the stored bytes, per frame (us)',
  framesPerSecSend: 'frames per second, send phase (higher is better)',
  durableS: 'wall time until every dump is durable (s)',
  handshakesPerSec: 'valid handshakes per second (higher is better)',
  cpuUsPerHandshake: 'server CPU per handshake (us)',
  rssKiBPerIdleConnection: 'RSS per idle connection (KiB)',
  cpuUsPerClose: 'server CPU per close, until durable (us)',
  closeDurableS: 'wall time from close until durable (s)',
  sessionsPerSecDurable: 'sessions durable per second (higher is better)',
  cpuUsPerSession: 'server CPU per session, until durable (us)',
  rejectionsPerSec: 'rejections per second (higher is better)',
  cpuUsPerRejection: 'server CPU per rejection (us)',
  peakRssMiB: 'peak RSS (MiB)',
  generatorCpuPct: 'load generator CPU in the send phase (% of its core)',
};

const fmt = (v) => (v === undefined ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

function report(results, level) {
  const lines = [];
  const head = ['scenario', 'metric', ...targets.map((t) => `${t} median [min-max]`), ...targets.slice(1).map((t) => `${t} / baseline`)];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const s of scenarios) {
    const runs = (t) => results.filter((r) => r.scenario === s.name && r.target === t);
    const keys = Object.keys(METRICS).filter((k) => targets.some((t) => runs(t).some((r) => r.metrics[k] !== undefined)));
    const med = (t, k) => {
      const xs = runs(t).map((r) => r.metrics[k]).filter((v) => v !== undefined);
      return xs.length ? { m: median(xs), lo: Math.min(...xs), hi: Math.max(...xs) } : undefined;
    };
    for (const k of keys) {
      const cells = targets.map((t) => {
        const v = med(t, k);
        return v === undefined ? '-' : `${fmt(v.m)} [${fmt(v.lo)}-${fmt(v.hi)}]`;
      });
      const base = med('baseline', k);
      const ratios = targets.slice(1).map((t) => {
        const v = med(t, k);
        return v === undefined || base === undefined || base.m === 0 ? '-' : `${(v.m / base.m).toFixed(2)}x`;
      });
      lines.push(`| ${s.name} | ${METRICS[k]} | ${[...cells, ...ratios].join(' | ')} |`);
    }
    if (keys.includes('gzipFloorUsPerFrame')) {
      // The reference for the whole-session CPU: the baseline plus the compression it does not do.
      const base = med('baseline', 'cpuUsPerFrameTotal');
      const ratios = targets.slice(1).map((t) => {
        const total = med(t, 'cpuUsPerFrameTotal');
        const floor = med(t, 'gzipFloorUsPerFrame');
        return total && floor && base ? `${(total.m / (base.m + floor.m)).toFixed(2)}x` : '-';
      });
      lines.push(`| ${s.name} | CPU per frame incl. after close / (baseline + floor) | ${targets.map(() => '').join(' | ')} | ${ratios.join(' | ')} |`);
    }
    const sum = (t, k) => runs(t).reduce((a, r) => a + r.verify[k], 0);
    const verified = targets.map((t) => `${sum(t, 'lostFrames')} lost, ${sum(t, 'extraFrames')} extra of ${runs(t).reduce((a, r) => a + r.frames, 0)}`);
    if (s.kind !== 'badtoken') lines.push(`| ${s.name} | frames lost (stored dumps read back, all rounds) | ${verified.join(' | ')} | ${targets.slice(1).map(() => '').join(' | ')} |`);
    else {
      const bad = targets.map((t) => `${runs(t).reduce((a, r) => a + r.info.notRejected + r.info.storedFromRejected, 0)}`);
      lines.push(`| ${s.name} | bad tokens accepted or stored (all rounds) | ${bad.join(' | ')} | ${targets.slice(1).map(() => '').join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

async function main() {
  const level = await gzipLevel();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-bench-'));
  const cleanup = () => fs.rmSync(scratch, { recursive: true, force: true });
  // Interrupted: take the running server down with us and leave nothing behind.
  let live = null;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      if (live !== null) process.kill(live.pid, 'SIGKILL');
      cleanup();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
  const results = [];
  const started = new Date();
  const pinNote = pin ? `servers on CPU ${opt['server-cpu']}, load generator on CPU ${opt['gen-cpu']}` : 'not pinned';
  console.error(`bench: ${rounds} round(s) of ${scenarios.map((s) => s.name).join(', ')}; targets ${targets.join(', ')}; ${pinNote}; gzip level ${level}`);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const s of scenarios) {
        const order = round % 2 === 1 ? targets : [...targets].reverse();
        for (const name of order) {
          const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
          const secret = `bench-${runId()}-${runId()}-${runId()}-${runId()}`;
          const server = await TARGETS[name].start({ dir, secret, pinCpu: pin ? Number(opt['server-cpu']) : null });
          live = server;
          let r;
          try {
            r = await runScenario(s, server, { secret, run: runId(), holdMs: Number(opt['hold-ms']), timeoutS: Number(opt.timeout) });
            if (s.kind === 'ingest' && name !== 'baseline') {
              const floor = compressionFloor(server.dumpFiles(), level);
              if (floor) r.metrics.gzipFloorUsPerFrame = (1e6 * floor.cpuSeconds) / r.frames;
              r.info.gzip = floor;
            }
          } finally {
            await server.stop();
            live = null;
            fs.rmSync(dir, { recursive: true, force: true });
          }
          results.push({ round, scenario: s.name, target: name, ...r });
          const v = r.verify;
          console.error(
            `round ${round} ${s.name} ${name}: ${Object.entries(r.metrics).map(([k, x]) => `${k}=${fmt(x)}`).join(' ')}` +
              ` lost=${v.lostFrames} extra=${v.extraFrames} missing=${v.missingDumps}`,
          );
        }
      }
    }
  } finally {
    cleanup();
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`\n${rounds} round(s), ${started.toISOString()}, ${os.cpus().length} x ${cpu}, Node ${process.version}, ${pinNote}, gzip level ${level}\n`);
  console.log(report(results, level));
  const problems = results.filter((r) => r.verify.lostFrames + r.verify.extraFrames + r.verify.missingDumps > 0 || (r.info.notRejected ?? 0) > 0 || (r.info.storedFromRejected ?? 0) > 0);
  if (opt.json) fs.writeFileSync(opt.json, JSON.stringify({ started, rounds, targets, pinned: pin, gzipLevel: level, results }, null, 2));
  if (problems.length > 0) {
    console.error(`\n${problems.length} run(s) lost, duplicated or wrongly accepted something: ${problems.map((r) => `${r.scenario}/${r.target} r${r.round}`).join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
