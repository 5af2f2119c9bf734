import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { tempDir } from '../../test/helpers.js';
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

describe('readKeyringFile and writeKeyringFileAtomic', () => {
  it('writes a keyring that reads back identically, mode 0600, without leftovers', () => {
    const dir = tempDir('rtcstats-keyring-file-');
    const file = path.join(dir, 'keyring.json');
    fs.writeFileSync(file, 'placeholder', { mode: 0o644 });
    writeKeyringFileAtomic(file, base());
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readKeyringFile(file).spec, base());
    assert.deepEqual(fs.readdirSync(dir), ['keyring.json']);
  });

  it('refuses an invalid keyring and leaves the previous file byte-identical', () => {
    const dir = tempDir('rtcstats-keyring-file-');
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
    const dir = tempDir('rtcstats-keyring-file-');
    const file = path.join(dir, 'keyring.json');
    writeKeyringFileAtomic(file, base(), { overwrite: false });
    const original = fs.readFileSync(file);
    refuses(() => writeKeyringFileAtomic(file, generateKeyringSpec(NOW), { overwrite: false }), /already exists/);
    assert.deepEqual(fs.readFileSync(file), original);
    assert.deepEqual(fs.readdirSync(dir), ['keyring.json']);
  });

  it('writes through a symlink, keeping the link', () => {
    const dir = tempDir('rtcstats-keyring-file-');
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
    const dir = tempDir('rtcstats-keyring-file-');
    const file = path.join(dir, 'keyring.json');
    refuses(() => readKeyringFile(file).spec, /keyring file .*keyring\.json: cannot read \(ENOENT\)/);
    fs.writeFileSync(file, '{"keys": [');
    refuses(() => readKeyringFile(file).spec, /keyring\.json: not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ keys: [{ kid: 'a', secret: SECRET_A, state: 'previous' }] }));
    refuses(() => readKeyringFile(file).spec, /keyring\.json: exactly one key must be "current" \(found 0\)/);
  });
});

describe('readKeyringFile error messages never quote the file', () => {
  // Distinctive, so any 6-character fragment of it in a message is a leak, not a coincidence.
  const SECRET = 'Zq8W-s3cr3t-Jx7vKp2mYt9LbR4nHd6FgC1eUa5o';
  const fragments = (s: string) => Array.from({ length: s.length - 5 }, (_, i) => s.slice(i, i + 6));
  const key = (fields: string) => `{"keys": [{${fields}}]}`;
  const ok = `"kid": "a", "secret": "${SECRET_A}", "state": "current"`;
  /** [what, file content with SECRET in the faulty region, what the message must say]. */
  const faults: [string, string, RegExp][] = [
    ['unquoted secret', key(`"kid": "a", "secret": ${SECRET}, "state": "current"`), /not valid JSON \(syntax error at line 1, column 34\)$/],
    ['unquoted secret on line 3', `{\n  "keys": [\n    {"kid": "a", "secret": ${SECRET}}\n  ]\n}`, /not valid JSON \(syntax error at line 3, column 28\)$/],
    ['single-quoted secret', key(`"kid": "a", "secret": '${SECRET}'`), /not valid JSON \(syntax error at line 1, column 34\)$/],
    ['control character inside the secret', key(`"kid": "a", "secret": "${SECRET.slice(0, 20)}\t${SECRET.slice(20)}"`), /line 1, column 55\)$/],
    ['bad escape inside the secret', key(`"kid": "a", "secret": "${SECRET.slice(0, 20)}\\x${SECRET.slice(20)}"`), /line 1, column 56\)$/],
    ['missing comma after the secret', key(`"kid": "a", "secret": "${SECRET}" "state": "current"`), /syntax error at line 1, column \d+\)$/],
    ['file cut inside the secret', key(`"kid": "a", "secret": "${SECRET}`).slice(0, 60), /syntax error at line 1, column 61\)$/],
    ['secret after the end', `${key(ok)} ${SECRET}`, /syntax error at line 1, column \d+\)$/],
    ['secret as the whole file', JSON.stringify(SECRET), /the keyring must be a JSON object/],
    ['secret in state', key(`"kid": "a", "secret": "${SECRET_A}", "state": "${SECRET}"`), /key "a": state must be one of next, current, previous, revoked$/],
    ['secret in notAfter', key(`${ok}, "notAfter": "${SECRET}"`), /key "a": notAfter must be an ISO 8601 time$/],
    ['secret in kid', key(`"kid": "${SECRET}/x", "secret": "${SECRET_A}", "state": "current"`), /keys\[0\]: kid must match/],
    ['secret as a number', key(`"kid": "a", "secret": 12345678901234567890123456789012345678, "state": "current"`), /key "a": secret must be a string/],
    ['short secret', key(`"kid": "a", "secret": "${SECRET.slice(0, 20)}", "state": "current"`), /key "a": secret is 20 bytes, at least 32/],
    ['API key in the id', `{"keys": [{${ok}}], "apiKeys": [{"id": "${SECRET}/x", "key": "${API_KEY}"}]}`, /apiKeys\[0\]: id must match/],
    ['short API key', `{"keys": [{${ok}}], "apiKeys": [{"id": "b", "key": "${SECRET.slice(0, 20)}"}]}`, /API key "b": secret is 20 bytes/],
    ['apiKeys not an array', `{"keys": [{${ok}}], "apiKeys": "${SECRET}"}`, /"apiKeys" must be an array/],
    ['keys not an array', `{"keys": "${SECRET}"}`, /"keys" must be a non-empty array/],
  ];
  for (const [what, content, message] of faults) {
    it(what, () => {
      const dir = tempDir();
      try {
        const file = path.join(dir, 'keyring.json');
        fs.writeFileSync(file, content);
        assert.ok(content.includes(SECRET.slice(0, 20)) || /number/.test(what), 'the fixture holds the secret');
        assert.throws(
          () => readKeyringFile(file),
          (err: unknown) => {
            assert.ok(err instanceof KeyringError, `expected KeyringError, got ${String(err)}`);
            assert.ok(err.message.startsWith(`keyring file ${file}: `), err.message);
            assert.match(err.message, message);
            const leaked = fragments(SECRET).find((f) => err.message.includes(f));
            assert.equal(leaked, undefined, `message quotes the secret: ${err.message}`);
            assert.ok(!err.message.includes('1234567890123'), 'message quotes the number');
            return true;
          },
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('names the file and the errno when it cannot read it', () => {
    const dir = tempDir();
    try {
      refuses(() => readKeyringFile(dir), /^keyring file .*: cannot read \(EISDIR\)$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
