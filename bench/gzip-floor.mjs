#!/usr/bin/env node
// The compression floor: CPU that gzip at a given level needs for the bytes of the given stored
// dumps (each .gz is decompressed first, untimed). Run pinned to the server's CPU by bench/run.mjs.
//   node bench/gzip-floor.mjs --level 1 FILE.jsonl.gz...
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';

const { values, positionals } = parseArgs({ options: { level: { type: 'string', default: '1' } }, allowPositionals: true });
const level = Number(values.level);
const inputs = positionals.map((f) => zlib.gunzipSync(fs.readFileSync(f)));
const start = process.cpuUsage();
let out = 0;
for (const buf of inputs) out += zlib.gzipSync(buf, { level }).length;
const used = process.cpuUsage(start);
const bytes = inputs.reduce((a, b) => a + b.length, 0);
console.log(JSON.stringify({ cpuSeconds: (used.user + used.system) / 1e6, bytes, compressedBytes: out, files: inputs.length, level }));
