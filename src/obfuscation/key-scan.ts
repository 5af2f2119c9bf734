/**
 * The getStats key search of the obfuscation pre-check over the frame's bytes, without making
 * the frame a JS string (a latin1 copy of every frame costs more in the server than the search:
 * allocation and young-generation GC). key-scan.wat, assembled next to this file at build time.
 */
import fs from 'node:fs';

// The project's lib (ES2022, @types/node 20) types no WebAssembly values: the few used here.
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { memory: { buffer: ArrayBuffer; grow(pages: number): number }; scan(len: number): number } };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
const { memory, scan } = new Instance(new Module(fs.readFileSync(new URL('./key-scan.wasm', import.meta.url)))).exports;
/** The zeroed tail scan() writes and reads after the frame. */
const PADDING = 32;
const PAGE = 65536;
let bytes = new Uint8Array(memory.buffer);

/** findStatsKey: no match and no backslash in the frame. */
export const NO_KEY = -1;
/** findStatsKey: no match, and a backslash somewhere in the frame (so STATS_KEYS_PLAIN does not apply). */
export const NO_KEY_BACKSLASH = -2;
/** findStatsKey: the frame is larger than MAX_SCAN_BYTES and was not scanned. */
export const NOT_SCANNED = -3;
/**
 * Largest frame scanned. The scanner's memory grows to the largest frame it has seen and is never
 * returned, so without a cap one client's frame could hold RTCSTATS_MAX_PAYLOAD (up to 256 MiB)
 * for the life of the process; real getStats frames are a few KB, larger ones take the text path.
 */
export const MAX_SCAN_BYTES = 1024 * 1024;

/**
 * Where STATS_KEYS_PLAIN (`(?:"1(?:34|41)|"ip|ddress)"`) first matches in the frame read as
 * latin1 (the index its exec from 0 returns, as the differential spec checks), else NO_KEY,
 * NO_KEY_BACKSLASH or, above MAX_SCAN_BYTES, NOT_SCANNED. A match is returned without looking at
 * the rest of the frame.
 */
export function findStatsKey(frame: Uint8Array): number {
  if (frame.length > MAX_SCAN_BYTES) return NOT_SCANNED;
  if (frame.length + PADDING > bytes.length) {
    // Grown to the largest frame seen (at most MAX_SCAN_BYTES); a grow detaches the old view.
    memory.grow(Math.ceil((frame.length + PADDING - bytes.length) / PAGE));
    bytes = new Uint8Array(memory.buffer);
  }
  bytes.set(frame);
  return scan(frame.length);
}
