// Throughput of POST /tokens against a plain NestJS app with a no-op POST endpoint.
// Not a test: run with `npm run bench:tokens` (builds first). Each server runs in its own child
// process; this process only generates load, one server at a time, in alternating rounds so
// machine noise hits both alike. Options: --requests N --concurrency C --rounds R.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const API_KEY = 'bench-api-key-0123456789-abcdefghijklmnop';
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopq';
const BODY = JSON.stringify({ user: 'bench-user', session: 'bench-session', conference: 'bench-room', expiresIn: '1h' });

const { values: opts } = parseArgs({
  options: {
    serve: { type: 'string' },
    requests: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
  },
});

async function serve(kind) {
  await import('reflect-metadata');
  const { NestFactory } = await import('@nestjs/core');
  let app;
  if (kind === 'tokens') {
    const { AppModule } = await import('../dist/src/app.module.js');
    const { setupApp } = await import('../dist/src/app.setup.js');
    app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
    setupApp(app);
  } else {
    const { Controller, Module, Post } = await import('@nestjs/common');
    class NoopController {
      noop() {
        return { ok: true };
      }
    }
    Controller()(NoopController);
    Post('noop')(NoopController.prototype, 'noop', Object.getOwnPropertyDescriptor(NoopController.prototype, 'noop'));
    class PlainModule {}
    Module({ controllers: [NoopController] })(PlainModule);
    app = await NestFactory.create(PlainModule, { logger: ['error', 'warn'] });
  }
  await app.listen(0, '127.0.0.1');
  process.send({ port: app.getHttpServer().address().port });
  process.on('disconnect', () => void app.close().then(() => process.exit(0)));
}

function startServer(kind) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-bench-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RTCSTATS_')));
  const child = fork(new URL(import.meta.url).pathname, ['--serve', kind], {
    cwd: dataDir, // no stray .env
    env: {
      ...env,
      RTCSTATS_DATA_DIR: dataDir,
      RTCSTATS_JWT_SECRET: SECRET,
      RTCSTATS_API_KEYS: API_KEY,
      // Never limited, yet the throttler still does its per-request work. Its in-memory storage
      // keeps one entry per hit in the window and scans them on every request, so a 1 s window
      // keeps that list as short as the default 600/minute does in production.
      RTCSTATS_TOKENS_RATE_LIMIT: '1000000000',
      RTCSTATS_RATE_LIMIT_WINDOW: '1',
      RTCSTATS_LOG_LEVEL: 'warn',
    },
  });
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve({ child, port, path: kind === 'tokens' ? '/tokens' : '/noop' }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

/** Fires `total` requests, `concurrency` at a time over keep-alive sockets; resolves with requests/second. */
async function round(server, total, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), authorization: `Bearer ${API_KEY}` };
  const once = () =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path: server.path, method: 'POST', headers, agent }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`${server.path}: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(BODY);
    });
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await once();
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  agent.destroy();
  return total / seconds;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const total = Number(opts.requests);
  const concurrency = Number(opts.concurrency);
  const rounds = Number(opts.rounds);
  const servers = { tokens: await startServer('tokens'), plain: await startServer('plain') };
  try {
    console.log(`node ${process.version}, ${os.cpus().length} CPUs; ${total} requests x ${rounds} rounds, concurrency ${concurrency}`);
    for (const s of Object.values(servers)) await round(s, Math.min(total, 1000), concurrency); // warm-up (JIT)
    const results = { tokens: [], plain: [] };
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so neither always runs on a warmer or cooler machine.
      for (const kind of r % 2 === 0 ? ['tokens', 'plain'] : ['plain', 'tokens']) {
        const rps = await round(servers[kind], total, concurrency);
        results[kind].push(rps);
        console.log(`round ${r + 1} ${kind.padEnd(6)} ${rps.toFixed(0)} req/s`);
      }
    }
    const tokens = median(results.tokens);
    const plain = median(results.plain);
    console.log(`median POST /tokens: ${tokens.toFixed(0)} req/s`);
    console.log(`median plain no-op POST: ${plain.toFixed(0)} req/s`);
    console.log(`ratio tokens/plain: ${(tokens / plain).toFixed(2)}`);
  } finally {
    for (const s of Object.values(servers)) s.child.disconnect();
  }
}

if (opts.serve !== undefined) await serve(opts.serve);
else await main();
