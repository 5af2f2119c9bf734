export interface KidUsage {
  kid: string;
  verifications: number;
  lastVerifiedAt: number;
}

/**
 * Successful verifications per kid and when each kid last verified a token: what tells an
 * operator that a `previous` key is no longer used and can be retired.
 */
export class KeyUsage {
  private readonly byKid = new Map<string, KidUsage>();

  constructor(private readonly now: () => number = Date.now) {}

  record(kid: string): void {
    const entry = this.byKid.get(kid);
    if (entry === undefined) {
      this.byKid.set(kid, { kid, verifications: 1, lastVerifiedAt: this.now() });
    } else {
      entry.verifications++;
      entry.lastVerifiedAt = this.now();
    }
  }

  get(kid: string): KidUsage | undefined {
    const entry = this.byKid.get(kid);
    return entry && { ...entry };
  }

  all(): KidUsage[] {
    return [...this.byKid.values()].map((e) => ({ ...e }));
  }
}
