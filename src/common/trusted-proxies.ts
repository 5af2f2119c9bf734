import net from 'node:net';

/** Raised for an invalid proxy list; the message names the offending entry. */
export class TrustedProxiesError extends Error {}

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** `::ffff:a.b.c.d` (how a dual-stack socket reports IPv4 peers) as plain IPv4. */
function normalize(address: string): string {
  const m = MAPPED_V4.exec(address);
  return m ? m[1] : address;
}

/**
 * The proxies (load balancers) whose X-Forwarded-For is believed. The client address is the
 * rightmost hop that is not a trusted proxy: everything left of it was written by the client
 * and can be forged.
 */
export class TrustedProxies {
  private readonly list = new net.BlockList();
  readonly size: number;

  /** Entries are addresses or CIDR ranges, IPv4 or IPv6. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address, prefix, extra] = entry.split('/');
      const family = net.isIP(address);
      const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
      if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || prefix === '') {
        throw new TrustedProxiesError(`"${entry}" is not an IP address or CIDR range`);
      }
      this.list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.size = entries.length;
  }

  isTrusted(address: string): boolean {
    const a = normalize(address);
    const family = net.isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client's address given the socket peer and the X-Forwarded-For header(s). */
  clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    if (peer === undefined) return undefined;
    const p = normalize(peer);
    if (this.size === 0 || forwardedFor === undefined || !this.isTrusted(p)) return p;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((h) => h.trim())
      .filter((h) => h !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!this.isTrusted(hops[i])) return normalize(hops[i]);
    }
    // Every hop is a trusted proxy: the leftmost one is as close to the client as we can tell.
    return hops.length > 0 ? normalize(hops[0]) : p;
  }
}
