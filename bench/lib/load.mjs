// The load generator: real `ws` clients, as many as a scenario asks for, each authenticated with
// its own JWT in `?rtcstats-token=` and offering `rtcstats#5.0`, like rtcstats.js.
import crypto from 'node:crypto';

import jwt from 'jsonwebtoken';
import { WebSocket } from 'ws';

import { markerFrame } from './frames.mjs';

const SEND = { binary: false, compress: false, fin: true };
// An all-zero mask is valid (RFC 6455 5.3) and spares the generator's CPU; the server unmasks as usual.
const zeroMask = (mask) => mask.fill(0);

export function goodToken(secret, run, i) {
  return jwt.sign({ rtcStats: { user: `bench-${i}`, session: `bench-${run}`, conference: 'bench' } }, secret, {
    algorithm: 'HS256',
    expiresIn: '1h',
  });
}

/** Tokens every verifier must refuse, cycled by the bad-token scenario. */
export function badToken(secret, i) {
  const claims = { rtcStats: { user: `bad-${i}` } };
  switch (i % 5) {
    case 0:
      return jwt.sign(claims, `${secret}-wrong`, { algorithm: 'HS256', expiresIn: '1h' }); // wrong secret
    case 1:
      return jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 3600 }, secret, { algorithm: 'HS256' }); // expired
    case 2:
      return 'not-a-jwt'; // malformed
    case 3:
      return jwt.sign(claims, null, { algorithm: 'none', expiresIn: '1h' }); // alg none
    default:
      return undefined; // no token at all
  }
}

export function withToken(url, token) {
  return token === undefined ? url : `${url}?rtcstats-token=${encodeURIComponent(token)}`;
}

/** Runs fn(i) for i in [0, n) with at most `limit` at a time. */
export async function pool(n, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, limit) }, worker));
}

export const runId = () => crypto.randomBytes(4).toString('hex');

/** Opens one client; resolves with it once open (rejects on error or an HTTP refusal). */
export function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'rtcstats#5.0', { perMessageDeflate: false, generateMask: zeroMask, handshakeTimeout: 30_000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** Closes with 1000 and resolves with the code of the server's close frame. */
export function closeAndWait(ws, ms = 60_000) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(null);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('timeout');
    }, ms);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.close(1000);
  });
}

/**
 * Sends the marker and then `count - 1` frames cycled from `frames` (starting at `offset`) as
 * fast as the server absorbs them: while more than highWater bytes wait in user space, the
 * client waits until the socket has drained to lowWater. Resolves when every byte is in the kernel.
 */
export async function sendFrames(ws, { run, conn, frames, count, offset, highWater = 256 * 1024, lowWater = 64 * 1024 }) {
  let bytes = 0;
  let wake = null;
  const onSent = () => {
    if (wake !== null && (ws.bufferedAmount <= lowWater || ws.readyState !== WebSocket.OPEN)) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const drained = (level) =>
    ws.bufferedAmount <= level || ws.readyState !== WebSocket.OPEN
      ? Promise.resolve()
      : new Promise((resolve) => {
          lowWater = level;
          wake = resolve;
        });
  ws.once('close', onSent);
  let sent = 0;
  for (; sent < count && ws.readyState === WebSocket.OPEN; sent++) {
    const frame = sent === 0 ? markerFrame(run, conn) : frames[(offset + sent - 1) % frames.length];
    ws.send(frame, SEND, onSent);
    bytes += frame.length;
    if (ws.bufferedAmount > highWater) await drained(lowWater);
    else if (sent % 16 === 15) await new Promise(setImmediate);
  }
  await drained(0);
  return { sent, bytes };
}
