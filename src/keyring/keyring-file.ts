import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { jsonSyntaxErrorOffset, positionOf } from '../common/json-syntax.js';
import { buildKeyring, type Keyring, KeyringError, type KeyringFileSpec } from './keyring.js';

/** A keyring file as read: the raw spec (what the keys CLI edits) and the validated snapshot. */
export interface KeyringFile {
  readonly spec: KeyringFileSpec;
  readonly keyring: Keyring;
}

/**
 * The one reader of keyring files, for the server (start and reloads) and the keys CLI: reads,
 * parses and validates the whole file. Errors name the file and the problem, never a secret.
 */
export function readKeyringFile(file: string): KeyringFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`keyring file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch {
    // Never the parser's message: V8 quotes the text around the fault, which may be a secret.
    const offset = jsonSyntaxErrorOffset(text);
    const where = offset === -1 ? '' : (({ line, column }) => ` (syntax error at line ${line}, column ${column})`)(positionOf(text, offset));
    throw new KeyringError(`keyring file ${file}: not valid JSON${where}`);
  }
  try {
    return { spec: spec as KeyringFileSpec, keyring: buildKeyring(spec, file) };
  } catch (err) {
    throw new KeyringError(`keyring file ${file}: ${(err as Error).message}`);
  }
}

/**
 * Validates `spec` exactly as the server will, then replaces `file` atomically: readers (a
 * collector reloading on a directory watch) see the old or the new content, never a partial file.
 * With overwrite false, an existing file is refused (the check and the creation are one atomic
 * link(2), so two concurrent `init`s cannot both win).
 */
export function writeKeyringFileAtomic(file: string, spec: KeyringFileSpec, options: { overwrite?: boolean } = {}): void {
  try {
    buildKeyring(spec, file);
  } catch (err) {
    throw new KeyringError(`refusing to write an invalid keyring to ${file}: ${(err as Error).message}`);
  }
  const overwrite = options.overwrite ?? true;
  const existing = statOrUndefined(file);
  if (existing !== undefined && !overwrite) throw new KeyringError(`${file} already exists`);
  // Write through a symlink to its target, so a link-based layout (..data/keyring.json) survives.
  const target = existing !== undefined ? fs.realpathSync(file) : file;
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    try {
      fs.fchmodSync(fd, 0o600); // the umask may have narrowed it; never let it widen
      // A keyring rewritten by root for a server running as another user must stay readable by it.
      if (existing !== undefined && (existing.uid !== process.getuid?.() || existing.gid !== process.getgid?.())) {
        try {
          fs.fchownSync(fd, existing.uid, existing.gid);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new KeyringError(`cannot keep the owner of ${file} (uid ${existing.uid}, ${code}): run as that user or root`);
        }
      }
      fs.writeFileSync(fd, JSON.stringify(spec, null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (overwrite) {
      fs.renameSync(tmp, target);
    } else {
      fs.linkSync(tmp, target);
      fs.unlinkSync(tmp);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyringError(`${file} already exists`);
    throw err;
  }
  // The rename is durable only once the directory entry is on disk.
  const dirFd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

