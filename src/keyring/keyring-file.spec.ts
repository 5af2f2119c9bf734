import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { generateKeyringSpec, KeyringError, type KeyringFileSpec } from './keyring.js';
import { readKeyringFile, writeKeyringFileAtomic } from './keyring-file.js';
import { introduceKey } from './keyring-rotation.js';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const SECRET_A = 'secret-a-0123456789-abcdefghijklmnopqrst';
const SECRET_B = 'secret-b-0123456789-abcdefghijklmnopqrst';
const API_KEY = 'api-key-0123456789-abcdefghijklmnopqrstu';

function base(): KeyringFileSpec {
  return { keys: [{ kid: 'a', secret: SECRET_A, state: 'current' }], apiKeys: [{ id: 'backend', key: API_KEY }] };
}

/** Asserts a refusal by KeyringError whose message matches and never contains a secret. */
function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KeyringError, `expected KeyringError, got ${String(err)}`);
    assert.match(err.message, message);
    for (const s of [SECRET_A, SECRET_B, API_KEY]) assert.ok(!err.message.includes(s), 'message leaks a secret');
    return true;
  });
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-keyring-file-'));
}

describe('readKeyringFile and writeKeyringFileAtomic', () => {
  it('writes a keyring that reads back identically, mode 0600, without leftovers', () => {
    const dir = tempDir();
    const file = path.join(dir, 'keyring.json');
    fs.writeFileSync(file, 'placeholder', { mode: 0o644 });
    writeKeyringFileAtomic(file, base());
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readKeyringFile(file).spec, base());
    assert.deepEqual(fs.readdirSync(dir), ['keyring.json']);
  });

  it('refuses an invalid keyring and leaves the previous file byte-identical', () => {
    const dir = tempDir();
    const file = path.join(dir, 'keyring.json');
    writeKeyringFileAtomic(file, base());
    const original = fs.readFileSync(file);
    const twoCurrent: KeyringFileSpec = { keys: [...base().keys, { kid: 'b', secret: SECRET_B, state: 'current' }] };
    refuses(() => writeKeyringFileAtomic(file, twoCurrent), /refusing to write an invalid keyring .*exactly one key must be "current" \(found 2\)/);
    const short: KeyringFileSpec = { keys: [{ kid: 'a', secret: 'too-short', state: 'current' }] };
    refuses(() => writeKeyringFileAtomic(file, short), /key "a": secret is 9 bytes/);
    refuses(() => writeKeyringFileAtomic(file, { keys: [] }), /"keys" must be a non-empty array/);
    assert.deepEqual(fs.readFileSync(file), original);
    assert.deepEqual(fs.readdirSync(dir), ['keyring.json']);
  });

  it('refuses to replace an existing file when overwrite is false', () => {
    const dir = tempDir();
    const file = path.join(dir, 'keyring.json');
    writeKeyringFileAtomic(file, base(), { overwrite: false });
    const original = fs.readFileSync(file);
    refuses(() => writeKeyringFileAtomic(file, generateKeyringSpec(NOW), { overwrite: false }), /already exists/);
    assert.deepEqual(fs.readFileSync(file), original);
    assert.deepEqual(fs.readdirSync(dir), ['keyring.json']);
  });

  it('writes through a symlink, keeping the link', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'data'));
    const real = path.join(dir, 'data', 'keyring.json');
    const link = path.join(dir, 'keyring.json');
    writeKeyringFileAtomic(real, base());
    fs.symlinkSync(path.join('data', 'keyring.json'), link);
    const next = introduceKey(readKeyringFile(link).spec, { now: NOW, kid: 'b', secret: SECRET_B });
    writeKeyringFileAtomic(link, next);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.deepEqual(readKeyringFile(real).spec, next);
  });

  it('names the file and the problem when reading a missing, malformed or invalid file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'keyring.json');
    refuses(() => readKeyringFile(file).spec, /keyring file .*keyring\.json: cannot read \(ENOENT\)/);
    fs.writeFileSync(file, '{"keys": [');
    refuses(() => readKeyringFile(file).spec, /keyring\.json: not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ keys: [{ kid: 'a', secret: SECRET_A, state: 'previous' }] }));
    refuses(() => readKeyringFile(file).spec, /keyring\.json: exactly one key must be "current" \(found 0\)/);
  });
});
