import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { closeLine, recordFromScan, scanDump, sealDump } from './dump-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dump-file-spec-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const HEADER = {
  url: '/app/room?rtcstats-token=obfuscated',
  origin: 'https://app.example',
  userAgent: 'UA',
  startTime: 1_700_000_000_000,
  remoteAddresses: ['203.0.113.x'],
  clientProtocol: 'rtcstats#5.0',
  fileFormat: 3,
  dumpId: 'd1',
  kid: 'k1',
  rtcStats: { user: 'alice', session: 's1', conference: null },
};
const head = `RTCStatsDump\n${JSON.stringify(HEADER)}\n`;
const frames = ['[39,null,{"a":1},1700000000001]', '["g","PC_0",{"x":2},1000]'];

let n = 0;
function write(content: string, mtimeMs?: number): string {
  const file = path.join(dir, `f${n++}.jsonl`);
  fs.writeFileSync(file, content);
  if (mtimeMs !== undefined) fs.utimesSync(file, mtimeMs / 1000, mtimeMs / 1000);
  return file;
}

describe('dump files (scan, seal, record)', () => {
  it('scans a torn live dump: frames up to the last newline, no close line', async () => {
    const scan = await scanDump(write(`${head}${frames.join('\n')}\n["g","PC_0",{"tor`));
    assert.deepEqual(scan.header, HEADER);
    assert.equal(scan.frames, 2);
    assert.equal(scan.frameBytes, frames[0].length + frames[1].length);
    assert.equal(scan.closeCode, undefined);
    assert.equal(scan.completeBytes, Buffer.byteLength(`${head}${frames.join('\n')}\n`));
  });

  it('recognises a final close line and does not count it as a frame', async () => {
    const scan = await scanDump(write(`${head}${frames.join('\n')}\n${closeLine(1000, 12)}`));
    assert.equal(scan.closeCode, 1000);
    assert.equal(scan.frames, 2);
  });

  it('seals a crashed live dump: torn line cut, 1006 close line dated by the mtime, source removed', async () => {
    const mtime = 1_700_000_100_000;
    const source = write(`${head}${frames.join('\n')}\n["g","PC_0",{"tor`, mtime);
    const target = path.join(dir, 'sealed-1.jsonl');
    const scan = await sealDump(source, target, undefined);
    assert.equal(fs.existsSync(source), false);
    assert.equal(fs.readFileSync(target, 'utf8'), `${head}${frames.join('\n')}\n["close",null,1006,0]\n`);
    assert.equal(scan.closeCode, 1006);
    assert.equal(Math.round(fs.statSync(target).mtimeMs), mtime, 'the end time survives a second recovery');
    const record = recordFromScan('d1', await scanDump(target));
    assert.deepEqual(record, {
      id: 'd1',
      startTime: HEADER.startTime,
      endTime: mtime,
      closeCode: 1006,
      frameCount: 2,
      bytes: frames[0].length + frames[1].length,
      user: 'alice',
      session: 's1',
      conference: null,
      kid: 'k1',
      origin: 'https://app.example',
      userAgent: 'UA',
      clientProtocol: 'rtcstats#5.0',
      path: '/app/room',
      remoteAddress: '203.0.113.x',
    });
  });

  it('seals with the close line the session gives (disk full: 1011 and the time since the last frame)', async () => {
    const source = write(`${head}${frames[0]}\n["g","PC`);
    const target = path.join(dir, 'sealed-2.jsonl');
    await sealDump(source, target, { code: 1011, endTime: 5000, lastFrameAt: 3000 });
    assert.equal(fs.readFileSync(target, 'utf8'), `${head}${frames[0]}\n["close",null,1011,2000]\n`);
  });

  it('moves a complete dump unchanged', async () => {
    const content = `${head}${frames.join('\n')}\n${closeLine(1001, 5)}`;
    const source = write(content);
    const target = path.join(dir, 'sealed-3.jsonl');
    await sealDump(source, target, undefined);
    assert.equal(fs.readFileSync(target, 'utf8'), content);
    assert.equal(fs.existsSync(source), false);
  });

  it('reads lines that straddle its 64 KiB reads: header, close line, a Jitsi identity entry over three reads', async () => {
    const CHUNK = 64 * 1024;
    // A header of 65530 bytes (the limit is 64 KiB) starting at byte 13 crosses the first boundary.
    const header = { ...HEADER, pad: '' };
    header.pad = 'p'.repeat(65530 - JSON.stringify(header).length);
    const start = `RTCStatsDump\n${JSON.stringify(header)}\n`;
    const close = '["close",null,1000,5]';
    // One frame that ends 10 bytes before the second boundary: the close line crosses it.
    const frameShell = '[1,null,{"p":""},1700000000001]';
    const frame = frameShell.replace('""', `"${'f'.repeat(2 * CHUNK - 10 - start.length - frameShell.length - 1)}"`);
    const scan = await scanDump(write(`${start}${frame}\n${close}\n`));
    assert.deepEqual(scan.header, header);
    assert.equal(scan.frames, 1);
    assert.equal(scan.closeCode, 1000);

    const info = JSON.stringify(['connectionInfo', null, { dumpId: 'j3', startTime: 1 }, 1]);
    const identity = JSON.stringify(['identity', null, { confName: 'room3', displayName: 'Carol', config: { x: 'z'.repeat(150_000) } }, 2]);
    const jitsi = await scanDump(write(`${info}\n${'["stats-entry",null,"x",2]\n'.repeat(2000)}${identity}\n`));
    assert.equal(jitsi.format, 'jitsi');
    assert.equal(jitsi.frames, 2001);
    assert.deepEqual(jitsi.identity, { conferenceName: 'room3', displayName: 'Carol', meetingId: null });
  });

  it('reports no header for a file that is not a dump', async () => {
    const scan = await scanDump(write('hello\nworld\n'));
    assert.equal(scan.header, undefined);
    assert.equal(recordFromScan('x', scan), undefined);
  });

  it('recovers a crashed Jitsi dump: sessionClose 1006 appended, record from connectionInfo and identity entries', async () => {
    const meta = {
      path: '/room1', origin: 'https://meet.example', url: '/room1?token=obfuscated', userAgent: 'UA', clientProtocol: '3.1_STANDARD',
      statsFormat: 'chrome_standard', flavour: 'jitsi', fileFormat: 'jitsi-1', dumpId: 'j1', statsSessionId: 'stats-1',
      startTime: 1_700_000_000_000, remoteAddresses: ['198.51.100.x'], isReconnect: false, kid: 'k2',
      rtcStats: { user: 'bob', session: null, conference: 'c9' },
    };
    const entries = [
      `["identity",null,{"confName":"room1","displayName":"Bob","config":{"x":"${'y'.repeat(2000)}"}},1700000000001]`,
      '["stats-entry",null,"[\\"getstats\\",\\"PC_0\\",{},1700000000002,1]",1700000000002]',
      '["disconnect",null,{"code":1006,"reason":"","lastSeq":1},1700000000003]',
      '["reconnect",null,{"url":"/room1","lastSeq":1},1700000000004]',
      '["identity",null,{"meetingUniqueId":"m-77"},1700000000005]',
    ];
    const mtime = 1_700_000_000_900;
    const source = write(`${JSON.stringify(['connectionInfo', null, meta, meta.startTime])}\n${entries.join('\n')}\n["stats-ent`, mtime);
    const target = path.join(dir, 'sealed-jitsi.jsonl');
    await sealDump(source, target, undefined);
    const lines = fs.readFileSync(target, 'utf8').split('\n');
    assert.deepEqual(lines.slice(1, -2), entries);
    assert.deepEqual(JSON.parse(lines.at(-2)!), ['sessionClose', null, { code: 1006, reason: 'recovered after the server stopped' }, mtime]);
    const scan = await scanDump(target);
    assert.equal(scan.format, 'jitsi');
    assert.equal(scan.closeCode, 1006);
    assert.equal(scan.frames, 3, 'the server\'s disconnect/reconnect lines are not client entries');
    const record = recordFromScan('j1', scan)!;
    assert.equal(record.statsSessionId, 'stats-1');
    assert.equal(record.conferenceName, 'room1');
    assert.equal(record.displayName, 'Bob');
    assert.equal(record.meetingId, 'm-77');
    assert.equal(record.user, 'bob');
    assert.equal(record.conference, 'c9');
    assert.equal(record.kid, 'k2');
    assert.equal(record.path, '/room1');
    assert.equal(record.endTime, mtime);
    assert.equal(record.clientProtocol, '3.1_STANDARD');
  });

  it('recognises a Jitsi dump that ended normally (its sessionClose line) and moves it unchanged', async () => {
    const content =
      `${JSON.stringify(['connectionInfo', null, { dumpId: 'j2', startTime: 1 }, 1])}\n["stats-entry",null,"x",2]\n` +
      `${JSON.stringify(['sessionClose', null, { code: 3001, reason: 'left', lastSeq: 1, entries: 1, bytes: 1, duplicates: 0, gaps: 0, disconnects: 0 }, 3])}\n`;
    const source = write(content);
    const target = path.join(dir, 'sealed-jitsi-2.jsonl');
    const scan = await sealDump(source, target, undefined);
    assert.equal(scan.closeCode, 3001);
    assert.equal(scan.frames, 1);
    assert.equal(fs.readFileSync(target, 'utf8'), content);
  });

  it('seals by copying when the disk has no room for the close line (a full tmpfs)', (t) => {
    const mnt = path.join(dir, 'full');
    fs.mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (err) {
      t.skip(`cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); needs root`);
      return;
    }
    return (async () => {
      try {
        // A live file ending exactly at a page boundary with a 3-byte torn line, on a full disk.
        const good = `${head}${frames.join('\n')}\n`;
        const pad = `["pad","${'p'.repeat(8192 - Buffer.byteLength(good) - 3 - 11)}"]\n`;
        const source = path.join(mnt, 'live.jsonl');
        fs.writeFileSync(source, `${good}${pad}["g`);
        assert.equal(fs.statSync(source).size, 8192);
        const filler = fs.openSync(path.join(mnt, 'filler'), 'w');
        try {
          for (;;) fs.writeSync(filler, Buffer.alloc(4096));
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
        } finally {
          fs.closeSync(filler);
        }
        const target = path.join(dir, 'sealed-full.jsonl');
        const scan = await sealDump(source, target, { code: 1011, endTime: 9000, lastFrameAt: 8000 });
        assert.equal(fs.readFileSync(target, 'utf8'), `${good}${pad}["close",null,1011,1000]\n`);
        assert.equal(fs.existsSync(source), false);
        assert.equal(scan.frames, 3);
      } finally {
        execFileSync('umount', [mnt]);
      }
    })();
  });
});
