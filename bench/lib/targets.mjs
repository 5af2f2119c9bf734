// The servers the bench compares. Each run starts a fresh server (pinned to the server CPU when
// pinning is on) in its own scratch directory, and knows how to tell when every session is
// durable and how to read back what it stored.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';

import Database from 'better-sqlite3';

import { REPO_ROOT } from './frames.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The environment without RTCSTATS_* variables, so the collector runs at its defaults. */
function cleanEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RTCSTATS_')));
  return { ...env, ...extra };
}

async function launch(name, args, { env, cwd, pinCpu, logFile }) {
  const port = await freePort();
  const argv = args(port);
  const [cmd, cmdArgs] = pinCpu === null ? [process.execPath, argv] : ['taskset', ['-c', String(pinCpu), process.execPath, ...argv]];
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cmd, cmdArgs, { env: env(port), cwd, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let dead = false;
  exited.then(() => (dead = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (dead) throw new Error(`${name} exited during start; see ${logFile}`);
    try {
      await fetch(`http://127.0.0.1:${port}/healthcheck`);
      break; // any HTTP answer: listening
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not answer HTTP within 60 s; see ${logFile}`);
    }
    await sleep(50);
  }
  return {
    pid: child.pid,
    url: `ws://127.0.0.1:${port}/`,
    async stop() {
      if (dead) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function frameLines(text) {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A server that writes `<n>.part` per connection and renames it to `<n>.jsonl` once durable. */
function fileServer(description, script, extraArgs) {
  return {
    description,
    async start({ dir, secret, pinCpu }) {
      const out = path.join(dir, 'out');
      fs.mkdirSync(out);
      const argv = (port) => [path.join(REPO_ROOT, script), '--port', String(port), '--dir', out, '--secret', secret, ...extraArgs];
      const server = await launch(description, argv, { env: () => cleanEnv({}), cwd: dir, pinCpu, logFile: path.join(dir, 'server.log') });
      const finished = () => fs.readdirSync(out).filter((f) => f.endsWith('.jsonl'));
      return {
        ...server,
        durableCount: () => finished().length,
        /** Frame lines of every stored session. */
        *sessions() {
          for (const f of finished()) yield frameLines(fs.readFileSync(path.join(out, f), 'utf8'));
        },
        dumpFiles: () => [],
      };
    },
  };
}

function collector(extraEnv, description) {
  return {
    description,
    async start({ dir, secret, pinCpu }) {
      const data = path.join(dir, 'data');
      const server = await launch('collector', () => [path.join(REPO_ROOT, 'dist/src/main.js')], {
        env: (port) =>
          cleanEnv({
            RTCSTATS_PORT: String(port),
            RTCSTATS_HOST: '127.0.0.1',
            RTCSTATS_DATA_DIR: data,
            RTCSTATS_JWT_SECRET: secret,
            RTCSTATS_LOG_LEVEL: 'warn',
            // All load comes from 127.0.0.1, as fast as the server takes it: the per-IP and per-connection
            // limits are raised out of reach (they still run on every frame, so their cost is measured).
            RTCSTATS_MAX_CONNECTIONS_PER_IP: '1000000',
            RTCSTATS_MAX_FRAMES_PER_SECOND: '1000000',
            RTCSTATS_MAX_BYTES_PER_SECOND: '1TiB',
            ...extraEnv,
          }),
        cwd: dir,
        pinCpu,
        logFile: path.join(dir, 'server.log'),
      });
      // Records are inserted after the .gz is stored: a record means a durable, recorded dump.
      // Read-only, straight from SQLite: cheap enough to poll every 20 ms from the generator's CPU.
      const { DEFAULT_TABLE } = await import(path.join(REPO_ROOT, 'dist/src/metadata/schema.js'));
      const table = `"${DEFAULT_TABLE}"`;
      const db = new Database(path.join(data, 'rtcstats.sqlite'), { readonly: true, fileMustExist: true });
      const count = db.prepare(`select count(*) as n from ${table}`);
      const locations = db.prepare(`select blob_url as location from ${table}`);
      return {
        ...server,
        durableCount: () => count.get().n,
        *sessions() {
          for (const { location } of locations.all()) {
            const lines = frameLines(zlib.gunzipSync(fs.readFileSync(location)).toString('utf8'));
            // Header line, metadata line, frames, then the server's ["close",null,code,delta] line.
            const last = lines[lines.length - 1];
            yield lines.slice(2, /^\["close",null,\d+,\d+\]$/.test(last) ? -1 : undefined);
          }
        },
        dumpFiles: () => locations.all().map((r) => r.location),
        async stop() {
          db.close();
          await server.stop();
        },
      };
    },
  };
}

export const TARGETS = {
  baseline: fileServer('minimal ws + append-to-file server (bench/baseline-server.mjs)', 'bench/baseline-server.mjs', []),
  collector: collector({}, 'this collector at its defaults but for the client limits (dist/src/main.js)'),
  'collector-plain': collector({ RTCSTATS_OBFUSCATE_IPS: 'false' }, 'this collector with RTCSTATS_OBFUSCATE_IPS=false'),
  // The experiment behind the gateway's design (no auth: ingest scenarios only).
  'nest-raw': fileServer('Nest app, frames from a raw ws listener', 'bench/nest-pipeline.mjs', ['--mode', 'raw']),
  'nest-pipeline': fileServer("Nest app, frames through @SubscribeMessage", 'bench/nest-pipeline.mjs', ['--mode', 'nest']),
};
