import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { obfuscateFrame } from './frame-obfuscator.js';
import { maskAddressesInText, obfuscateAddress, parseIPv6 } from './ip-address.js';

const X5 = 'x:x:x:x:x';

describe('obfuscateAddress', () => {
  const table: [string, string, string][] = [
    ['IPv4', '203.0.113.7', '203.0.113.x'],
    ['IPv4 private', '10.1.2.3', '10.1.2.x'],
    ['IPv4 all octets high', '255.255.255.255', '255.255.255.x'],
    ['IPv6 full', '2001:0db8:85a3:0000:0000:8a2e:0370:7334', `2001:db8:85a3:${X5}`],
    ['IPv6 full, no leading zeros', '2001:db8:85a3:0:0:8a2e:370:7334', `2001:db8:85a3:${X5}`],
    ['IPv6 compressed in the middle', '2001:db8:85a3::8a2e:370:7334', `2001:db8:85a3:${X5}`],
    ['IPv6 compressed at the end', 'fd00::', `fd00:0:0:${X5}`],
    ['IPv6 compressed at the end, 7 groups', '1:2:3:4:5:6:7::', `1:2:3:${X5}`],
    ['IPv6 compressed at the start', '::2:3:4:5:6:7:8', `0:2:3:${X5}`],
    ['IPv6 compressed one group', '2001:db8:1:0:1:1:1:1', `2001:db8:1:${X5}`],
    ['IPv6 ULA short', 'fd00::2', `fd00:0:0:${X5}`],
    ['IPv6 link-local with zone', 'fe80::1%eth0', `fe80:0:0:${X5}`],
    ['IPv6 zone, numeric', 'fe80::fc:ff:fe00:1%2', `fe80:0:0:${X5}`],
    ['IPv6 upper case', '2001:DB8:85A3::8A2E:370:7334', `2001:db8:85a3:${X5}`],
    ['IPv6 embedded IPv4 (NAT64)', '64:ff9b::192.0.2.1', `64:ff9b:0:${X5}`],
    ['IPv6 full with embedded IPv4', '2001:db8:1:2:3:4:192.0.2.1', `2001:db8:1:${X5}`],
    ['IPv4-mapped', '::ffff:203.0.113.7', '203.0.113.x'],
    ['IPv4-mapped, upper case', '::FFFF:10.1.2.3', '10.1.2.x'],
    ['IPv4-mapped, hex groups', '::ffff:cb00:7107', '203.0.113.x'],
    ['IPv4-mapped, expanded', '0:0:0:0:0:ffff:203.0.113.7', '203.0.113.x'],
    ['IPv4 loopback', '127.0.0.1', '127.0.0.1'],
    ['IPv4 loopback /8', '127.45.6.7', '127.45.6.7'],
    ['IPv4 unspecified', '0.0.0.0', '0.0.0.0'],
    ['IPv6 loopback', '::1', '::1'],
    ['IPv6 loopback, expanded', '0:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:1'],
    ['IPv6 unspecified', '::', '::'],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['hostname', 'turn.example.org', 'turn.example.org'],
    ['single-label hostname', 'localhost', 'localhost'],
    ['mDNS name', '3f1a9c2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b.local', '3f1a9c2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b.local'],
    ['empty', '', ''],
    ['octet out of range', '300.1.2.3', 'x'],
    ['IPv4 leading zero (octal ambiguity)', '010.1.2.3', 'x'],
    ['three dotted numbers', '1.2.3', 'x'],
    ['five dotted numbers', '1.2.3.4.5', 'x'],
    ['IPv6 bad hex', 'fe80::zz', 'x'],
    ['IPv6 two ::', '1::2::3', 'x'],
    ['IPv6 too many groups', '1:2:3:4:5:6:7:8:9', 'x'],
    ['IPv6 eight groups and ::', '1:2:3:4::5:6:7:8', 'x'],
    ['IPv6 five hex digits', '2001:0db80::1', 'x'],
    ['IPv6 trailing colon', 'fd00::2:', 'x'],
    ['IPv6 bad embedded IPv4', '::ffff:1.2.3.256', 'x'],
    ['IPv6 empty zone', 'fe80::1%', 'x'],
    ['address with port', '192.0.2.2:5000', 'x'],
    ['bracketed IPv6', '[2001:db8::1]', 'x'],
  ];
  for (const [name, input, expected] of table) {
    it(`${name}: ${input || '(empty)'} -> ${expected || '(empty)'}`, () => {
      assert.equal(obfuscateAddress(input), expected);
    });
  }

  it('parses every textual form of one address to the same groups', () => {
    const groups = [0x2001, 0xdb8, 0, 0, 0, 0, 0xc000, 0x201];
    for (const form of [
      '2001:db8::c000:201',
      '2001:0DB8:0000:0000:0000:0000:C000:0201',
      '2001:db8:0:0:0:0:c000:201',
      '2001:db8::192.0.2.1',
      '2001:db8:0::0:192.0.2.1%en0',
    ]) {
      assert.deepEqual(parseIPv6(form), groups, form);
    }
  });
});

describe('maskAddressesInText', () => {
  it('masks dotted quads and IPv6 in free text, keeps loopback, ports and hostnames', () => {
    assert.equal(
      maskAddressesInText('from 192.0.2.2:5000 and [fd00::2]:9 via turn.example.org, lo 127.0.0.1 ::1, end fe80::1%eth0.'),
      'from 192.0.2.x:5000 and [fd00:0:0:x:x:x:x:x]:9 via turn.example.org, lo 127.0.0.1 ::1, end fe80:0:0:x:x:x:x:x.',
    );
  });

  it('masks malformed address-like text whole', () => {
    assert.equal(maskAddressesInText('a 300.1.2.3 b 1.2.3.4.5 c fe80::1::2 d 12:34:56'), 'a 300.1.2.3 b x c x d x');
    assert.equal(maskAddressesInText('Chrome/120.0.6099.109 Safari/537.36 at 010.0.2.2'), 'Chrome/120.0.6099.109 Safari/537.36 at x');
  });

  it('sees addresses hidden behind JSON \\u escapes', () => {
    assert.equal(maskAddressesInText('"192\\u002e0.2.2"'), '"192.0.2.x"');
  });
});

// Property: no public address survives obfuscateFrame in any textual form it was written in.

const hex = (n: number, pad: boolean) => n.toString(16).padStart(pad ? 4 : 1, '0');
const dotted = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/** [start, end) of each run of zero groups. */
function zeroRuns(g: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== 0) continue;
    let j = i;
    while (j < g.length && g[j] === 0) j++;
    runs.push([i, j]);
    i = j;
  }
  return runs;
}

interface Form {
  pad: boolean;
  /** Which zero run `::` replaces (modulo their number); null: no compression. */
  compress: number | null;
  upper: boolean;
  v4tail: boolean;
  zone: boolean;
}

function render(g: readonly number[], f: Form): string {
  const n = f.v4tail ? 6 : 8;
  const parts = g.slice(0, n).map((v) => hex(v, f.pad));
  const runs = zeroRuns(g.slice(0, n));
  let text = parts.join(':');
  if (f.compress !== null && runs.length > 0) {
    const [s, e] = runs[f.compress % runs.length];
    text = `${parts.slice(0, s).join(':')}::${parts.slice(e).join(':')}`;
  }
  if (f.v4tail) text += (text.endsWith('::') ? '' : ':') + dotted(g[6], g[7]);
  if (f.zone) text += '%eth0';
  return f.upper ? text.toUpperCase() : text;
}

/** Every way the address could be written (lower case): none may appear in the output. */
function allForms(g: readonly number[]): string[] {
  const forms: string[] = [];
  for (const pad of [false, true]) {
    for (const v4tail of [false, true]) {
      const n = zeroRuns(g.slice(0, v4tail ? 6 : 8)).length;
      for (let c = -1; c < n; c++) forms.push(render(g, { pad, compress: c < 0 ? null : c, upper: false, v4tail, zone: false }));
    }
  }
  return forms;
}

const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const publicV6 = fc
  .array(group, { minLength: 8, maxLength: 8 })
  .filter((g) => !(g.slice(0, 7).every((v) => v === 0) && g[7] <= 1)) // :: and ::1
  .filter((g) => !(g.slice(0, 5).every((v) => v === 0) && g[5] === 0xffff)); // IPv4-mapped
const form = fc.record({
  pad: fc.boolean(),
  compress: fc.option(fc.nat(7)),
  upper: fc.boolean(),
  v4tail: fc.boolean(),
  zone: fc.boolean(),
});
const publicV4 = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
  .filter(([a, b, c, d]) => a !== 127 && a + b + c + d !== 0);

/** The frames an address can reach the server in, and where its obfuscated form ends up. */
function framesWith(addr: string): { frame: string; masked: (out: string) => string[] }[] {
  const host = `candidate:842163049 1 udp 1677729535 ${addr} 61665 typ host generation 0 ufrag sK8r network-id 1`;
  const srflx = `candidate:3 1 udp 1686052607 ${addr} 50000 typ srflx raddr ${addr} rport 61665 generation 0`;
  const relay = `candidate:4 1 udp 41885439 turn.example.org 3478 typ relay raddr ${addr} rport 61665`;
  const tokens = (s: string) => s.split(' ');
  return [
    {
      frame: JSON.stringify([20, 'PC_0', { candidate: host, sdpMid: '0', sdpMLineIndex: 0 }, 7]),
      masked: (out) => [tokens(JSON.parse(out)[2].candidate)[4]],
    },
    {
      frame: JSON.stringify([10, 'PC_1', { candidate: srflx, sdpMid: '0', sdpMLineIndex: 0 }, '10-0', 0]),
      masked: (out) => {
        const t = tokens(JSON.parse(out)[2].candidate);
        return [t[4], t[9]];
      },
    },
    {
      frame: JSON.stringify([3, 'PC_0', { type: 'offer', sdp: `v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=${relay}\r\na=${host}\r\n` }, '2-0', 4]),
      masked: (out) => {
        const lines = (JSON.parse(out)[2].sdp as string).split('\r\n');
        return [tokens(lines[2])[9], tokens(lines[3])[4]];
      },
    },
    {
      frame: JSON.stringify(['g', 'PC_0', { '5': { '134': addr, '136': 'host', type: 8 }, '6': { '134': addr }, '7': { '141': addr, address: addr, candidateType: 'srflx' }, t: 1 }, 1000]),
      masked: (out) => {
        const v = JSON.parse(out)[2];
        return [v['5']['134'], v['6']['134'], v['7']['141'], v['7'].address];
      },
    },
    {
      // Not JSON (truncated): only the text scan stands between the address and the disk.
      frame: JSON.stringify([20, 'PC_0', { candidate: host }, 7]).slice(0, -5),
      masked: () => [],
    },
  ];
}

function assertMasked(forms: string[], expected: string): void {
  for (const { frame, masked } of framesWith(forms[0])) {
    const result = obfuscateFrame(Buffer.from(frame));
    const out = typeof result === 'string' ? result : result.toString();
    const lower = out.toLowerCase();
    for (const f of forms) assert.ok(!lower.includes(f.toLowerCase()), `${f} survives in ${out}`);
    for (const m of masked(out)) assert.equal(m, expected, out);
  }
}

describe('obfuscateFrame property: no public address survives', () => {
  it('IPv6 in any textual form', () => {
    fc.assert(
      fc.property(publicV6, form, (g, f) => {
        const written = render(g, f);
        const forms = [written, ...allForms(g)];
        if (f.v4tail) forms.push(dotted(g[6], g[7]));
        assertMasked(forms, `${hex(g[0], false)}:${hex(g[1], false)}:${hex(g[2], false)}:${X5}`);
      }),
      { numRuns: 500 },
    );
  });

  it('IPv4, plain or IPv4-mapped', () => {
    const v4form = fc.constantFrom('plain', 'mapped', 'MAPPED', 'mapped-hex', 'mapped-full');
    fc.assert(
      fc.property(publicV4, v4form, ([a, b, c, d], f) => {
        const quad = `${a}.${b}.${c}.${d}`;
        const hi = (a << 8) | b;
        const lo = (c << 8) | d;
        const written = {
          plain: quad,
          mapped: `::ffff:${quad}`,
          MAPPED: `::FFFF:${quad}`,
          'mapped-hex': `::ffff:${hex(hi, false)}:${hex(lo, false)}`,
          'mapped-full': `0:0:0:0:0:ffff:${quad}`,
        }[f];
        assertMasked([written, quad], `${a}.${b}.${c}.x`);
      }),
      { numRuns: 500 },
    );
  });
});
