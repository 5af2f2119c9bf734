import crypto from 'node:crypto';

import type { ApiKey } from '../keyring/keyring.js';

const digest = (bytes: Buffer): Buffer => crypto.createHash('sha256').update(bytes).digest();

/**
 * Finds which configured API key a presented credential is, in constant time.
 * Keys are compared as SHA-256 digests, so every comparison has the same length whatever the
 * presented length, and every key is compared (no early exit): the timing tells nothing about
 * which key, or which prefix of a key, was close.
 */
export class ApiKeyMatcher {
  private readonly digests: readonly { apiKey: ApiKey; digest: Buffer }[];

  constructor(keys: readonly ApiKey[]) {
    this.digests = keys.map((k) => ({ apiKey: k, digest: digest(k.key) }));
  }

  get size(): number {
    return this.digests.length;
  }

  /** The matching key, or undefined. `presented` are the raw bytes the client sent. */
  match(presented: Buffer): ApiKey | undefined {
    const candidate = digest(presented);
    let found: ApiKey | undefined;
    for (const k of this.digests) {
      // No return inside the loop: every key is compared whichever matches.
      const equal = crypto.timingSafeEqual(candidate, k.digest);
      if (equal && found === undefined) found = k.apiKey;
    }
    return found;
  }
}
