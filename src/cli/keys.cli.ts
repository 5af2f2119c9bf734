import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { makeDataDir } from '../common/file-modes.js';
import { type AppConfig, parseConfig } from '../config/app-config.js';
import { loadEnvironment } from '../config/environment.js';
import { generateKeyringSpec, generateSecret, KeyringError, type KeyringFileSpec } from '../keyring/keyring.js';
import { readKeyringFile, writeKeyringFileAtomic } from '../keyring/keyring-file.js';
import {
  addApiKey,
  describeApiKey,
  describeChanges,
  introduceKey,
  listKeys,
  promoteKey,
  removeApiKey,
  retireKey,
  revokeKey,
} from '../keyring/keyring-rotation.js';
import { GENERATED_KEYRING_NAME } from '../keyring/keyring-source.js';

const USAGE = `usage: npm run keys -- <command> [options]   (or: rtcstats-keys <command> [options])
Rotates the keys of a keyring file; collectors pick up the change without a restart.
Rotation: introduce, promote, wait out the overlap (watch the per-kid verification count), retire.
Commands:
  generate                          print a new random secret (256 bits, base64url); writes nothing
  init [--force]                    create the keyring file: one current key and one API key
  introduce [--kid K] [--secret-stdin]
                                    add a "next" key: it verifies tokens but does not sign yet
  promote [--kid K]                 make the next key (or K) current; the old current key stays
                                    "previous" for the max token lifetime + clock tolerance
  retire <kid>                      remove a previous, next or revoked key (live connections stay)
  revoke <kid>                      mark a key revoked: its tokens are rejected and the live
                                    connections it authenticated are closed
  list [--server URL]               show kids, states and expiry (never secrets); with --server
                                    (e.g. http://localhost:8080) also each kid's verification
                                    count and last use, read from the running collector
  api-add <id> [--secret-stdin] [--scopes tokens,admin]
                                    add an API key; scopes: tokens (POST /tokens, the default),
                                    admin (GET /admin/keys)
  api-remove <id>                   remove an API key
  api-show <id>                     print an API key (e.g. the one generated on first start)
Options:
  --file F          the keyring file (default: RTCSTATS_KEYRING_FILE, else <RTCSTATS_DATA_DIR>/${GENERATED_KEYRING_NAME})
  --secret-stdin    read the secret from stdin instead of generating one (never pass secrets as arguments)
Exit status: 0 done, 1 refused (nothing written), 2 usage error.`;

type Options = { kid?: string; force?: boolean; 'secret-stdin'?: boolean; server?: string; scopes?: string };

/** Per command: how many positional arguments it takes and which options besides --file. */
const COMMANDS: Record<string, { positionals: number; options: readonly (keyof Options)[] }> = {
  generate: { positionals: 0, options: [] },
  init: { positionals: 0, options: ['force'] },
  introduce: { positionals: 0, options: ['kid', 'secret-stdin'] },
  promote: { positionals: 0, options: ['kid'] },
  retire: { positionals: 1, options: [] },
  revoke: { positionals: 1, options: [] },
  list: { positionals: 0, options: ['server'] },
  'api-add': { positionals: 1, options: ['secret-stdin', 'scopes'] },
  'api-remove': { positionals: 1, options: [] },
  'api-show': { positionals: 1, options: [] },
};

class UsageError extends Error {}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string' },
      kid: { type: 'string' },
      force: { type: 'boolean' },
      'secret-stdin': { type: 'boolean' },
      server: { type: 'string' },
      scopes: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return { help: true as const };
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('missing command');
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (spec === undefined) throw new UsageError(`unknown command "${command}"`);
  if (rest.length !== spec.positionals) {
    throw new UsageError(spec.positionals === 0 ? `${command} takes no arguments` : `${command} takes exactly one argument`);
  }
  const allowed: readonly string[] = command === 'generate' ? spec.options : [...spec.options, 'file'];
  const stray = Object.keys(values).find((name) => !allowed.includes(name));
  if (stray !== undefined) throw new UsageError(`--${stray} does not apply to ${command}`);
  return { help: false as const, command, arg: rest[0], values };
}

/** A secret piped in (e.g. from `generate` or a vault); one trailing newline is the pipe's, not the secret's. */
function readSecretFromStdin(): string {
  const secret = fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (secret === '') throw new KeyringError('--secret-stdin: stdin was empty');
  return secret;
}

function keyringFile(config: AppConfig, explicit: string | undefined): string {
  if (explicit !== undefined) return path.resolve(explicit);
  return config.jwt.keyringFile ?? path.join(config.dataDir, GENERATED_KEYRING_NAME);
}

interface ServerUsage {
  kid: string;
  verifications: number;
  lastVerifiedAt: string | null;
}

/** Per-kid usage from a running collector's GET /admin/keys, authenticated with an API key of the keyring. */
async function fetchUsage(server: string, apiKey: string): Promise<ServerUsage[]> {
  let res: Response;
  try {
    res = await fetch(new URL('/admin/keys', server), { headers: { Authorization: `Bearer ${apiKey}` }, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new KeyringError(`cannot reach ${server} (${(err as Error).message})`);
  }
  if (!res.ok) throw new KeyringError(`${server}/admin/keys answered ${res.status}`);
  return ((await res.json()) as { keys: ServerUsage[] }).keys;
}

function printList(file: string, spec: KeyringFileSpec, usage: ServerUsage[] | undefined): void {
  const used = new Map((usage ?? []).map((u) => [u.kid, u]));
  const rows = listKeys(spec, new Date()).map((k) => {
    const row = [k.kid, k.state, k.notAfter === undefined ? '-' : k.notAfter + (k.expired ? ' (expired)' : '')];
    const u = used.get(k.kid);
    return usage === undefined ? row : [...row, String(u?.verifications ?? 0), u?.lastVerifiedAt ?? '-'];
  });
  const header = ['KID', 'STATE', 'NOT AFTER', ...(usage === undefined ? [] : ['VERIFIED', 'LAST VERIFIED'])];
  const table = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const lines = table.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '));
  const apiKeys = (spec.apiKeys ?? []).map(describeApiKey);
  lines.push(`API keys: ${apiKeys.length === 0 ? '-' : apiKeys.join(', ')}`, `file: ${file}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function run(command: string, arg: string | undefined, values: Options & { file?: string }): Promise<void> {
  const config = parseConfig(await loadEnvironment());
  const file = keyringFile(config, values.file);
  // The server prefers RTCSTATS_JWT_SECRET over the data-directory file; say so rather than rotate a file nobody reads.
  if (values.file === undefined && config.jwt.keyringFile === undefined && config.jwt.secret !== undefined) {
    process.stderr.write(`keys: note: RTCSTATS_JWT_SECRET is set, so the server uses it and ignores ${file}\n`);
  }
  const now = new Date();
  if (command === 'list') {
    const { spec } = readKeyringFile(file);
    let usage: ServerUsage[] | undefined;
    if (values.server !== undefined) {
      const apiKey = spec.apiKeys?.find((a) => a.scopes?.includes('admin'))?.key;
      if (apiKey === undefined) throw new KeyringError('--server needs an API key with the admin scope in the keyring file: add one with api-add <id> --scopes admin');
      usage = await fetchUsage(values.server, apiKey);
    }
    printList(file, spec, usage);
    return;
  }
  if (command === 'api-show') {
    const apiKey = readKeyringFile(file).spec.apiKeys?.find((a) => a.id === arg);
    if (apiKey === undefined) throw new KeyringError(`no API key with id "${arg}" in ${file}`);
    // Asked for by name: the one command whose output is a secret.
    process.stdout.write(`${apiKey.key}\n`);
    return;
  }
  if (command === 'init') {
    if (values.force !== true && fs.existsSync(file)) {
      throw new KeyringError(`${file} already exists: pass --force to replace it (its keys would be lost)`);
    }
    const spec = generateKeyringSpec(now);
    makeDataDir(path.dirname(file));
    writeKeyringFileAtomic(file, spec, { overwrite: values.force === true });
    report(`created ${file} (mode 0600)`, describeChanges({ keys: [], apiKeys: [] }, spec));
    return;
  }
  const before = readKeyringFile(file).spec;
  const secret = () => (values['secret-stdin'] ? readSecretFromStdin() : undefined);
  const steps: Record<string, () => KeyringFileSpec> = {
    introduce: () => introduceKey(before, { now, kid: values.kid, secret: secret() }),
    // Every token the old current key signed must stay verifiable until it expires.
    promote: () => promoteKey(before, { now, kid: values.kid, overlapSeconds: config.jwt.maxLifetimeSec + config.jwt.clockToleranceSec }),
    retire: () => retireKey(before, arg!),
    revoke: () => revokeKey(before, arg!),
    'api-add': () => addApiKey(before, { id: arg!, key: secret(), scopes: values.scopes?.split(',').map((s) => s.trim()) }),
    'api-remove': () => removeApiKey(before, arg!),
  };
  const after = steps[command]();
  writeKeyringFileAtomic(file, after);
  report(`updated ${file}`, describeChanges(before, after));
}

function report(title: string, changes: string[]): void {
  process.stdout.write([title + ':', ...changes.map((c) => `  ${c}`)].join('\n') + '\n');
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`keys: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (parsed.command === 'generate') {
    process.stdout.write(`${generateSecret()}\n`);
    return 0;
  }
  try {
    await run(parsed.command, parsed.arg, parsed.values);
    return 0;
  } catch (err) {
    // One line naming the problem; messages from the keyring code never contain a secret.
    process.stderr.write(`keys: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
}

process.exitCode = await main();
