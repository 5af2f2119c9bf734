import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import jwt from 'jsonwebtoken';

import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { REPO_ROOT, tempDir, waitFor, within } from './helpers.js';

const ISSUER = 'https://app.example/#frag';

/** process.env without this project's settings, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RTCSTATS_'))), ...extra };
}

function cli(cwd: string, script: string, args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/src/cli', script), ...args], { cwd, env: env(extra), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('.env in the working directory: one loader for the server and the CLIs', () => {
  it('the keys CLI, the token CLI and the server read the same file the same way; set variables win', async () => {
    const cwd = tempDir('rtcstats-dotenv-');
    try {
      fs.writeFileSync(
        path.join(cwd, '.env'),
        `# settings\nRTCSTATS_DATA_DIR=./from-dotenv\nexport RTCSTATS_JWT_ISSUER="${ISSUER}" # quoted, with a hash\nRTCSTATS_PORT=0\nRTCSTATS_HOST=127.0.0.1\n`,
      );
      cli(cwd, 'keys.cli.js', ['init']);
      const file = path.join(cwd, 'from-dotenv', 'keyring.json');
      const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyringFileSpec;
      cli(cwd, 'keys.cli.js', ['init'], { RTCSTATS_DATA_DIR: path.join(cwd, 'from-env') });
      assert.ok(fs.existsSync(path.join(cwd, 'from-env', 'keyring.json')), 'a variable set in the environment wins over .env');

      const token = cli(cwd, 'token.cli.js', ['--user', 'u']).trim();
      const payload = jwt.verify(token, spec.keys[0].secret, { algorithms: ['HS256'] }) as jwt.JwtPayload;
      assert.equal(payload.iss, ISSUER);
      assert.equal(jwt.decode(token, { complete: true })!.header.kid, spec.keys[0].kid);

      const server = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/src/main.js')], { cwd, env: env() });
      let out = '';
      server.stdout.on('data', (d) => (out += d));
      server.stderr.on('data', (d) => (out += d));
      const exited = new Promise((resolve) => server.once('exit', resolve));
      try {
        await waitFor(() => (out.includes('Clients connect to') ? true : undefined), 'the server to start');
        assert.ok(out.includes(`Signing keys are in ${file}`), out);
      } finally {
        server.kill('SIGTERM');
        await within(exited, 'the server to stop');
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});
