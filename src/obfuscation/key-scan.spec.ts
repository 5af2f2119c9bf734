import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { FIXTURES, REPO_ROOT } from '../../test/helpers.js';
import { findStatsKey, MAX_SCAN_BYTES, NO_KEY, NO_KEY_BACKSLASH, NOT_SCANNED } from './key-scan.js';

/** What the scanner must reproduce: frame-obfuscator.ts's STATS_KEYS_PLAIN. */
const STATS_KEYS_PLAIN = /(?:"1(?:34|41)|"ip|ddress)"/;
const NEEDLES = ['"134"', '"141"', '"ip"', 'ddress"'];
/** Needles cut short, run on, or missing a byte: none of them is a match on its own. */
const NEAR_MISSES = ['"13"', '"1344', '"14"', '"134', '"141', 'ddress', 'dress"', '"ip', 'ip"', '"i"', '"p"', '"1"', '"', 'd', 'ddres"', '"13 4"', '"1 34"'];

function expected(bytes: Uint8Array): number {
  return STATS_KEYS_PLAIN.exec(Buffer.from(bytes).toString('latin1'))?.index ?? (bytes.includes(0x5c) ? NO_KEY_BACKSLASH : NO_KEY);
}

function check(bytes: Uint8Array, what = Buffer.from(bytes).toString('latin1').slice(0, 200)): void {
  assert.equal(findStatsKey(bytes), expected(bytes), what);
}

/** Deterministic filler over the needles' bytes (so near misses abound) and a few others. */
function filler(length: number, seed: number): Buffer {
  const alphabet = Buffer.from('"134ipdres, :{}0x');
  const out = Buffer.alloc(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = alphabet[(x >>> 16) % alphabet.length];
  }
  return out;
}

function fixtureLines(file: string): Buffer[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => Buffer.from(l));
}

describe('findStatsKey (WebAssembly SIMD scan) against STATS_KEYS_PLAIN and a backslash search', () => {
  it('finds the same first key on every fixture and bench frame', () => {
    const files = [
      ...fs.readdirSync(path.join(FIXTURES, 'rtcstats')).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(FIXTURES, 'rtcstats', f)),
      ...fs.readdirSync(path.join(FIXTURES, 'jitsi')).map((f) => path.join(FIXTURES, 'jitsi', f)),
      path.join(REPO_ROOT, 'bench/data/google-standard-stats-p2p.jsonl'),
    ];
    let hits = 0;
    let frames = 0;
    for (const file of files) {
      for (const frame of fixtureLines(file)) {
        check(frame, `${file}: ${frame.toString('latin1', 0, 100)}`);
        frames++;
        if (findStatsKey(frame) >= 0) hits++;
      }
    }
    // Both outcomes are exercised, not only one.
    assert.ok(hits > 10 && frames - hits > 10, `${hits} of ${frames}`);
  });

  it('finds a needle planted at every offset modulo 32, up to the last byte of the buffer', () => {
    for (const needle of NEEDLES) {
      for (const length of [needle.length, 15, 16, 17, 31, 32, 33, 47, 64, 100]) {
        for (let at = 0; at + needle.length <= length; at++) {
          const bytes = Buffer.alloc(length, 'a');
          bytes.write(needle, at, 'latin1');
          assert.equal(findStatsKey(bytes), at, `${needle} at ${at} of ${length}`);
          const noisy = filler(length, at);
          noisy.write(needle, at, 'latin1');
          check(noisy);
        }
      }
    }
  });

  it('returns the first of several needles, whichever comes first', () => {
    for (let a = 0; a < 40; a++) {
      for (const first of NEEDLES) {
        for (const second of NEEDLES) {
          const bytes = Buffer.alloc(a + 60, 'x');
          bytes.write(second, a + 8, 'latin1');
          bytes.write(first, a, 'latin1');
          assert.equal(findStatsKey(bytes), a, `${first} at ${a}, then ${second}`);
        }
      }
    }
  });

  it('finds nothing in near misses, wherever they are, including cut off at the end', () => {
    for (const miss of NEAR_MISSES) {
      for (let length = miss.length; length <= miss.length + 33; length++) {
        for (const at of [0, length - miss.length, Math.floor((length - miss.length) / 2)]) {
          const bytes = Buffer.alloc(length, 'z');
          bytes.write(miss, at, 'latin1');
          assert.equal(findStatsKey(bytes), NO_KEY, `${miss} at ${at} of ${length}`);
        }
      }
    }
  });

  it('reports a backslash at any offset when there is no match, and a match before or after one', () => {
    for (const length of [1, 15, 16, 17, 33, 100]) {
      for (let at = 0; at < length; at++) {
        const bytes = Buffer.alloc(length, '"');
        bytes[at] = 0x5c;
        assert.equal(findStatsKey(bytes), NO_KEY_BACKSLASH, `at ${at} of ${length}`);
      }
    }
    assert.equal(findStatsKey(Buffer.from('\\ "ip"')), 2);
    assert.equal(findStatsKey(Buffer.from('"ip" \\')), 0);
  });

  it('finds nothing in empty and 1-byte frames', () => {
    assert.equal(findStatsKey(Buffer.alloc(0)), NO_KEY);
    for (let b = 0; b < 256; b++) assert.equal(findStatsKey(Buffer.from([b])), b === 0x5c ? NO_KEY_BACKSLASH : NO_KEY);
  });

  it('never completes a needle with bytes a longer frame left in memory', () => {
    for (const needle of NEEDLES) {
      for (let cut = 1; cut < needle.length; cut++) {
        const long = Buffer.from(`${'a'.repeat(37)}${needle}${'b'.repeat(40)}`, 'latin1');
        assert.equal(findStatsKey(long), 37);
        const short = long.subarray(0, 37 + cut);
        assert.equal(findStatsKey(short), NO_KEY, `${needle} cut after ${cut}`);
      }
    }
  });

  it('handles frames larger than its initial memory, then smaller ones again', () => {
    for (const size of [65_536 - 32, 65_536 - 31, 65_536, 70_000, 300_000, 1_000_003]) {
      const big = filler(size, size);
      for (let i = 0; i < big.length; i++) if (big[i] === 0x22) big[i] = 0x20; // no match before the planted one
      assert.equal(findStatsKey(big), expected(big));
      for (const needle of NEEDLES) {
        const at = size - needle.length;
        big.write(needle, at, 'latin1');
        assert.equal(findStatsKey(big), expected(big), `${needle} at the end of ${size} bytes`);
        assert.equal(findStatsKey(big), at);
      }
      check(Buffer.from('{"x":"ip"}'));
    }
  });

  it('does not scan a frame larger than MAX_SCAN_BYTES, so one client cannot make its memory grow further', () => {
    const big = Buffer.alloc(MAX_SCAN_BYTES + 1, 0x20);
    big.write('"134"', 0, 'latin1');
    assert.equal(findStatsKey(big), NOT_SCANNED);
    assert.equal(findStatsKey(big.subarray(0, MAX_SCAN_BYTES)), 0);
  });

  it('agrees with the regex on random bytes and on random mixes of needles and near misses', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => findStatsKey(bytes) === expected(bytes)), { numRuns: 2000 });
    const piece = fc.oneof(fc.constantFrom(...NEEDLES, ...NEAR_MISSES), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const bytes = Buffer.from(pieces.join(''), 'latin1');
        return findStatsKey(bytes) === expected(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});
