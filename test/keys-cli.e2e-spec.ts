import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { removeTempDir, REPO_ROOT, tempDir } from './helpers.js';

const CLI = path.join(REPO_ROOT, 'dist/src/cli/keys.cli.js');
const MAX_LIFETIME = 3600;
const TOLERANCE = 30;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('keys CLI (compiled, as a child process)', () => {
  let cwd: string;
  let dataDir: string;
  let file: string;

  /** Runs the CLI with only the RTCSTATS_* variables given here (none inherited) and cwd a temp dir (no .env). */
  function keys(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Run {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RTCSTATS_')));
    const result = spawnSync(process.execPath, [CLI, ...args], {
      cwd,
      env: {
        ...inherited,
        RTCSTATS_DATA_DIR: dataDir,
        RTCSTATS_JWT_MAX_LIFETIME: String(MAX_LIFETIME),
        RTCSTATS_JWT_CLOCK_TOLERANCE: String(TOLERANCE),
        ...options.env,
      },
      input: options.input ?? '',
      encoding: 'utf8',
      timeout: 30_000, // killed if it hangs
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  function ok(args: string[], options?: Parameters<typeof keys>[1]): Run {
    const r = keys(args, options);
    assert.equal(r.status, 0, `keys ${args.join(' ')} failed: ${r.stderr}`);
    return r;
  }

  const read = (f = file): KeyringFileSpec => JSON.parse(fs.readFileSync(f, 'utf8'));
  const secretsOf = (spec: KeyringFileSpec) => [...spec.keys.map((k) => k.secret), ...(spec.apiKeys ?? []).map((a) => a.key)];
  const states = (spec: KeyringFileSpec) => spec.keys.map((k) => `${k.kid}:${k.state}`).join(' ');

  function assertNoSecret(r: Run, spec: KeyringFileSpec): void {
    for (const s of secretsOf(spec)) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), 'CLI output contains a secret');
    }
  }

  /** Asserts a refusal: exit 1, a one-line message matching `message`, the file unchanged. */
  function refused(args: string[], message: RegExp, options?: Parameters<typeof keys>[1]): void {
    const before = fs.readFileSync(file);
    const r = keys(args, options);
    assert.equal(r.status, 1, `keys ${args.join(' ')}: expected exit 1, got ${r.status} (${r.stderr})`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `not one line: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.deepEqual(fs.readFileSync(file), before);
    assertNoSecret(r, JSON.parse(before.toString('utf8')));
  }

  beforeEach(() => {
    cwd = tempDir('rtcstats-keys-cwd-');
    dataDir = path.join(tempDir('rtcstats-keys-data-'), 'data');
    file = path.join(dataDir, 'keyring.json');
  });
  afterEach(() => {
    removeTempDir(cwd);
    removeTempDir(path.dirname(dataDir));
  });

  it('generate prints a fresh 256-bit base64url secret and writes nothing', () => {
    const a = ok(['generate']).stdout.trim();
    const b = ok(['generate']).stdout.trim();
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a, 'base64url').length, 32);
    assert.notEqual(a, b);
    assert.ok(!fs.existsSync(dataDir));
  });

  it('init creates <data dir>/keyring.json, mode 0600, and refuses to overwrite it without --force', () => {
    const r = ok(['init']);
    const spec = read();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(spec.keys.length, 1);
    assert.equal(spec.keys[0].state, 'current');
    assert.equal(spec.apiKeys?.length, 1);
    assert.match(r.stdout, new RegExp(`added ${spec.keys[0].kid} \\(current\\)`));
    assertNoSecret(r, spec);

    refused(['init'], /already exists: pass --force/);
    ok(['init', '--force']);
    assert.notEqual(read().keys[0].secret, spec.keys[0].secret);
  });

  it('introduce -> promote -> list -> retire rotates to exactly one new current key', () => {
    ok(['init']);
    const oldKid = read().keys[0].kid;

    const introduced = ok(['introduce', '--kid', '2027-02']);
    assert.match(introduced.stdout, /added 2027-02 \(next\)/);
    assert.equal(states(read()), `${oldKid}:current 2027-02:next`);

    const before = Date.now();
    const promoted = ok(['promote']);
    const after = Date.now();
    const spec = read();
    assert.equal(states(spec), `${oldKid}:previous 2027-02:current`);
    const notAfter = Date.parse(spec.keys[0].notAfter!);
    const overlapMs = (MAX_LIFETIME + TOLERANCE) * 1000;
    assert.ok(notAfter >= before + overlapMs && notAfter <= after + overlapMs, `notAfter ${spec.keys[0].notAfter}`);
    assert.match(promoted.stdout, new RegExp(`changed ${oldKid} \\(current\\) -> ${oldKid} \\(previous, until `));
    assertNoSecret(promoted, spec);

    const list = ok(['list']);
    assert.match(list.stdout, new RegExp(`^${oldKid}\\s+previous\\s+${spec.keys[0].notAfter}$`, 'm'));
    assert.match(list.stdout, /^2027-02\s+current\s+-$/m);
    assert.match(list.stdout, /^API keys: default \(tokens, admin\)$/m);
    assertNoSecret(list, spec);

    const retired = ok(['retire', oldKid]);
    assert.match(retired.stdout, new RegExp(`removed ${oldKid} \\(previous`));
    assert.equal(states(read()), '2027-02:current');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dataDir), ['keyring.json']);
  });

  it('revoke marks a previous key revoked; api-add and api-remove manage API keys', () => {
    ok(['init']);
    const oldKid = read().keys[0].kid;
    ok(['introduce']);
    ok(['promote']);
    const r = ok(['revoke', oldKid]);
    assert.match(r.stdout, new RegExp(`changed ${oldKid} \\(previous, until [^)]+\\) -> ${oldKid} \\(revoked, until `));
    assert.equal(read().keys[0].state, 'revoked');

    const secret = ok(['generate']).stdout;
    const added = ok(['api-add', 'backend-b', '--secret-stdin'], { input: secret });
    assert.match(added.stdout, /added API key backend-b/);
    assert.equal(read().apiKeys?.find((a) => a.id === 'backend-b')?.key, secret.trim());
    assertNoSecret(added, read());
    assert.deepEqual(read().apiKeys?.find((a) => a.id === 'backend-b')?.scopes, ['tokens'], 'tokens by default');
    assert.deepEqual(read().apiKeys?.find((a) => a.id === 'default')?.scopes, ['tokens', 'admin'], 'init: both scopes');
    const scoped = ok(['api-add', 'ops', '--scopes', 'admin']);
    assert.match(scoped.stdout, /added API key ops \(admin\)/);
    assert.deepEqual(read().apiKeys?.find((a) => a.id === 'ops')?.scopes, ['admin']);
    assert.match(ok(['list']).stdout, /^API keys: default \(tokens, admin\), backend-b \(tokens\), ops \(admin\)$/m);
    refused(['api-add', 'root', '--scopes', 'tokens,root'], /^keys: .*API key "root": scopes must be a non-empty array of tokens, admin\n$/);
    assert.equal(ok(['api-show', 'backend-b']).stdout, secret);
    refused(['api-show', 'nope'], /^keys: no API key with id "nope" in /);
    ok(['api-remove', 'default']);
    ok(['api-remove', 'ops']);
    assert.deepEqual(read().apiKeys?.map((a) => a.id), ['backend-b']);
  });

  it('refuses unsafe or impossible steps with exit 1, a clear message and the file untouched', () => {
    ok(['init']);
    const current = read().keys[0].kid;
    refused(['promote'], /^keys: no "next" key to promote: introduce one first\n$/);
    refused(['retire', current], new RegExp(`key "${current}" is current: introduce and promote a new key before retiring it`));
    refused(['revoke', current], new RegExp(`key "${current}" is current: introduce and promote a new key, then revoke`));
    refused(['retire', 'missing'], /no key with kid "missing"/);
    ok(['introduce', '--kid', 'n1']);
    refused(['introduce'], /key "n1" is already "next": promote or retire it first/);
    ok(['retire', 'n1']);
    // A short secret is refused by the server's own validator, named by kid, never echoed.
    refused(['introduce', '--kid', 'weak', '--secret-stdin'], /invalid keyring .*key "weak": secret is 5 bytes, at least 32/, {
      input: 'short\n',
    });
    refused(['introduce', '--secret-stdin'], /already used by key/, { input: read().keys[0].secret });
  });

  it('refuses to operate on an invalid keyring file', () => {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ keys: [{ kid: 'a', secret: 'x'.repeat(40), state: 'next' }] }));
    refused(['list'], /keyring\.json: exactly one key must be "current" \(found 0\)/);
    refused(['promote'], /exactly one key must be "current"/);
    assert.equal(keys(['list'], { env: { RTCSTATS_DATA_DIR: path.join(cwd, 'none') } }).status, 1);
  });

  it('uses --file, else RTCSTATS_KEYRING_FILE, else the data directory', () => {
    const explicit = path.join(cwd, 'explicit.json');
    ok(['init', '--file', 'explicit.json']);
    assert.ok(fs.existsSync(explicit) && !fs.existsSync(file));
    const configured = path.join(cwd, 'configured.json');
    ok(['init'], { env: { RTCSTATS_KEYRING_FILE: 'configured.json' } });
    assert.ok(fs.existsSync(configured) && !fs.existsSync(file));
    const list = ok(['list'], { env: { RTCSTATS_KEYRING_FILE: configured } });
    assert.match(list.stdout, new RegExp(`^file: ${configured}$`, 'm'));
  });

  it('exits 2 with the usage on a usage error', () => {
    for (const args of [[], ['bogus'], ['retire'], ['retire', 'a', 'b'], ['list', '--force'], ['generate', '--file', 'x'], ['init', '--nope']]) {
      const r = keys(args);
      assert.equal(r.status, 2, `keys ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: npm run keys -- <command>/);
    }
    const help = ok(['--help']);
    assert.match(help.stdout, /introduce \[--kid K\]/);
  });
});
