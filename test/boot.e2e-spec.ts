import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { REPO_ROOT, startApp, tempDir, within } from './helpers.js';

const MAIN = path.join(REPO_ROOT, 'dist/src/main.js');

/** Runs the real server entry point; resolves with its exit code and output once it exits. */
function boot(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const cwd = tempDir('rtcstats-boot-');
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? '', RTCSTATS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return within(
    new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
      child.on('exit', (code) => resolve({ code, stdout, stderr })),
    ),
    'the server to exit',
  ).finally(() => child.kill('SIGKILL'));
}

describe('boot fails fast with a message naming the problem', () => {
  it('a 10-byte secret', async () => {
    const r = await boot({ RTCSTATS_JWT_SECRET: '0123456789' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Invalid configuration: RTCSTATS_JWT_SECRET is 10 bytes, at least 32 are required/);
    assert.ok(!r.stderr.includes('0123456789'), 'the secret itself is not printed');
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  });

  it('a non-numeric port', async () => {
    const r = await boot({ RTCSTATS_PORT: 'http' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Invalid configuration: RTCSTATS_PORT must be a whole number between 0 and 65535 \(got "http"\)/);
  });

  it('an unwritable data directory', async () => {
    const file = path.join(tempDir(), 'not-a-dir');
    fs.writeFileSync(file, '');
    const r = await boot({ RTCSTATS_DATA_DIR: path.join(file, 'data') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Invalid configuration: RTCSTATS_DATA_DIR: data directory .*not-a-dir\/data is not writable \(ENOTDIR\)/);
  });

  it('an invalid keyring file', async () => {
    const file = path.join(tempDir(), 'keyring.json');
    fs.writeFileSync(file, '{"keys": [{"kid": "a", "secret": "short", "state": "current"}]}');
    const r = await boot({ RTCSTATS_KEYRING_FILE: file });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Invalid configuration: keyring file .*keyring.json: key "a": secret is 5 bytes/);
  });

  it('a keyring file with a syntax error in a secret: line and column only, no fragment of the secret', async () => {
    const secret = 'Zq8W-B0oT-s3cr3t-Jx7vKp2mYt9LbR4nHd6FgC1e';
    const dir = tempDir();
    const file = path.join(dir, 'keyring.json');
    for (const [content, where] of [
      [`{"keys": [{"kid": "a", "secret": ${secret}, "state": "current"}]}`, 'line 1, column 34'],
      [`{\n "keys": [{"kid": "a", "secret": "${secret}\n", "state": "current"}]}`, 'line 2, column 76'],
    ]) {
      fs.writeFileSync(file, content);
      const r = await boot({ RTCSTATS_KEYRING_FILE: file });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`Invalid configuration: keyring file .*keyring.json: not valid JSON \\(syntax error at ${where}\\)\n$`));
      for (let i = 0; i + 6 <= secret.length; i++) {
        assert.ok(!(r.stderr + r.stdout).includes(secret.slice(i, i + 6)), `output quotes the secret: ${r.stderr}`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a port already in use', async () => {
    const other = await startApp();
    try {
      const r = await boot({ RTCSTATS_PORT: String(other.port), RTCSTATS_HOST: '127.0.0.1' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`Cannot listen on 127.0.0.1 port ${other.port}: EADDRINUSE`));
    } finally {
      await other.close();
    }
  });
});
