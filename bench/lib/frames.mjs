// The payloads the bench replays, read from files in this repo.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function lines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

/**
 * Real rtcstats.js traffic: the 285 frames a Chrome client sent during a 90 s loopback call
 * (test/fixtures/rtcstats), replayed byte for byte.
 */
export function realFrames() {
  return lines(path.join(REPO_ROOT, 'test/fixtures/rtcstats/chrome-loopback-90s.frames.jsonl')).map((l) => Buffer.from(l));
}

/**
 * Large frames: the full (not delta-compressed) getStats reports of a Jitsi Chrome dump
 * (bench/data, ~6 KB each), turned into rtcstats frames `["getStats", pcId, report, deltaMs]`.
 */
export function largeFrames() {
  const out = [];
  let last;
  for (const line of lines(path.join(REPO_ROOT, 'bench/data/google-standard-stats-p2p.jsonl'))) {
    const [method, pc, value, time] = JSON.parse(line);
    if (method !== 'getstats') continue;
    out.push(Buffer.from(JSON.stringify(['getStats', pc, value, last === undefined ? 0 : time - last])));
    last = time;
  }
  return out;
}

/** The first frame of connection `conn` in run `run`: it lets the verifier match a stored dump to its connection. */
export function markerFrame(run, conn) {
  return Buffer.from(JSON.stringify(['bench', null, `${run}:${conn}`, 0]));
}

/** The connection a stored frame line marks, or undefined. */
export function parseMarker(line, run) {
  const prefix = `["bench",null,"${run}:`;
  if (!line.startsWith(prefix)) return undefined;
  return Number(line.slice(prefix.length, line.indexOf('"', prefix.length)));
}
