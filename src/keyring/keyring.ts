import crypto, { type KeyObject } from 'node:crypto';

/** Raised when a keyring source is invalid. Messages name keys by kid or position, never by secret. */
export class KeyringError extends Error {
  override name = 'KeyringError';
}

export type KeyState = 'next' | 'current' | 'previous' | 'revoked';
export const KEY_STATES: readonly KeyState[] = ['next', 'current', 'previous', 'revoked'];

export const MIN_SECRET_BYTES = 32;
export const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** What an API key may call: `tokens` POST /tokens, `admin` the admin routes (key status). */
export type ApiKeyScope = 'tokens' | 'admin';
export const API_KEY_SCOPES: readonly ApiKeyScope[] = ['tokens', 'admin'];
/** Scopes of an API key that lists none, and of keys from RTCSTATS_API_KEYS. */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['tokens'];

/** The JSON shape of a keyring file (and of the keyring generated on first start). */
export interface KeyringFileSpec {
  keys: { kid: string; secret: string; state: KeyState; notAfter?: string }[];
  apiKeys?: { id: string; key: string; scopes?: ApiKeyScope[] }[];
}

export interface KeyringKey {
  readonly kid: string;
  readonly state: KeyState;
  /** HMAC key over the secret's UTF-8 bytes, as app backends use it with jwt.sign(payload, secret). */
  readonly key: KeyObject;
  /** Epoch ms after which the key no longer verifies, or undefined. */
  readonly notAfter: number | undefined;
}

export interface ApiKey {
  readonly id: string;
  readonly key: Buffer;
  readonly scopes: readonly ApiKeyScope[];
}

/** Validates an API key's scopes (absent: the default); the message names the key, never a value. */
export function checkScopes(scopes: unknown, what: string): readonly ApiKeyScope[] {
  if (scopes === undefined) return DEFAULT_API_KEY_SCOPES;
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => API_KEY_SCOPES.includes(s))) {
    throw new KeyringError(`${what}: scopes must be a non-empty array of ${API_KEY_SCOPES.join(', ')}`);
  }
  return [...new Set(scopes as ApiKeyScope[])];
}

/**
 * An immutable snapshot of the signing and verifying keys. Reloads build a new
 * snapshot and swap the reference, so a verification in progress always sees one
 * consistent keyring.
 */
export class Keyring {
  private readonly byKid: ReadonlyMap<string, KeyringKey>;
  /** Verifying keys in trial order for tokens without a kid: current, next, previous. */
  private readonly trialOrder: readonly KeyringKey[];

  constructor(
    readonly keys: readonly KeyringKey[],
    readonly apiKeys: readonly ApiKey[],
    /** Where the keyring came from, for log lines ("environment", a file path). */
    readonly source: string,
    /** Content fingerprint, so reloading identical content can be a no-op. */
    readonly fingerprint: string,
  ) {
    this.byKid = new Map(keys.map((k) => [k.kid, k]));
    const rank: Record<KeyState, number> = { current: 0, next: 1, previous: 2, revoked: 3 };
    this.trialOrder = keys.filter((k) => k.state !== 'revoked').sort((a, b) => rank[a.state] - rank[b.state]);
  }

  get current(): KeyringKey | undefined {
    return this.keys.find((k) => k.state === 'current');
  }

  /** The key named by kid if it may verify tokens at time `now`. */
  verifyingKey(kid: string, now: number): KeyringKey | undefined {
    const k = this.byKid.get(kid);
    return k && isVerifying(k, now) ? k : undefined;
  }

  /** Whether kid names a key in state revoked (refused as `revoked`, not as an unknown kid). */
  isRevoked(kid: string): boolean {
    return this.byKid.get(kid)?.state === 'revoked';
  }

  /** Keys to try, in order, for a token that names no kid. */
  verifyingKeys(now: number): KeyringKey[] {
    return this.trialOrder.filter((k) => isVerifying(k, now));
  }

  describe(): string {
    return this.keys.map((k) => `${k.kid}(${k.state})`).join(', ');
  }
}

function isVerifying(k: KeyringKey, now: number): boolean {
  return k.state !== 'revoked' && (k.notAfter === undefined || now <= k.notAfter);
}

export function secretKey(secret: string): KeyObject {
  return crypto.createSecretKey(Buffer.from(secret, 'utf8'));
}

/** A stable kid for a secret given without one (environment variables). */
export function deriveKid(secret: string): string {
  return 'env-' + crypto.createHash('sha256').update('rtcstats-kid\0').update(secret).digest('base64url').slice(0, 12);
}

/** 256 random bits as base64url (43 characters). */
export function generateSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

function checkSecret(secret: unknown, what: string): string {
  if (typeof secret !== 'string') throw new KeyringError(`${what}: secret must be a string`);
  const n = Buffer.byteLength(secret, 'utf8');
  if (n < MIN_SECRET_BYTES) {
    throw new KeyringError(`${what}: secret is ${n} bytes, at least ${MIN_SECRET_BYTES} are required`);
  }
  return secret;
}

function fingerprintOf(spec: KeyringFileSpec): string {
  return crypto.createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

/** Validates a whole keyring spec and builds the snapshot; throws KeyringError naming the first problem. */
export function buildKeyring(spec: unknown, source: string): Keyring {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new KeyringError('the keyring must be a JSON object with a "keys" array');
  }
  const { keys, apiKeys } = spec as Record<string, unknown>;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new KeyringError('"keys" must be a non-empty array');
  }
  const seen = new Set<string>();
  const built: KeyringKey[] = keys.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw new KeyringError(`keys[${i}] must be an object`);
    const e = entry as Record<string, unknown>;
    if (typeof e.kid !== 'string' || !KID_PATTERN.test(e.kid)) {
      throw new KeyringError(`keys[${i}]: kid must match ${KID_PATTERN.source}`);
    }
    const what = `key "${e.kid}"`;
    if (seen.has(e.kid)) throw new KeyringError(`duplicate kid "${e.kid}"`);
    seen.add(e.kid);
    if (!KEY_STATES.includes(e.state as KeyState)) {
      // Not the value: a misplaced secret would be quoted.
      throw new KeyringError(`${what}: state must be one of ${KEY_STATES.join(', ')}`);
    }
    let notAfter: number | undefined;
    if (e.notAfter !== undefined) {
      notAfter = typeof e.notAfter === 'string' ? Date.parse(e.notAfter) : NaN;
      if (Number.isNaN(notAfter)) throw new KeyringError(`${what}: notAfter must be an ISO 8601 time`);
    }
    return { kid: e.kid, state: e.state as KeyState, key: secretKey(checkSecret(e.secret, what)), notAfter };
  });
  const currents = built.filter((k) => k.state === 'current').length;
  if (currents !== 1) {
    throw new KeyringError(`exactly one key must be "current" (found ${currents})`);
  }
  const apiKeyList: ApiKey[] = [];
  if (apiKeys !== undefined) {
    if (!Array.isArray(apiKeys)) throw new KeyringError('"apiKeys" must be an array');
    const ids = new Set<string>();
    apiKeys.forEach((entry: unknown, i) => {
      const a = (entry ?? {}) as Record<string, unknown>;
      if (typeof a.id !== 'string' || !KID_PATTERN.test(a.id)) {
        throw new KeyringError(`apiKeys[${i}]: id must match ${KID_PATTERN.source}`);
      }
      if (ids.has(a.id)) throw new KeyringError(`duplicate API key id "${a.id}"`);
      ids.add(a.id);
      const what = `API key "${a.id}"`;
      apiKeyList.push({ id: a.id, key: Buffer.from(checkSecret(a.key, what), 'utf8'), scopes: checkScopes(a.scopes, what) });
    });
  }
  return new Keyring(built, apiKeyList, source, fingerprintOf(spec as KeyringFileSpec));
}

/** The keyring described by the RTCSTATS_JWT_* environment variables. */
export function keyringFromSecrets(current: string, previous: readonly string[], next: string | undefined): Keyring {
  const names = ['RTCSTATS_JWT_SECRET', 'RTCSTATS_JWT_PREVIOUS_SECRETS', 'RTCSTATS_JWT_NEXT_SECRET'];
  const entries: [string, string, KeyState][] = [
    [current, names[0], 'current'],
    ...previous.map((s, i): [string, string, KeyState] => [s, `${names[1]}[${i}]`, 'previous']),
    ...(next ? [[next, names[2], 'next'] as [string, string, KeyState]] : []),
  ];
  const seen = new Map<string, string>();
  const keys = entries.map(([secret, name, state]) => {
    try {
      checkSecret(secret, name);
    } catch (err) {
      throw new KeyringError((err as Error).message.replace(`${name}: secret`, `${name}`));
    }
    const kid = deriveKid(secret);
    if (seen.has(kid)) throw new KeyringError(`${name} repeats the secret of ${seen.get(kid)}`);
    seen.set(kid, name);
    return { kid, secret, state };
  });
  return buildKeyring({ keys }, 'environment');
}

/** A kid for a generated key: the date (so operators can tell keys' ages apart) plus a random suffix. */
export function generateKid(now: Date): string {
  return `k-${now.toISOString().slice(0, 10)}-${crypto.randomBytes(3).toString('hex')}`;
}

/** A fresh keyring spec for first start: one current key and one API key that may mint tokens and read key status. */
export function generateKeyringSpec(now: Date): KeyringFileSpec {
  return {
    keys: [{ kid: generateKid(now), secret: generateSecret(), state: 'current' }],
    apiKeys: [{ id: 'default', key: generateSecret(), scopes: ['tokens', 'admin'] }],
  };
}
