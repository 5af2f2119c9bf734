export type SlotRefusal = 'max connections' | 'max connections per ip';

/**
 * Counts open connections, in total and per client address, so the upgrade path can refuse a
 * connection before it costs a WebSocket. Every acquire is paired with one release.
 */
export class ConnectionSlots {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
  ) {}

  get open(): number {
    return this.total;
  }

  /** Takes a slot for `address` (undefined: unknown peer, counted only in the total). */
  acquire(address: string | undefined): SlotRefusal | undefined {
    if (this.total >= this.maxTotal) return 'max connections';
    if (address !== undefined) {
      const n = this.byAddress.get(address) ?? 0;
      if (n >= this.maxPerAddress) return 'max connections per ip';
      this.byAddress.set(address, n + 1);
    }
    this.total++;
    return undefined;
  }

  release(address: string | undefined): void {
    this.total--;
    if (address === undefined) return;
    const n = this.byAddress.get(address) ?? 0;
    if (n <= 1) this.byAddress.delete(address);
    else this.byAddress.set(address, n - 1);
  }
}
