import {
  type ApiKeyScope,
  checkScopes,
  DEFAULT_API_KEY_SCOPES,
  generateKid,
  generateSecret,
  KID_PATTERN,
  KeyringError,
  type KeyringFileSpec,
  type KeyState,
} from './keyring.js';

/*
 * Rotation of a keyring file (docs: spec/keyring.md, "Rotation procedure"). Each step is a pure
 * function from spec to new spec, so the rules are testable without I/O; keyring-file.ts reads and
 * writes the file. Errors name keys by kid, never by secret.
 */

type KeySpec = KeyringFileSpec['keys'][number];

/** Copies keys so that no step mutates its input. */
function withKeys(spec: KeyringFileSpec, keys: KeySpec[]): KeyringFileSpec {
  return { ...spec, keys };
}

function findKey(spec: KeyringFileSpec, kid: string): KeySpec {
  const key = spec.keys.find((k) => k.kid === kid);
  if (key === undefined) throw new KeyringError(`no key with kid "${kid}"`);
  return key;
}

/** Refuses a secret that is already in use, so a revoked or API secret can never come back as a signing key. */
function checkUnusedSecret(spec: KeyringFileSpec, secret: string): void {
  const key = spec.keys.find((k) => k.secret === secret);
  if (key !== undefined) throw new KeyringError(`that secret is already used by key "${key.kid}"`);
  const api = spec.apiKeys?.find((a) => a.key === secret);
  if (api !== undefined) throw new KeyringError(`that secret is already used by API key "${api.id}"`);
}

/** Step 1: adds a `next` key (verifies, never signs), so every replica knows it before it is promoted. */
export function introduceKey(spec: KeyringFileSpec, options: { now: Date; kid?: string; secret?: string }): KeyringFileSpec {
  const pending = spec.keys.find((k) => k.state === 'next');
  if (pending !== undefined) {
    throw new KeyringError(`key "${pending.kid}" is already "next": promote or retire it first`);
  }
  const kid = options.kid ?? generateKid(options.now);
  if (!KID_PATTERN.test(kid)) throw new KeyringError(`kid must match ${KID_PATTERN.source}`);
  if (spec.keys.some((k) => k.kid === kid)) throw new KeyringError(`kid "${kid}" already exists`);
  const secret = options.secret ?? generateSecret();
  checkUnusedSecret(spec, secret);
  return withKeys(spec, [...spec.keys.map((k) => ({ ...k })), { kid, secret, state: 'next' }]);
}

/**
 * Step 2: the `next` key (or the named `next`/`previous` one, for a rollback) becomes `current`;
 * the old current becomes `previous` until now + overlapSeconds, which the caller sets to the
 * maximum token lifetime plus the clock tolerance so every token it signed stays verifiable.
 */
export function promoteKey(
  spec: KeyringFileSpec,
  options: { now: Date; overlapSeconds: number; kid?: string },
): KeyringFileSpec {
  const { now, overlapSeconds } = options;
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0) {
    throw new KeyringError(`overlap must be a whole number of seconds >= 0 (got ${overlapSeconds})`);
  }
  let kid = options.kid;
  if (kid === undefined) {
    const pending = spec.keys.filter((k) => k.state === 'next');
    if (pending.length === 0) throw new KeyringError('no "next" key to promote: introduce one first');
    if (pending.length > 1) throw new KeyringError(`several "next" keys (${pending.map((k) => k.kid).join(', ')}): name one`);
    kid = pending[0].kid;
  }
  const target = findKey(spec, kid);
  if (target.state === 'current') throw new KeyringError(`key "${kid}" is already current`);
  if (target.state === 'revoked') throw new KeyringError(`key "${kid}" is revoked and can never sign again`);
  if (target.notAfter !== undefined && Date.parse(target.notAfter) < now.getTime()) {
    throw new KeyringError(`key "${kid}" expired at ${target.notAfter}`);
  }
  const notAfter = new Date(now.getTime() + overlapSeconds * 1000).toISOString();
  return withKeys(
    spec,
    spec.keys.map((k): KeySpec => {
      if (k.kid === kid) {
        const { notAfter: _dropped, ...rest } = k;
        return { ...rest, state: 'current' };
      }
      return k.state === 'current' ? { ...k, state: 'previous', notAfter } : { ...k };
    }),
  );
}

/** Step 4: removes a key that no longer signs. Tokens it signed are rejected from now on; live connections stay. */
export function retireKey(spec: KeyringFileSpec, kid: string): KeyringFileSpec {
  if (findKey(spec, kid).state === 'current') {
    throw new KeyringError(`key "${kid}" is current: introduce and promote a new key before retiring it`);
  }
  return withKeys(spec, spec.keys.filter((k) => k.kid !== kid).map((k) => ({ ...k })));
}

/**
 * Emergency: marks a key `revoked` (its tokens are rejected and collectors close the connections
 * it authenticated). The current key is refused: there must always be one key to sign with.
 */
export function revokeKey(spec: KeyringFileSpec, kid: string): KeyringFileSpec {
  const state = findKey(spec, kid).state;
  if (state === 'current') {
    throw new KeyringError(`key "${kid}" is current: introduce and promote a new key, then revoke "${kid}"`);
  }
  if (state === 'revoked') throw new KeyringError(`key "${kid}" is already revoked`);
  return withKeys(
    spec,
    spec.keys.map((k): KeySpec => (k.kid === kid ? { ...k, state: 'revoked' } : { ...k })),
  );
}

/**
 * Adds an API key (scopes default to tokens: POST /tokens); several may be valid at once while
 * backends move over. The scopes are written out, so the file says what each key may do.
 */
export function addApiKey(spec: KeyringFileSpec, options: { id: string; key?: string; scopes?: readonly string[] }): KeyringFileSpec {
  const { id } = options;
  if (!KID_PATTERN.test(id)) throw new KeyringError(`API key id must match ${KID_PATTERN.source}`);
  const scopes = [...checkScopes(options.scopes ?? DEFAULT_API_KEY_SCOPES, `API key "${id}"`)] as ApiKeyScope[];
  const apiKeys = spec.apiKeys ?? [];
  if (apiKeys.some((a) => a.id === id)) throw new KeyringError(`API key "${id}" already exists`);
  const key = options.key ?? generateSecret();
  checkUnusedSecret(spec, key);
  return { ...spec, keys: spec.keys.map((k) => ({ ...k })), apiKeys: [...apiKeys.map((a) => ({ ...a })), { id, key, scopes }] };
}

export function removeApiKey(spec: KeyringFileSpec, id: string): KeyringFileSpec {
  const apiKeys = spec.apiKeys ?? [];
  if (!apiKeys.some((a) => a.id === id)) throw new KeyringError(`no API key with id "${id}"`);
  return { ...spec, keys: spec.keys.map((k) => ({ ...k })), apiKeys: apiKeys.filter((a) => a.id !== id).map((a) => ({ ...a })) };
}

/** An API key by id and scopes, e.g. `ops (admin)`. */
export function describeApiKey(a: { id: string; scopes?: readonly string[] }): string {
  return `${a.id} (${(a.scopes ?? DEFAULT_API_KEY_SCOPES).join(', ')})`;
}

export interface KeyListing {
  readonly kid: string;
  readonly state: KeyState;
  readonly notAfter: string | undefined;
  /** True once notAfter has passed: the key no longer verifies and can be retired. */
  readonly expired: boolean;
}

/** What an operator may see of the keys: kids, states and expiry. Never secrets. */
export function listKeys(spec: KeyringFileSpec, now: Date): KeyListing[] {
  return spec.keys.map((k) => ({
    kid: k.kid,
    state: k.state,
    notAfter: k.notAfter,
    // Same boundary as the verifier: a key still verifies at exactly notAfter.
    expired: k.notAfter !== undefined && now.getTime() > Date.parse(k.notAfter),
  }));
}

/** One line per key or API key added, removed or changed, by kid/id and state only. */
export function describeChanges(before: KeyringFileSpec, after: KeyringFileSpec): string[] {
  const lines: string[] = [];
  const show = (k: KeySpec) => `${k.kid} (${k.state}${k.notAfter === undefined ? '' : `, until ${k.notAfter}`})`;
  const old = new Map(before.keys.map((k) => [k.kid, k]));
  const now = new Map(after.keys.map((k) => [k.kid, k]));
  for (const k of before.keys) if (!now.has(k.kid)) lines.push(`removed ${show(k)}`);
  for (const k of after.keys) {
    const was = old.get(k.kid);
    if (was === undefined) lines.push(`added ${show(k)}`);
    else if (was.state !== k.state || was.notAfter !== k.notAfter) lines.push(`changed ${show(was)} -> ${show(k)}`);
  }
  const oldIds = new Set((before.apiKeys ?? []).map((a) => a.id));
  const newIds = new Set((after.apiKeys ?? []).map((a) => a.id));
  for (const id of oldIds) if (!newIds.has(id)) lines.push(`removed API key ${id}`);
  for (const a of after.apiKeys ?? []) if (!oldIds.has(a.id)) lines.push(`added API key ${describeApiKey(a)}`);
  return lines;
}
