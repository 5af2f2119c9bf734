// One run of one scenario against one started server. Every scenario measures the server from
// the outside (/proc), waits until every session it opened is durable (stored and recorded), and
// reads the stored dumps back to count lost frames.
import { WebSocket } from 'ws';

import { largeFrames, parseMarker, realFrames } from './frames.mjs';
import { badToken, closeAndWait, goodToken, open, pool, sendFrames, withToken } from './load.mjs';
import { cpuSeconds, peakRssKiB, rssKiB } from './proc.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now() / 1000;

const payloads = { real: realFrames, large: largeFrames };
const cache = {};
const framesOf = (kind) => (cache[kind] ??= payloads[kind]());

/** Parses `real-50x2000`, `large-20x1000`, `idle-2000`, `oneframe-2000`, `badtoken-2000`. */
export function parseScenario(name) {
  let m = /^(real|large)-(\d+)x(\d+)$/.exec(name);
  if (m) return { name, kind: 'ingest', payload: m[1], connections: Number(m[2]), frames: Number(m[3]) };
  m = /^(idle|oneframe|badtoken)-(\d+)$/.exec(name);
  if (m) return { name, kind: m[1], connections: Number(m[2]) };
  throw new Error(`unknown scenario "${name}" (real-CxF, large-CxF, idle-N, oneframe-N, badtoken-N)`);
}

/** Polls until the server reports `expected` durable sessions; returns the time it happened. */
async function durable(server, expected, timeoutS) {
  const deadline = now() + timeoutS;
  for (;;) {
    const n = server.durableCount();
    if (n >= expected) return { at: now(), count: n };
    if (now() > deadline) throw new Error(`only ${n} of ${expected} sessions durable after ${timeoutS} s`);
    await sleep(20);
  }
}

/** Reads every stored dump back and compares its frame lines with what each connection sent. */
function verify(server, run, sent) {
  const found = new Map();
  let unmatched = 0;
  for (const lines of server.sessions()) {
    const conn = lines.length > 0 ? parseMarker(lines[0], run) : undefined;
    if (conn === undefined) unmatched++;
    else found.set(conn, (found.get(conn) ?? 0) + lines.length);
  }
  let lost = 0;
  let extra = 0;
  let missing = 0;
  sent.forEach((n, conn) => {
    const f = found.get(conn) ?? 0;
    if (!found.has(conn) && n > 0) missing++;
    lost += Math.max(0, n - f);
    extra += Math.max(0, f - n);
  });
  return { lostFrames: lost, extraFrames: extra, missingDumps: missing, unmatchedDumps: unmatched };
}

async function ingest(s, server, ctx) {
  const frames = framesOf(s.payload);
  const urls = Array.from({ length: s.connections }, (_, i) => withToken(server.url, goodToken(ctx.secret, ctx.run, i)));
  const sockets = new Array(s.connections);
  await pool(s.connections, 50, async (i) => (sockets[i] = await open(urls[i])));
  const sent = new Array(s.connections).fill(0);
  let bytes = 0;
  const closeCodes = {};
  const gen0 = process.cpuUsage();
  const cpu0 = cpuSeconds(server.pid);
  const t0 = now();
  await Promise.all(
    sockets.map(async (ws, i) => {
      const r = await sendFrames(ws, { run: ctx.run, conn: i, frames, count: s.frames, offset: (i * 37) % frames.length });
      sent[i] = r.sent;
      bytes += r.bytes;
      const code = await closeAndWait(ws);
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    }),
  );
  const t1 = now();
  const cpu1 = cpuSeconds(server.pid);
  const gen = process.cpuUsage(gen0);
  const done = await durable(server, s.connections, ctx.timeoutS);
  const cpu2 = cpuSeconds(server.pid);
  const total = sent.reduce((a, b) => a + b, 0);
  return {
    metrics: {
      cpuUsPerFrameSend: (1e6 * (cpu1 - cpu0)) / total,
      cpuUsPerFrameTotal: (1e6 * (cpu2 - cpu0)) / total,
      framesPerSecSend: total / (t1 - t0),
      durableS: done.at - t0,
      peakRssMiB: peakRssKiB(server.pid) / 1024,
      // Near 100 %: the generator, not the server, limited the send phase (CPU per frame stays valid).
      generatorCpuPct: (100 * (gen.user + gen.system)) / 1e6 / (t1 - t0),
    },
    info: { frames: total, bytes, closeCodes },
    sent,
  };
}

async function idle(s, server, ctx) {
  const urls = Array.from({ length: s.connections }, (_, i) => withToken(server.url, goodToken(ctx.secret, ctx.run, i)));
  const sockets = new Array(s.connections);
  await sleep(500); // let the freshly started server settle before taking its resting RSS
  const rss0 = rssKiB(server.pid);
  const cpu0 = cpuSeconds(server.pid);
  const t0 = now();
  await pool(s.connections, 64, async (i) => (sockets[i] = await open(urls[i])));
  const t1 = now();
  const cpu1 = cpuSeconds(server.pid);
  // Like a real client, each sends its first frame and then stays quiet.
  for (let i = 0; i < sockets.length; i++) await sendFrames(sockets[i], { run: ctx.run, conn: i, frames: [], count: 1, offset: 0 });
  const samples = [];
  const holdEnd = now() + ctx.holdMs / 1000;
  while (now() < holdEnd) {
    await sleep(100);
    if (now() > holdEnd - ctx.holdMs / 2000) samples.push(rssKiB(server.pid));
  }
  samples.sort((a, b) => a - b);
  const dropped = sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
  const cpu2 = cpuSeconds(server.pid);
  const t2 = now();
  const codes = await Promise.all(sockets.map((ws) => closeAndWait(ws)));
  const done = await durable(server, s.connections, ctx.timeoutS);
  const cpu3 = cpuSeconds(server.pid);
  return {
    metrics: {
      handshakesPerSec: s.connections / (t1 - t0),
      cpuUsPerHandshake: (1e6 * (cpu1 - cpu0)) / s.connections,
      rssKiBPerIdleConnection: (samples[samples.length >> 1] - rss0) / s.connections,
      cpuUsPerClose: (1e6 * (cpu3 - cpu2)) / s.connections,
      closeDurableS: done.at - t2,
      peakRssMiB: peakRssKiB(server.pid) / 1024,
    },
    info: { droppedWhileIdle: dropped, closeCodesNot1000: codes.filter((c) => c !== 1000).length },
    sent: new Array(s.connections).fill(1),
  };
}

async function oneframe(s, server, ctx) {
  const urls = Array.from({ length: s.connections }, (_, i) => withToken(server.url, goodToken(ctx.secret, ctx.run, i)));
  let notClean = 0;
  const cpu0 = cpuSeconds(server.pid);
  const t0 = now();
  await pool(s.connections, 64, async (i) => {
    const ws = await open(urls[i]);
    await sendFrames(ws, { run: ctx.run, conn: i, frames: [], count: 1, offset: 0 });
    if ((await closeAndWait(ws)) !== 1000) notClean++;
  });
  const done = await durable(server, s.connections, ctx.timeoutS);
  const cpu1 = cpuSeconds(server.pid);
  return {
    metrics: {
      sessionsPerSecDurable: s.connections / (done.at - t0),
      cpuUsPerSession: (1e6 * (cpu1 - cpu0)) / s.connections,
      durableS: done.at - t0,
      peakRssMiB: peakRssKiB(server.pid) / 1024,
    },
    info: { closeCodesNot1000: notClean },
    sent: new Array(s.connections).fill(1),
  };
}

async function badtoken(s, server, ctx) {
  const urls = Array.from({ length: s.connections }, (_, i) => withToken(server.url, badToken(ctx.secret, i)));
  const outcomes = {};
  const count = (k) => (outcomes[k] = (outcomes[k] ?? 0) + 1);
  const cpu0 = cpuSeconds(server.pid);
  const t0 = now();
  await pool(s.connections, 64, async (i) => {
    let ws;
    try {
      ws = await open(urls[i]);
    } catch (err) {
      return count(err.message.startsWith('HTTP ') ? err.message : 'error');
    }
    const code = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve('not rejected'), 5000);
      ws.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
      if (ws.readyState === WebSocket.CLOSED) resolve('closed');
    });
    if (code === 'not rejected') ws.terminate();
    count(String(code));
  });
  const t1 = now();
  const cpu1 = cpuSeconds(server.pid);
  const rejected = (outcomes['1008'] ?? 0) + Object.entries(outcomes).filter(([k]) => k.startsWith('HTTP 4')).reduce((a, [, n]) => a + n, 0);
  return {
    metrics: {
      rejectionsPerSec: rejected / (t1 - t0),
      cpuUsPerRejection: (1e6 * (cpu1 - cpu0)) / s.connections,
      peakRssMiB: peakRssKiB(server.pid) / 1024,
    },
    info: { outcomes, notRejected: s.connections - rejected, storedFromRejected: server.durableCount() },
    sent: [],
  };
}

const RUNNERS = { ingest, idle, oneframe, badtoken };

/** Runs scenario `s` against a started server; returns metrics, info and the verification. */
export async function runScenario(s, server, ctx) {
  const r = await RUNNERS[s.kind](s, server, ctx);
  return { metrics: r.metrics, info: r.info, verify: verify(server, ctx.run, r.sent), frames: r.sent.reduce((a, b) => a + b, 0) };
}
