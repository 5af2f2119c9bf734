import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { FIXTURES } from '../../test/helpers.js';
import { obfuscateCandidate, obfuscateFrame, obfuscateSdp } from './frame-obfuscator.js';

const HOST_V4 = '192.0.2.2';
const HOST_V6 = 'fd00::2';
const MASKED_V4 = '192.0.2.x';
const MASKED_V6 = 'fd00:0:0:x:x:x:x:x';
/** Every way the recording machine's host addresses could be written. */
const LEAKS = [
  HOST_V4,
  HOST_V6,
  'fd00:0:0:0:0:0:0:2',
  'fd00:0000:0000:0000:0000:0000:0000:0002',
  'fd00::0002',
  '::ffff:192.0.2.2',
  '::ffff:c000:202',
];

function fixtureFrames(name: string): string[] {
  return fs.readFileSync(path.join(FIXTURES, 'rtcstats', name), 'utf8').replace(/\n$/, '').split('\n');
}

function run(frame: string): string {
  const out = obfuscateFrame(Buffer.from(frame));
  return typeof out === 'string' ? out : out.toString('utf8');
}

function assertNoLeak(text: string): void {
  const lower = text.toLowerCase();
  for (const leak of LEAKS) assert.ok(!lower.includes(leak), `${leak} leaks in ${text}`);
}

for (const name of ['chrome-loopback-30s.frames.jsonl', 'chrome-loopback-90s.frames.jsonl']) {
  describe(`replaying ${name}`, () => {
    const frames = fixtureFrames(name);
    const results = frames.map((f) => {
      const input = Buffer.from(f);
      return { frame: f, input, output: obfuscateFrame(input) };
    });
    const changed = results.filter((r) => r.output !== r.input);

    it('leaves no host address in any form', () => {
      for (const { output } of results) assertNoLeak(output.toString());
    });

    it('returns every frame without an address as the same Buffer', () => {
      for (const { frame, input, output } of results) {
        if (!frame.includes(HOST_V4) && !frame.includes(HOST_V6)) assert.equal(output, input, frame);
      }
    });

    it('changes frames with an address only where the address was', () => {
      // 4 candidates per address family (20 and 10 for both PCs) and the first getStats per PC.
      assert.equal(changed.length, 10);
      for (const { frame, output } of changed) {
        assert.equal(typeof output, 'string');
        const restored = (output as string).replaceAll(MASKED_V4, HOST_V4).replaceAll(MASKED_V6, HOST_V6);
        assert.equal(restored, frame);
      }
    });

    it('keeps the candidate text as Chrome wrote it around the masked address', () => {
      const candidates = changed.filter((r) => r.frame.startsWith('[20,') || r.frame.startsWith('[10,'));
      assert.equal(candidates.length, 8);
      for (const { output } of candidates) {
        const candidate = JSON.parse(output as string)[2].candidate as string;
        assert.match(candidate, /^candidate:\d+ 1 udp \d+ (192\.0\.2\.x|fd00:0:0:x:x:x:x:x) \d+ typ host generation 0 ufrag \w+ network-id [12]$/);
      }
    });

    it('masks the getStats candidate addresses', () => {
      const stats = changed.filter((r) => r.frame.startsWith('["g",'));
      assert.equal(stats.length, 2);
      for (const { output } of stats) {
        const reports = Object.values(JSON.parse(output as string)[2] as Record<string, Record<string, unknown>>);
        const addresses = reports.filter((r) => r !== null && typeof r === 'object' && '134' in r).map((r) => r['134']);
        assert.ok(addresses.length >= 2);
        for (const a of addresses) assert.ok(a === MASKED_V4 || a === MASKED_V6, String(a));
      }
    });
  });
}

describe('candidates', () => {
  it('keeps relay addresses and masks raddr', () => {
    const relay = 'candidate:4 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.7 rport 61665 generation 0 network-id 1';
    const frame = `[20,"PC_0",{"candidate":"${relay}","sdpMid":"0","sdpMLineIndex":0},3]`;
    assert.equal(run(frame), frame.replace('raddr 203.0.113.7', 'raddr 203.0.113.x'));
  });

  it('masks srflx address and raddr, keeps tcp candidates intact otherwise', () => {
    assert.equal(
      obfuscateCandidate('candidate:3 1 udp 1686052607 203.0.113.7 50000 typ srflx raddr 192.0.2.2 rport 61665 generation 0'),
      'candidate:3 1 udp 1686052607 203.0.113.x 50000 typ srflx raddr 192.0.2.x rport 61665 generation 0',
    );
    assert.equal(
      obfuscateCandidate('candidate:5 1 tcp 1518280447 2001:db8:85a3::7334 9 typ host tcptype active generation 0'),
      'candidate:5 1 tcp 1518280447 2001:db8:85a3:x:x:x:x:x 9 typ host tcptype active generation 0',
    );
  });

  it('keeps mDNS names and Firefox unspecified raddr', () => {
    const mdns = 'candidate:0 1 UDP 2122252543 3f1a9c2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b.local 54321 typ host';
    const ff = 'candidate:1 1 UDP 1686052863 203.0.113.7 54321 typ srflx raddr 0.0.0.0 rport 0';
    assert.equal(obfuscateCandidate(mdns), mdns);
    assert.equal(obfuscateCandidate(ff), ff.replace('203.0.113.7', '203.0.113.x'));
  });

  it('returns end-of-candidates and null candidates unchanged', () => {
    for (const frame of ['[20,"PC_0",null,5]', '[20,"PC_0",{"candidate":"","sdpMid":"0"},5]']) {
      const input = Buffer.from(frame);
      assert.equal(obfuscateFrame(input), input);
    }
  });

  it('falls back to the text scan for a candidate of unexpected shape', () => {
    assert.equal(run('[10,"PC_0",{"candidate":["192.0.2.2",1]},"10-0",1]'), '[10,"PC_0",{"candidate":["192.0.2.x",1]},"10-0",1]');
    assert.equal(obfuscateCandidate('candidate:1 1 udp 1 192.0.2.2 9'), 'candidate:1 1 udp 1 192.0.2.x 9');
  });
});

describe('SDP', () => {
  const offer = fixtureFrames('chrome-loopback-30s.frames.jsonl').find((f) => f.startsWith('[3,'))!;

  it('leaves the fixture SDP (already 0.0.0.0) byte-identical', () => {
    const input = Buffer.from(offer);
    assert.equal(obfuscateFrame(input), input);
  });

  it('rewrites c= and a=rtcp: lines and candidate lines, nothing else', () => {
    const sdp = JSON.parse(offer)[2].sdp as string;
    const dirty = sdp
      .replace('c=IN IP4 0.0.0.0', 'c=IN IP4 192.0.2.2')
      .replace('a=rtcp:9 IN IP4 0.0.0.0', 'a=rtcp:50000 IN IP6 fd00::2')
      .replace(
        'a=ice-ufrag:',
        'a=candidate:1 1 udp 2122194687 192.0.2.2 33854 typ host generation 0\r\n' +
          'a=candidate:4 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.7 rport 33854\r\na=ice-ufrag:',
      );
    const expected = sdp.replace(
      'a=ice-ufrag:',
      'a=candidate:1 1 udp 2122194687 192.0.2.x 33854 typ host generation 0\r\n' +
        'a=candidate:4 1 udp 41885439 198.51.100.9 3478 typ relay raddr 203.0.113.x rport 33854\r\na=ice-ufrag:',
    );
    assert.equal(obfuscateSdp(dirty), expected);
    const frame = offer.replace(JSON.stringify(sdp), JSON.stringify(dirty));
    assert.equal(run(frame), offer.replace(JSON.stringify(sdp), JSON.stringify(expected)));
  });

  it('masks host addresses in o= lines, keeps the 127.0.0.1 Chrome writes', () => {
    assert.equal(obfuscateSdp('v=0\r\no=- 1 2 IN IP4 192.0.2.2\r\n'), 'v=0\r\no=- 1 2 IN IP4 192.0.2.x\r\n');
    assert.equal(obfuscateSdp('v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n'), 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n');
  });
});

describe('getStats', () => {
  it('masks address unless relay, relatedAddress always, removes ip, keeps the rest byte for byte', () => {
    const frame =
      '["g","PC_0",{"5":{"116":"udp","134":"192.0.2.2","135":1,"136":"host","ip":"192.0.2.2","type":8},' +
      '"6":{"134":"198.51.100.9","136":"relay","141":"203.0.113.7","type":8},' +
      '"7":{"134":"203.0.113.8"},"8":null,"9":{"80":2},' +
      '"10":{"address":"fd00::2","relatedAddress":"2001:db8:85a3::1","candidateType":"srflx","ip":"fd00::2"},' +
      '"11":{"ip":"192.0.2.2"},"t":1795841086594},"connected-0",1000]';
    const expected =
      '["g","PC_0",{"5":{"116":"udp","134":"192.0.2.x","135":1,"136":"host","type":8},' +
      '"6":{"134":"198.51.100.9","136":"relay","141":"203.0.113.x","type":8},' +
      '"7":{"134":"203.0.113.x"},"8":null,"9":{"80":2},' +
      '"10":{"address":"fd00:0:0:x:x:x:x:x","relatedAddress":"2001:db8:85a3:x:x:x:x:x","candidateType":"srflx"},' +
      '"11":{},"t":1795841086594},"connected-0",1000]';
    assert.equal(run(frame), expected);
  });

  it('removes an ip holding no address, in any position', () => {
    assert.equal(run('["g","PC_0",{"1":{"ip":"a.local","ip":null,"80":1,"ip":"","81":2,"ip":1}},5]'), '["g","PC_0",{"1":{"80":1,"81":2}},5]');
  });

  it('returns deltas without an address as the same Buffer', () => {
    const input = Buffer.from('["g","PC_0",{"2":{"41":3451,"76":0.003,"80":2332},"t":1795841086622},1000]');
    assert.equal(obfuscateFrame(input), input);
  });
});

describe('frames that are not JSON', () => {
  it('are masked by the text scan', () => {
    const frames = fixtureFrames('chrome-loopback-30s.frames.jsonl');
    const candidate = frames.find((f) => f.startsWith('[20,') && f.includes(HOST_V6))!;
    const stats = frames.find((f) => f.startsWith('["g",') && f.includes(HOST_V4))!;
    for (const truncated of [candidate.slice(0, -3), stats.slice(0, 1500), `garbage ${HOST_V4} and ${HOST_V6}`]) {
      const out = run(truncated);
      assertNoLeak(out);
      assert.ok(out.includes(MASKED_V4) || out.includes(MASKED_V6), out);
    }
  });

  it('are returned as the same Buffer when nothing in them looks like an address', () => {
    const input = Buffer.from('[39,null,{"truncated":');
    assert.equal(obfuscateFrame(input), input);
  });

  it('never throw', () => {
    for (const odd of ['', '"192.0.2.2"', '{"134":"192.0.2.2"}', '[20]', '[20,"PC_0","192.0.2.2",1]', '["g","PC_0",[1,"192.0.2.2"],1]', '\u00ff\u0000 1.2.3.4']) {
      const out = run(odd);
      assert.ok(!out.includes('1.2.3.4') && !out.includes(HOST_V4), out);
    }
  });
});

describe('every method that can carry an address (spec/stats-encoding.md table A, plain names, others)', () => {
  const EXTERNAL = '203.0.113.7';
  const MASKED = '203.0.113.x';

  it('onicecandidateerror: the local address (and a legacy hostCandidate) masked, the STUN/TURN url kept', () => {
    for (const method of ['21', '"onicecandidateerror"']) {
      const frame = `[${method},"PC_0",{"address":"${EXTERNAL}","port":54321,"url":"stun:198.51.100.9:3478","errorCode":701,"errorText":"STUN binding request timed out."},5]`;
      assert.equal(run(frame), frame.replace(EXTERNAL, MASKED), method);
      const legacy = `[${method},"PC_0",{"hostCandidate":"${EXTERNAL}:54321","url":"turn:198.51.100.9:3478","errorCode":701},5]`;
      assert.equal(run(legacy), legacy.replace(EXTERNAL, MASKED), `${method} hostCandidate`);
      const v6 = `[${method},"PC_0",{"address":"${HOST_V6}","port":1,"url":"stun:s.example:3478"},5]`;
      assert.equal(run(v6), v6.replace(HOST_V6, MASKED_V6), `${method} IPv6`);
    }
  });

  it('getStats from older clients (method 1) like "g"', () => {
    const frame = `[1,"PC_0",{"3":{"type":7,"134":"${EXTERNAL}","136":"host","135":5000}},7]`;
    assert.equal(run(frame), frame.replace(EXTERNAL, MASKED));
  });

  it('failure callbacks and methods outside the table get the text scan', () => {
    const frames = [
      `[16,"PC_0","OperationError: Failed to add candidate:1 1 udp 2122260223 ${EXTERNAL} 50000 typ host",3]`,
      `["addIceCandidateOnFailure","PC_0","candidate ${EXTERNAL} refused",3]`,
      `[65,null,"NotAllowedError ${EXTERNAL}",3]`,
      `["logs",null,"ICE failed for ${EXTERNAL}",3]`,
      `[":app-event",null,{"peer":"${EXTERNAL}"},3]`,
      `["connectionInfo",null,{"remote":"${EXTERNAL}"},3]`,
      `[99,"PC_0",{"x":"${EXTERNAL}"},3]`,
      `[{"weird":"${EXTERNAL}"},null,null,3]`,
    ];
    for (const frame of frames) assert.equal(run(frame), frame.replace(EXTERNAL, MASKED), frame);
  });

  it('keeps methods whose values hold no client address byte-identical (TURN servers in a configuration stay)', () => {
    const frames = [
      `[39,"PC_0",{"iceServers":[{"urls":["turn:198.51.100.9:3478?transport=udp"]}]},25]`,
      `["setConfiguration","PC_0",{"iceServers":[{"urls":"stun:198.51.100.9:3478"}]},25]`,
      `[23,"PC_0","have-local-offer",2]`,
      `[66,null,[{"kind":"audioinput","label":"Mic 12:34:56"}],1]`,
    ];
    for (const frame of frames) {
      const input = Buffer.from(frame);
      assert.equal(obfuscateFrame(input), input, frame);
    }
  });
});

describe('fast paths keep the guarantees (adversarial frames)', () => {
  const HOST_CANDIDATE = `candidate:1 1 udp 2122260223 ${HOST_V4} 50000 typ host`;
  const MDNS_CANDIDATE = 'candidate:2 1 udp 2122260223 3f1a9c2e.local 50001 typ host';

  it('masks a candidate hidden under an escaped duplicate key, whichever comes last', () => {
    const frames = [
      `[20,"PC_0",{"c\\u0061ndidate":"${HOST_CANDIDATE}","candidate":"${MDNS_CANDIDATE}"},3]`,
      `[20,"PC_0",{"candidate":"${HOST_CANDIDATE}","c\\u0061ndidate":"${MDNS_CANDIDATE}"},3]`,
      `[20,"PC_0",{"candidate":"${HOST_CANDIDATE}","candidate":"${MDNS_CANDIDATE}"},3]`,
    ];
    for (const frame of frames) assert.equal(run(frame), frame.replace(HOST_V4, MASKED_V4), frame);
  });

  it('masks an SDP hidden under an escaped duplicate key', () => {
    const frame = '[3,"PC_0",{"sdp":"v=0\\r\\nc=IN IP4 192.0.2.2\\r\\n","sd\\u0070":"v=0\\r\\nc=IN IP4 0.0.0.0\\r\\n"},3]';
    assert.equal(run(frame), frame.replace('c=IN IP4 192.0.2.2', 'c=IN IP4 0.0.0.0'));
  });

  it('checks every SDP line that only looks like the 0.0.0.0 form', () => {
    const cases: [string, string][] = [
      ['c=IN IP4 0.0.0.0 192.0.2.2', 'c=IN IP4 0.0.0.0'],
      ['c=IN IP4 0.0.0.0\u2028192.0.2.2', 'c=IN IP4 0.0.0.0'],
      ['a=rtcp:9 IN IP4 0.0.0.0.1', 'a=rtcp:9 IN IP4 0.0.0.0'],
      ['o=- 1 2 IN IP4 127.0.0.1 fd00::2', 'o=- 1 2 IN IP4 127.0.0.1 fd00:0:0:x:x:x:x:x'],
      ['o=fd00::2 1 2 IN IP4 127.0.0.1', 'o=fd00:0:0:x:x:x:x:x 1 2 IN IP4 127.0.0.1'],
      ['o=- 1 2 IN IP6 fd00::2', 'o=- 1 2 IN IP6 fd00:0:0:x:x:x:x:x'],
    ];
    for (const [line, expected] of cases) {
      for (const eol of ['\r\n', '\n', '\r', '']) {
        const sdp = `v=0\r\n${line}${eol}`;
        assert.equal(obfuscateSdp(sdp), `v=0\r\n${expected}${eol}`, JSON.stringify(sdp));
        const frame = JSON.stringify([3, 'PC_0', { type: 'offer', sdp }, 2]);
        assertNoLeak(run(frame));
      }
    }
    const chrome = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n';
    assert.equal(obfuscateSdp(chrome), chrome);
  });

  it('finds stats address keys escaped anywhere, with or without other backslashes in the frame', () => {
    const frames = [
      `["g","PC_0",{"5":{"\\u0031\\u00334":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"\\u0061ddress":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"rel\\u0061tedAddress":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"4":{"x":"a\\"b\\\\"},"5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"relatedAddress":"${HOST_V6}","address":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"141":"${HOST_V6}"},"5":{"80":1}},1]`,
    ];
    for (const frame of frames) {
      const out = run(frame);
      assertNoLeak(out);
      assert.ok(out.includes(MASKED_V4) || out.includes(MASKED_V6), out);
    }
    const ip = `["g","PC_0",{"5":{"i\\u0070":"${HOST_V4}","80":1}},1]`;
    assert.equal(run(ip), '["g","PC_0",{"5":{"80":1}},1]');
  });

  it('rewrites frames that are not ASCII at the right place', () => {
    const frame = `["g","PC_é😀",{"5":{"label":"Mikrofon (Gerät)","134":"${HOST_V4}","136":"host"}},1]`;
    assert.equal(run(frame), frame.replace(HOST_V4, MASKED_V4));
    const candidate = `[20,"PC_ü",{"candidate":"${HOST_CANDIDATE}","usernameFragment":"ü"},3]`;
    assert.equal(run(candidate), candidate.replace(HOST_V4, MASKED_V4));
  });
});

describe('adversarial frames leave no host address', () => {
  const CANDIDATE = `candidate:1 1 udp 2122260223 ${HOST_V4} 50000 typ host`;

  it('masks an address key nested inside a report or inside a report that is an array', () => {
    const frames = [
      `["g","PC_0",{"5":[{"134":"${HOST_V4}"}]},1]`,
      `["g","PC_0",{"5":{"x":{"134":"${HOST_V4}"}}},1]`,
      `["g","PC_0",{"5":{"x":[{"address":"${HOST_V6}"}],"80":1}},1]`,
      `["g","PC_0",{"5":{"x":{"i\\u0070":"${HOST_V4}"}}},1]`,
      `["getStats","PC_0",{"5":[["relatedAddress","${HOST_V6}"]]},1]`,
    ];
    for (const frame of frames) {
      const out = run(frame);
      assertNoLeak(out);
      assert.ok(out.includes(MASKED_V4) || out.includes(MASKED_V6), out);
    }
  });

  it('keeps nested values without an address key, and relay addresses, as they were', () => {
    for (const frame of [
      `["g","PC_0",{"5":{"96":{"none":2.041},"134":"198.51.100.9","136":"relay"}},1]`,
      `["g","PC_0",{"5":{"x":{"label":"12:34:56"},"134":"${HOST_V4}"}},1]`,
    ]) {
      assert.equal(run(frame), frame.replace(HOST_V4, MASKED_V4), frame);
    }
  });

  it('masks addresses in valid frames written in unusual ways', () => {
    const frames = [
      `[ "g" ,\t"PC_0" ,\r\n{ "5" : { "134" : "${HOST_V4}" , "136" :"host" } } , 1 ]`,
      `["g","PC_0",{"5":{"x":"a\\"134\\":\\"","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"136":"relay","136":"host","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"13\\u0036":"relay","136":"host","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"134":"192.0.2.\\u0032"}},1]`,
      `["g","PC_0",{"5":{"134":"::ffff:${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"134":["${HOST_V4}"]}},1e5]`,
      `[1e1,"PC_0",{"candidate":"${CANDIDATE}"},1]`,
      `[10.0,"PC_0",{"candidate":"${CANDIDATE}"},1]`,
      `[20,"PC_0",{"candidate":"${CANDIDATE.replace('2', '\\u0032')}"},1]`,
      `[20,"PC_é",{"c\\u0061ndidate":"${CANDIDATE}","label":"Gerät 😀"},1]`,
      `[3,"PC_0",{"sdp":"v=0\\u000d\\u000ac=IN IP4 ${HOST_V4}\\r\\n"},1]`,
      `[3,"PC_0",{"sdp":"v=0\\r\\na=candidate:${CANDIDATE.slice(10)}\\r\\n","sdp":"v=0"},1]`,
      `[21,"PC_0",{"\\u0061ddress":"${HOST_V6}","url":"stun:198.51.100.9:3478"},1]`,
    ];
    for (const frame of frames) {
      JSON.parse(frame);
      assertNoLeak(run(frame));
    }
  });

  it('masks addresses in frames that are not valid JSON', () => {
    const frames = [
      `["g","PC_0",{"5":{"134":"${HOST_V4}"}},1`,
      `["g","PC_0",{"5":{"134":"${HOST_V4}"}},01]`,
      `["g","PC_0",{"5":{"134":"${HOST_V4}",}},1]`,
      `\ufeff["g","PC_0",{"5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"134":"${HOST_V4}"}},1]\n["g","PC_0",{"5":{"134":"${HOST_V6}"}},1]`,
      `["g","PC_0",{"5":{"x":"\u0001","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"x":"\\x","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"x":"a"134":"${HOST_V4}"}},1]`,
      `[20,"PC_0",{"candidate":"${CANDIDATE}"}1]`,
      `[20,"PC_0",{'candidate':'${CANDIDATE}'},1]`,
      `[3,"PC_0",{"sdp":"v=0\\r\\nc=IN IP4 ${HOST_V4}\r\n"},1]`,
    ];
    for (const frame of frames) {
      assert.throws(() => JSON.parse(frame), frame);
      assertNoLeak(run(frame));
    }
  });

  it('masks every prefix of the fixture frames that carry an address (truncated frames)', () => {
    const frames = fixtureFrames('chrome-loopback-90s.frames.jsonl').filter((f) => f.includes(HOST_V4) || f.includes(HOST_V6));
    assert.equal(frames.length, 10);
    for (const frame of frames) {
      for (let end = 1; end < frame.length; end++) assertNoLeak(run(frame.slice(0, end)));
    }
  });
});

describe('getStats frames walked without a full parse', () => {
  /** The same frame through the path that parses it whole first (method 1.0 is not the stats head the walk takes). */
  function parsedPath(frame: string): string {
    assert.ok(frame.startsWith('["g",'));
    return `["g",${run(`[1.0,${frame.slice(5)}`).slice(5)}`;
  }
  /** A host address still under an address key: what the stats rewrite must never leave. */
  const UNDER_KEY = new RegExp(
    `"(?:134|141|ip|address|relatedAddress)"\\s*:\\s*"(?:${LEAKS.map((l) => l.replaceAll('.', '\\.')).join('|')})"`,
    'i',
  );
  const statsWithHost = fixtureFrames('chrome-loopback-90s.frames.jsonl').filter((f) => f.startsWith('["g",') && f.includes(HOST_V4));

  it('rewrites valid frames exactly as the parsed path does', () => {
    assert.equal(statsWithHost.length, 2);
    const frames = [
      ...statsWithHost,
      `["g","ip",{"5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"80":1}},{"134":"${HOST_V4}"}]`,
      `["g","PC_0",{"5":{"80":1},"6":{"134":"${HOST_V4}"}},"\\u0031"]`,
      `["g","PC_0",{"134":{"80":1},"6":{"x":{"address":"${HOST_V6}"}},"7":"${HOST_V4}","8":["relatedAddress"]},1]`,
    ];
    for (const frame of frames) {
      JSON.parse(frame);
      assert.equal(run(frame), parsedPath(frame), frame);
    }
  });

  it('sends frames whose separators are not JSON to the text scan', () => {
    const frames = [
      `["g","PC_0",{"4":{"80":1} "5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":"a"134":"${HOST_V4}"},1]`,
      `["g","PC_0",{"5":{"80":1}}{"134":"${HOST_V4}"}]`,
      `["g","PC_0",{5:{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5" {"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":,"6":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"4":{"a":[1}],"5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"4":{"a":"x},"5":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"4":{"a":"\\"},"5":{"\\u0031\\u00334":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"134":"${HOST_V4}","x":01}},1]`,
      `["g","PC_0",{"5":{"134":"${HOST_V4}"},"6":{"141":"${HOST_V6}"}`,
      `\u00a0["g","PC_0",{"5":{"134":"${HOST_V4}"}},1]`,
    ];
    for (const frame of frames) {
      assert.throws(() => JSON.parse(frame), frame);
      assertNoLeak(run(frame));
    }
  });

  it('leaves no host address under an address key after any one-byte deletion or insertion', () => {
    for (const frame of statsWithHost) {
      for (let i = 0; i < frame.length; i++) {
        const variants = [frame.slice(0, i) + frame.slice(i + 1), ...[',', ':', '{', '}', '[', '"', '\\'].map((c) => frame.slice(0, i) + c + frame.slice(i))];
        for (const variant of variants) {
          const out = run(variant);
          assert.doesNotMatch(out, UNDER_KEY, variant);
          let valid = true;
          try {
            JSON.parse(variant);
          } catch {
            valid = false;
          }
          if (valid && variant.startsWith('["g",')) assert.equal(out, parsedPath(variant), variant);
        }
      }
    }
  });
});

describe('the byte pre-check of getStats frames (no latin1 string without a key hit)', () => {
  /**
   * A head longer than the pre-check's byte window sends a frame down the full path (latin1 text
   * and regexes), and leading whitespace changes nothing else: every frame must come out of the
   * byte pre-check exactly as it does out of that path.
   */
  const PAD = ' '.repeat(200);
  function assertSameAsTextPath(frame: Buffer, what: string): 'kept' | 'rewritten' {
    const out = obfuscateFrame(frame);
    const padded = Buffer.concat([Buffer.from(PAD), frame]);
    const ref = obfuscateFrame(padded);
    if (ref === padded) {
      assert.equal(out, frame, what);
      return 'kept';
    }
    assert.equal(typeof out === 'string' ? out : out.toString('utf8'), ref.toString().slice(PAD.length), what);
    return 'rewritten';
  }
  function lines(file: string): Buffer[] {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => Buffer.from(l));
  }

  it('stores every fixture and bench frame as the text path does', () => {
    const frames = [
      ...lines(path.join(FIXTURES, 'rtcstats', 'chrome-loopback-30s.frames.jsonl')),
      ...lines(path.join(FIXTURES, 'rtcstats', 'chrome-loopback-90s.frames.jsonl')),
      ...fs.readdirSync(path.join(FIXTURES, 'jitsi')).flatMap((f) => lines(path.join(FIXTURES, 'jitsi', f))),
    ];
    // The large frames the bench replays: getStats reports of bench/data as rtcstats frames.
    for (const line of lines(path.join(FIXTURES, '../../bench/data/google-standard-stats-p2p.jsonl'))) {
      const [method, pc, value] = JSON.parse(line.toString()) as [string, string, unknown];
      if (method === 'getstats') frames.push(Buffer.from(JSON.stringify(['getStats', pc, value, 1])));
    }
    const outcomes = frames.map((f) => assertSameAsTextPath(f, f.toString('latin1', 0, 120)));
    assert.ok(outcomes.filter((o) => o === 'rewritten').length >= 10);
    assert.ok(outcomes.filter((o) => o === 'kept').length >= 100);
  });

  it('stores adversarial getStats frames as the text path does', () => {
    const filler = (n: number) => `"80":"${'a'.repeat(n)}",`;
    const frames: string[] = [];
    for (let n = 0; n < 40; n++) {
      frames.push(`["g","PC_0",{"5":{${filler(n)}"134":"${HOST_V4}"},"6":{${filler(n)}"141":"${HOST_V6}"}},1]`);
      frames.push(`["getStats","PC_0",{"5":{${filler(n)}"ip":"${HOST_V4}","address":"${HOST_V4}"}},1]`);
      frames.push(`["g","PC_0",{"5":{${filler(n)}"relatedAddress":"${HOST_V4}","x":"ddress"}},1]`);
      frames.push(`["g","PC_0",{"5":{${filler(n)}"13":"${HOST_V4}","1344":"${HOST_V4}","i":"${HOST_V4}"}},"ddress"]`);
      frames.push(`["g","PC_0",{"5":{${filler(n)}"80":1}},1]`.padEnd(128 + (n % 3), ' '));
    }
    frames.push(
      `["g","${'x'.repeat(120)}address",{"5":{"134":"${HOST_V4}"}},1]`,
      `["g","xaddress",{"5":{"80":"${'b'.repeat(120)}","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"x":"é${'c'.repeat(120)}","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"x":"\\"${'d'.repeat(120)}","134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"80":1},"6":{"134":"${HOST_V4}"}}${' '.repeat(120)},1]`,
      `["g","PC_0",{"5":{"80":"${'e'.repeat(70_000)}"},"6":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"80":"${'e'.repeat(70_000)}"},"6":{"80":1}},"ip"]`,
      // Above the byte scan's size cap: the text path.
      `["g","PC_0",{"5":{"80":"${'e'.repeat(1_100_000)}"},"6":{"134":"${HOST_V4}"}},1]`,
      `["g","PC_0",{"5":{"80":"${'f'.repeat(120)}","134":"${HOST_V4}"}},1`,
      `["g","PC_0",{"5":{"80":"${'f'.repeat(120)}","134":"${HOST_V4}"`,
      // Heads: the compact ones the byte check takes, and near ones that take the text path.
      ...['["g","PC_0",{', '[1,"PC_0",{', '["getstats","PC_0",{', '["getStats","",{', '["g","PC\\u0030",{', '["g","PC_0" ,{', '[ "g","PC_0",{',
        '["g",null,{', '["g","PC_0",[', '["g","PC_0",', '["g","PC_0"', '["g","', '["g"', '[1.0,"PC_0",{', '["G","PC_0",{']
        .flatMap((head) => [head, `${head}"${HOST_V4}"]`, `${head}"5":{"134":"${HOST_V4}"}},1]`, `${head}"5":{"80":1,"x":"\\"}},1]`, `${head}"5":{"134":"${HOST_V4}","x":"\\u0031"}},1]`]),
    );
    const outcomes = frames.map((f) => assertSameAsTextPath(Buffer.from(f), f.slice(0, 200)));
    assert.ok(outcomes.includes('rewritten') && outcomes.includes('kept'));
  });
});
