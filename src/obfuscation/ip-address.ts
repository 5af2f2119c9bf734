/**
 * IP address obfuscation (protocol.md section 6): IPv4 keeps three octets, IPv6 keeps the first
 * three groups of the expanded form, loopback/unspecified addresses and hostnames are kept, and
 * whatever looks like an address but does not parse is masked entirely.
 */

/** Replaces a masked octet or group, and the whole of an unparseable address. */
export const MASK = 'x';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const ZONE = /^[0-9A-Za-z_.~-]+$/;
// RFC 1123 labels (plus `_`, seen in the wild); the last label must not be all digits, so a
// malformed dotted quad such as 300.1.2.3 is never mistaken for a hostname.
const HOSTNAME = /^(?=.{1,253}$)(?:[A-Za-z0-9_-]{1,63}\.)*(?=[A-Za-z0-9_-]*[A-Za-z_-])[A-Za-z0-9_-]{1,63}\.?$/;

/**
 * Strict dotted-decimal IPv4: four octets 0-255. Leading zeros are refused (inet_aton would read
 * them as octal), so such text is masked whole rather than partially kept under a wrong reading.
 */
export function parseIPv4(text: string): number[] | null {
  const m = IPV4.exec(text);
  if (m === null) return null;
  const octets: number[] = [];
  for (let i = 1; i <= 4; i++) {
    const s = m[i];
    if (s.length > 1 && s[0] === '0') return null;
    const n = Number(s);
    if (n > 255) return null;
    octets.push(n);
  }
  return octets;
}

/** Parses `part` (colon-separated groups, an IPv4 tail allowed when `last`) into 16-bit groups. */
function parseGroups(part: string, last: boolean): number[] | null {
  if (part === '') return [];
  const pieces = part.split(':');
  const groups: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (HEX_GROUP.test(p)) {
      groups.push(parseInt(p, 16));
    } else if (last && i === pieces.length - 1 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (v4 === null) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else {
      return null;
    }
  }
  return groups;
}

/**
 * Any RFC 4291 textual form (full, `::`-compressed anywhere, embedded IPv4 tail, any case,
 * optional `%zone`) to its eight 16-bit groups; null when it is not an IPv6 address.
 */
export function parseIPv6(text: string): number[] | null {
  const pct = text.indexOf('%');
  if (pct >= 0 && !ZONE.test(text.slice(pct + 1))) return null;
  const addr = pct >= 0 ? text.slice(0, pct) : text;
  const halves = addr.split('::');
  if (halves.length > 2) return null;
  if (halves.length === 1) {
    const groups = parseGroups(addr, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  const head = parseGroups(halves[0], false);
  const tail = parseGroups(halves[1], true);
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function maskIPv4(text: string, o: readonly number[]): string {
  const local = o[0] === 127 || (o[0] === 0 && o[1] === 0 && o[2] === 0 && o[3] === 0);
  return local ? text : `${o[0]}.${o[1]}.${o[2]}.${MASK}`;
}

function maskIPv6(text: string, g: readonly number[]): string {
  const zeros = (from: number, to: number) => g.slice(from, to).every((v) => v === 0);
  if (zeros(0, 7) && g[7] <= 1) return text; // `::` and `::1`
  if (zeros(0, 5) && g[5] === 0xffff) return maskIPv4(text, [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff]);
  return `${g[0].toString(16)}:${g[1].toString(16)}:${g[2].toString(16)}:${MASK}:${MASK}:${MASK}:${MASK}:${MASK}`;
}

/**
 * Obfuscates one address as found in an address field (candidate address, raddr, stats
 * `address`). Hostnames (mDNS `*.local` included) and the empty string are returned as they are;
 * anything else that is not a parseable address becomes MASK, so nothing unrecognised leaks.
 */
export function obfuscateAddress(text: string): string {
  const v4 = parseIPv4(text);
  if (v4 !== null) return maskIPv4(text, v4);
  if (text.includes(':')) {
    const v6 = parseIPv6(text);
    return v6 === null ? MASK : maskIPv6(text, v6);
  }
  return text === '' || HOSTNAME.test(text) ? text : MASK;
}

// Maximal runs of the characters an address is written with, plus an IPv6 zone. A plain greedy
// character class cannot backtrack, so the scan stays linear even on long hex blobs.
const ADDRESS_RUN = /[0-9A-Fa-f:.]+(?:%[0-9A-Za-z_.~-]+)?/g;
const DOTTED = /\d+(?:\.\d+){3,}/g;
// JSON \u escapes of the characters above: decoded first, so an escaped address is seen too.
const ESCAPED_ADDRESS_CHAR = /\\u00(2[5e]|3[0-9a]|4[1-6]|6[1-6])/gi;

function maskRun(run: string): string {
  const pct = run.indexOf('%');
  const core = pct >= 0 ? run.slice(0, pct) : run;
  if (core.split(':').length > 2) {
    // IPv6-like (two colons or more): a sentence's trailing dots are not part of it.
    const trimmed = run.replace(/\.+$/, '');
    return obfuscateAddress(trimmed) + run.slice(trimmed.length);
  }
  return run.replace(DOTTED, maskDotted);
}

// A part over 255 rules out every reading as an address (octal included), so browser versions
// such as Chrome/120.0.6099.109 survive; anything that could be one is masked.
function maskDotted(quad: string): string {
  const parts = quad.split('.');
  if (parts.length !== 4) return MASK;
  return parts.some((p) => p.length > 3 || Number(p) > 255) ? quad : obfuscateAddress(quad);
}

/**
 * Masks every address-like substring of free text: dotted quads (a run of more than four dotted
 * numbers is masked whole; four numbers one of which is over 255, like a browser version, are kept) and colon-hex runs with at least two colons, which are obfuscated as
 * IPv6 or masked whole when they do not parse. It errs on the side of masking (a clock time such
 * as 12:34:56 becomes x); it is the safety net for text whose structure is unknown.
 */
export function maskAddressesInText(text: string): string {
  const plain = text.includes('\\u00')
    ? text.replace(ESCAPED_ADDRESS_CHAR, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    : text;
  return plain.replace(ADDRESS_RUN, maskRun);
}
