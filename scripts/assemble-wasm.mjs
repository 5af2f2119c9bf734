#!/usr/bin/env node
// Build step after tsc: assembles every src/**/*.wat into dist/src/**/*.wasm, next to the
// compiled JS that loads it (the .wasm is generated, never committed). wabt is the toolchain
// because there is no clang/wasm target on the build machines.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import wabtModule from 'wabt';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const wabt = await wabtModule();
for (const entry of fs.readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.wat')) continue;
  const source = path.join(entry.parentPath, entry.name);
  const module = wabt.parseWat(source, fs.readFileSync(source, 'utf8'), { simd: true });
  try {
    module.validate();
    const target = path.join(root, 'dist', path.relative(root, source)).replace(/\.wat$/, '.wasm');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}
