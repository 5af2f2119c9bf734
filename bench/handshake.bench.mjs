// WebSocket handshakes and rejections per second, and token verifications per second, through the
// collector's token path (JwtService). Not a test: run with `npm run bench:handshake` (builds
// first). With --compare DIR (another checkout, built), its server runs in alternating rounds
// against this one, so a change of the verification path can be judged on the same machine state.
// Options: --connections N --concurrency C --rounds R --compare DIR.
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { WebSocket } from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopq';
const PREVIOUS = 'bench-previous-0123456789-abcdefghijklm';
const WRONG = 'bench-wrong-secret-0123456789-abcdefghij';

const { values: opts } = parseArgs({
  options: {
    serve: { type: 'string' },
    connections: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '5' },
    compare: { type: 'string' },
  },
});

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An HS256 token without kid (the collector tries current, then next and previous keys). */
function token(secret, payload = { rtcStats: { user: 'bench' }, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600 }) {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Child process: boots the app of `root` (its dist/) on an ephemeral port, logging errors only. */
async function serve(root) {
  await import('reflect-metadata');
  const { NestFactory } = await import('@nestjs/core');
  const { AppModule } = await import(path.join(root, 'dist/src/app.module.js'));
  const { setupApp } = await import(path.join(root, 'dist/src/app.setup.js'));
  const app = await NestFactory.create(AppModule, { logger: ['error'] });
  setupApp(app);
  await app.listen(0, '127.0.0.1');
  process.send({ port: app.getHttpServer().address().port });
  process.on('disconnect', () => void app.close().then(() => process.exit(0)));
}

function startServer(root) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-bench-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RTCSTATS_')));
  const child = fork(fileURLToPath(import.meta.url), ['--serve', root], {
    cwd: dataDir, // no stray .env
    env: { ...env, RTCSTATS_DATA_DIR: dataDir, RTCSTATS_MAX_CONNECTIONS_PER_IP: '1000000', RTCSTATS_JWT_SECRET: SECRET, RTCSTATS_JWT_PREVIOUS_SECRETS: PREVIOUS },
  });
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve({ child, port, dataDir, root }));
    child.once('exit', (code) => reject(new Error(`server of ${root} exited with ${code}`)));
  });
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.disconnect();
  await exited;
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}

/** One connection: accepted ones open and close 1000, rejected ones must be closed 1008. */
function connectOnce(port, query, expect) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/bench?rtcstats-token=${query}`, 'rtcstats#5.0');
    ws.once('open', () => {
      if (expect === 1000) ws.close(1000);
    });
    ws.once('close', (code) => (code === expect ? resolve() : reject(new Error(`closed ${code}, expected ${expect}`))));
    ws.once('error', reject);
  });
}

/** `total` connections, `concurrency` at a time; resolves with connections per second. */
async function round(server, kind, total, concurrency) {
  const query = kind === 'accepted' ? token(SECRET) : token(WRONG);
  const expect = kind === 'accepted' ? 1000 : 1008;
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      await connectOnce(server.port, query, expect);
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A build's TokenVerifier with the bench keyring (current and previous key). */
async function verifierOf(root) {
  const { TokenVerifier } = await import(path.join(root, 'dist/src/auth/token-verifier.js'));
  const { keyringFromSecrets } = await import(path.join(root, 'dist/src/keyring/keyring.js'));
  // A build from before PerKeyJwt ignores the jwt option (it called jsonwebtoken itself).
  const perKeyJwt = fs.existsSync(path.join(root, 'dist/src/auth/per-key-jwt.js'))
    ? new (await import(path.join(root, 'dist/src/auth/per-key-jwt.js'))).PerKeyJwt()
    : undefined;
  const keyring = keyringFromSecrets(SECRET, [PREVIOUS], undefined);
  return new TokenVerifier(() => keyring, { jwt: perKeyJwt, clockToleranceSec: 30, maxLifetimeSec: 86400 });
}

/** In-process verifications per second of each build, valid and wrong-signature tokens, builds alternating. */
async function verifyRates(roots) {
  const verifiers = {};
  for (const [name, root] of Object.entries(roots)) verifiers[name] = await verifierOf(root);
  const tokens = { valid: token(SECRET), 'wrong signature': token(WRONG) };
  const samples = {};
  for (let r = 0; r < 9; r++) {
    const order = r % 2 === 0 ? Object.keys(verifiers) : Object.keys(verifiers).reverse();
    for (const name of order) {
      for (const [kind, t] of Object.entries(tokens)) {
        const n = 20000;
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) verifiers[name].verify(t);
        if (r > 0) (samples[`${name}, ${kind}`] ??= []).push(n / (Number(process.hrtime.bigint() - t0) / 1e9)); // round 0 warms up
      }
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)]));
}

async function main() {
  const total = Number(opts.connections);
  const concurrency = Number(opts.concurrency);
  const rounds = Number(opts.rounds);
  const roots = { this: path.resolve(HERE, '..'), ...(opts.compare && { compare: path.resolve(opts.compare) }) };
  console.log(`node ${process.version}, ${os.cpus().length} CPUs; ${total} connections x ${rounds} rounds, concurrency ${concurrency}`);
  for (const [key, rate] of Object.entries(await verifyRates(roots))) console.log(`in-process TokenVerifier.verify (${key}): ${rate.toFixed(0)}/s`);
  const servers = {};
  for (const [name, root] of Object.entries(roots)) servers[name] = await startServer(root);
  try {
    const results = {};
    for (const name of Object.keys(servers)) {
      for (const kind of ['accepted', 'rejected']) await round(servers[name], kind, Math.min(total, 500), concurrency); // warm-up
    }
    for (let r = 0; r < rounds; r++) {
      // Alternate the order, so no build always runs on a warmer or cooler machine.
      const order = r % 2 === 0 ? Object.keys(servers) : Object.keys(servers).reverse();
      for (const name of order) {
        for (const kind of ['accepted', 'rejected']) {
          const rate = await round(servers[name], kind, total, concurrency);
          (results[`${name} ${kind}`] ??= []).push(rate);
          console.log(`round ${r + 1} ${name.padEnd(7)} ${kind.padEnd(8)} ${rate.toFixed(0)}/s`);
        }
      }
    }
    for (const [key, rates] of Object.entries(results)) {
      const [name, kind] = key.split(' ');
      console.log(`median ${kind === 'accepted' ? 'handshakes' : 'rejections'} (${name}: ${roots[name]}): ${median(rates).toFixed(0)}/s`);
    }
  } finally {
    for (const s of Object.values(servers)) await stopServer(s);
  }
}

if (opts.serve !== undefined) await serve(opts.serve);
else await main();
