// Measures what a metadata insert costs the event loop: unlocked, and while another connection
// holds SQLite's write lock (the busy_timeout decides how long the main thread blocks).
// Run after `npm run build`: node bench/sqlite-lock.measure.mjs
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path';
import Database from 'better-sqlite3';
const { openSqliteMetadataStore } = await import('../dist/src/metadata/sqlite.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'measure-'));
const file = path.join(dir, 'm.sqlite');
const store = await openSqliteMetadataStore(file);
const rec = (i) => ({ id: `id-${i}`, startTime: 1, endTime: 2, closeCode: 1000, frameCount: 1, bytes: 1, location: '/x', user: 'u', session: 's', conference: 'c', kid: 'k', origin: null, userAgent: null, clientProtocol: null, path: '/', remoteAddress: null });
const times = [];
for (let i = 0; i < 2000; i++) { const t = process.hrtime.bigint(); await store.insert(rec(i)); times.push(Number(process.hrtime.bigint() - t) / 1e6); }
times.sort((a, b) => a - b);
console.log('unlocked insert ms p50', times[1000].toFixed(3), 'p99', times[1980].toFixed(3), 'max', times[1999].toFixed(3));
const other = new Database(file); other.pragma('busy_timeout = 0'); other.exec('BEGIN IMMEDIATE');
const h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
let fails = 0; const t0 = Date.now();
for (let i = 0; i < 200; i++) { try { await store.insert(rec(10000 + i)); } catch (e) { fails++; } await new Promise(r => setTimeout(r, 5)); }
h.disable();
console.log('locked: 200 inserts, failed', fails, 'elapsed', Date.now() - t0, 'ms, event loop max delay', (h.max / 1e6).toFixed(1), 'ms');
other.exec('COMMIT'); other.close(); await store.close(); fs.rmSync(dir, { recursive: true });
