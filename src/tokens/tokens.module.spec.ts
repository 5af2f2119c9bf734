import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

describe('TokensModule', () => {
  it('leaves ioredis unloaded unless Redis is configured (it costs every process its heap)', () => {
    // A child process imports the whole app module graph and lists every module it loaded.
    const app = new URL('../app.module.js', import.meta.url).href;
    const hook = `data:text/javascript,${encodeURIComponent(
      'import fs from "node:fs"; export async function load(url, ctx, next) { fs.writeSync(1, url + "\\n"); return next(url, ctx); }',
    )}`;
    const script = `import { register } from 'node:module'; register(${JSON.stringify(hook)}); await import(${JSON.stringify(app)});`;
    const loaded = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
    assert.match(loaded, /\/dist\/src\/tokens\/tokens\.module\.js/, 'the hook saw the app graph');
    assert.doesNotMatch(loaded, /node_modules\/(ioredis|@nest-lab\/throttler-storage-redis)\//);
  });
});
