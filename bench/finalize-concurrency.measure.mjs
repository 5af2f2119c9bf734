// What bounded finalization buys: N sessions close at once; each dump must be gzipped, stored and
// recorded. Compares RTCSTATS_FINALIZE_CONCURRENCY values by time to the last record, peak RSS
// and the worst event-loop stall. Run after `npm run build`:
//   node bench/finalize-concurrency.measure.mjs [sessions=100] [framesPerSession=2000] [concurrency ...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { WebSocket } from 'ws';

const { Test } = await import('@nestjs/testing');
const { AppModule } = await import('../dist/src/app.module.js');
const { setupApp } = await import('../dist/src/app.setup.js');
const { parseConfig } = await import('../dist/src/config/app-config.js');
const { APP_CONFIG } = await import('../dist/src/config/app-config.token.js');
const { METADATA_STORE } = await import('../dist/src/metadata/metadata.store.js');

const [sessions = 100, perSession = 2000, ...levels] = process.argv.slice(2).map(Number);
const concurrencies = levels.length > 0 ? levels : [os.availableParallelism(), 256];
const frame = (i) => `["g","PC_0",{"0":{"80":${i},"81":${i * 7},"t":${1700000000000 + i}}, "pad":"${'abcdefgh'.repeat(40)}"},1000]`;

class Quiet { log() {} warn() {} error() {} debug() {} verbose() {} }

async function run(concurrency) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'finalize-bench-'));
  const values = { RTCSTATS_AUTH: 'disabled', RTCSTATS_DATA_DIR: dataDir, RTCSTATS_FINALIZE_CONCURRENCY: String(concurrency), RTCSTATS_MAX_CONNECTIONS_PER_IP: '1000000' };
  const config = parseConfig((n) => values[n]);
  const ref = await Test.createTestingModule({ imports: [AppModule] }).overrideProvider(APP_CONFIG).useValue(config).compile();
  const app = ref.createNestApplication({ logger: new Quiet() });
  setupApp(app);
  await app.listen(0, '127.0.0.1');
  const port = app.getHttpServer().address().port;
  const metadata = app.get(METADATA_STORE);
  const clients = await Promise.all(
    Array.from({ length: sessions }, () => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/bench`, 'rtcstats#5.0');
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    })),
  );
  for (const ws of clients) for (let i = 0; i < perSession; i++) ws.send(frame(i));
  await new Promise((r) => setTimeout(r, 500));
  // Everything sent is on disk before the measurement starts.
  for (;;) {
    const files = fs.readdirSync(path.join(dataDir, 'work'));
    const lines = files.reduce((n, f) => n + fs.readFileSync(path.join(dataDir, 'work', f), 'utf8').split('\n').length - 3, 0);
    if (files.length === sessions && lines >= sessions * perSession) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 5);
  delay.enable();
  const started = performance.now();
  for (const ws of clients) ws.close(1000);
  while ((await metadata.find({}, sessions + 1)).length < sessions) await new Promise((r) => setTimeout(r, 5));
  const elapsed = performance.now() - started;
  delay.disable();
  clearInterval(sampler);
  await app.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { concurrency, elapsedMs: Math.round(elapsed), maxStallMs: +(delay.max / 1e6).toFixed(1), p99StallMs: +(delay.percentile(99) / 1e6).toFixed(1), peakRssMiB: Math.round(peakRss / 2 ** 20) };
}

for (const c of concurrencies) console.log(JSON.stringify(await run(c)));
