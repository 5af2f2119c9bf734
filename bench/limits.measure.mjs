// Per-frame cost of the limits (FrameLimiter: frame and byte token buckets, dump size) measured
// in process: ns per frame, against an empty loop doing the same Date.now() read the session
// already did before the limits existed. Run: npm run build && node bench/limits.measure.mjs
import { FrameLimiter } from '../dist/src/limits/limits.js';

const N = 20_000_000;
const options = { maxFramesPerSecond: 100, maxBytesPerSecond: 1024 * 1024, maxDumpBytes: 2 ** 50, maxPayload: 4 * 1024 * 1024 };

function baseline() {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += Date.now() & 1;
  return [Number(process.hrtime.bigint() - t0) / N, sink];
}

function limited() {
  const limiter = new FrameLimiter(options, Date.now());
  let breaches = 0;
  const t0 = process.hrtime.bigint();
  // 300-byte frames, as fast as the loop goes: the buckets refill from the real clock.
  for (let i = 0; i < N; i++) if (limiter.frame(300, Date.now()) !== undefined) breaches++;
  return [Number(process.hrtime.bigint() - t0) / N, breaches];
}

const rounds = [];
for (let r = 0; r < 5; r++) {
  const [b] = baseline();
  const [l] = limited();
  rounds.push(l - b);
  console.log(`round ${r + 1}: Date.now() loop ${b.toFixed(1)} ns/frame, with FrameLimiter ${l.toFixed(1)} ns/frame, added ${(l - b).toFixed(1)} ns`);
}
rounds.sort((a, b) => a - b);
console.log(`median added cost of the limits: ${rounds[2].toFixed(1)} ns per frame`);
