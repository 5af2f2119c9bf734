import fs from 'node:fs';

import type { DumpRecord } from '../metadata/metadata.store.js';

/** A metadata record before the dump has a storage location. */
export type DumpDraft = Omit<DumpRecord, 'location'>;

export const DUMP_MAGIC = 'RTCStatsDump';
const CLOSE_PREFIX = Buffer.from('["close",null,');
const NL = 0x0a;
/** Only the start of a line is kept while scanning: enough to recognise the magic and close lines. */
const KEEP = 64;
/** The metadata line (line 2) is small; a longer one is not ours. */
const MAX_HEADER_LINE = 64 * 1024;

export function closeLine(code: number, msSinceLastFrame: number): string {
  return `${JSON.stringify(['close', null, code, Math.max(0, Math.round(msSinceLastFrame))])}\n`;
}

/** What a streaming pass over a (possibly torn) dump file found. */
export interface DumpScan {
  /** Line 1 is the magic and line 2 a complete JSON object. */
  readonly header: Record<string, unknown> | undefined;
  /** Complete frame lines (line 3 on, not counting a final close line). */
  readonly frames: number;
  /** Bytes of those frame lines, without their newlines. */
  readonly frameBytes: number;
  /** Byte length up to and including the last newline; what is after it is a torn line. */
  readonly completeBytes: number;
  readonly size: number;
  /** The final close line's code when the file ends with one (and nothing torn after it). */
  readonly closeCode: number | undefined;
  readonly mtimeMs: number;
}

export async function scanDump(file: string): Promise<DumpScan> {
  const stat = await fs.promises.stat(file);
  let lineNo = 0;
  let lineLen = 0;
  let lineStart: Buffer[] = [];
  let startLen = 0;
  let headerText = '';
  let headerTooLong = false;
  let magicOk = false;
  let frames = 0;
  let frameBytes = 0;
  let completeBytes = 0;
  let offset = 0;
  let last: { head: Buffer; len: number } | undefined;

  const endLine = () => {
    lineNo++;
    const head = Buffer.concat(lineStart, startLen);
    if (lineNo === 1) magicOk = lineLen === DUMP_MAGIC.length && head.toString('utf8') === DUMP_MAGIC;
    else if (lineNo >= 3) {
      frames++;
      frameBytes += lineLen;
      last = { head, len: lineLen };
    }
    lineLen = 0;
    lineStart = [];
    startLen = 0;
  };

  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(NL, pos);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(pos, end);
      if (lineNo === 1) {
        if (headerText.length + piece.length > MAX_HEADER_LINE) headerTooLong = true;
        else headerText += piece.toString('utf8');
      }
      if (startLen < KEEP) {
        const take = piece.subarray(0, KEEP - startLen);
        lineStart.push(take);
        startLen += take.length;
      }
      lineLen += piece.length;
      if (nl === -1) break;
      completeBytes = offset + nl + 1;
      endLine();
      pos = nl + 1;
    }
    offset += chunk.length;
  }

  let header: Record<string, unknown> | undefined;
  if (magicOk && lineNo >= 2 && !headerTooLong) {
    try {
      const parsed: unknown = JSON.parse(headerText);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) header = parsed as Record<string, unknown>;
    } catch {
      header = undefined;
    }
  }
  let closeCode: number | undefined;
  const torn = completeBytes < stat.size;
  if (!torn && last !== undefined && last.head.subarray(0, CLOSE_PREFIX.length).equals(CLOSE_PREFIX) && last.len < KEEP) {
    const parsed: unknown = JSON.parse(last.head.toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[2] === 'number') closeCode = parsed[2];
  }
  if (closeCode !== undefined && last !== undefined) {
    frames--;
    frameBytes -= last.len;
  }
  return { header, frames, frameBytes, completeBytes, size: stat.size, closeCode, mtimeMs: stat.mtimeMs };
}

export interface SealClose {
  readonly code: number;
  /** Server time of the end of the session; the sealed file keeps it as its mtime. */
  readonly endTime: number;
  readonly lastFrameAt: number;
}

async function syncFile(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The disk (or a quota, or a file-size limit) has no room for the bytes. */
const NO_SPACE = new Set(['ENOSPC', 'EFBIG', 'EDQUOT']);

/**
 * Moves a finished live dump into the outbox as a complete dump. A file that lacks its close line
 * is sealed in place first: cut at the last newline (a torn line is no frame), the close line
 * appended (`close`, or 1006 dated by the file's mtime after a crash), synced. That needs no room
 * beyond a few bytes; when even those are missing, the complete part is copied to the outbox
 * instead (another disk may have room). Then a rename. A crash at any point leaves the data intact
 * in work/ or outbox/, and sealing again gives the same file.
 */
export async function sealDump(source: string, target: string, close: SealClose | undefined): Promise<DumpScan> {
  let scan = await scanDump(source);
  if (scan.closeCode === undefined) {
    // After a crash the moment the connection died is unknown; the last write (mtime) is the last
    // instant the server provably recorded the session, so it is both the end and the last frame.
    const end = close ?? { code: 1006, endTime: scan.mtimeMs, lastFrameAt: scan.mtimeMs };
    try {
      scan = await sealInPlace(source, scan, end);
    } catch (err) {
      if (!NO_SPACE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      return copySealed(source, target, scan, end);
    }
  }
  try {
    await fs.promises.rename(source, target);
    return scan;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    return copySealed(source, target, scan, undefined);
  }
}

async function sealInPlace(file: string, scan: DumpScan, end: SealClose): Promise<DumpScan> {
  const tail = closeLine(end.code, end.endTime - end.lastFrameAt);
  const handle = await fs.promises.open(file, 'r+');
  try {
    await handle.truncate(scan.completeBytes);
    // A nearly full disk takes part of a write without an error; the rest then fails with ENOSPC.
    const bytes = Buffer.from(tail);
    for (let done = 0; done < bytes.length; ) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, scan.completeBytes + done);
      if (bytesWritten === 0) throw Object.assign(new Error('no space for the close line'), { code: 'ENOSPC' });
      done += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  const endSeconds = end.endTime / 1000;
  await fs.promises.utimes(file, endSeconds, endSeconds);
  const size = scan.completeBytes + Buffer.byteLength(tail);
  return { ...scan, closeCode: end.code, size, completeBytes: size, mtimeMs: end.endTime };
}

/** Copies the complete part of `source` (plus a close line unless it has one) to `target`, then removes `source`. */
async function copySealed(source: string, target: string, scan: DumpScan, end: SealClose | undefined): Promise<DumpScan> {
  const tail = scan.closeCode !== undefined || end === undefined ? '' : closeLine(end.code, end.endTime - end.lastFrameAt);
  const mtimeMs = end?.endTime ?? scan.mtimeMs;
  const temp = `${target}.tmp`;
  try {
    const out = fs.createWriteStream(temp, { flags: 'w', mode: 0o640 });
    const input = scan.completeBytes > 0 ? fs.createReadStream(source, { start: 0, end: scan.completeBytes - 1 }) : undefined;
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.once('finish', resolve);
      if (input === undefined) {
        out.end(tail);
        return;
      }
      input.once('error', reject);
      input.on('data', (chunk) => {
        if (!out.write(chunk)) input.pause();
      });
      out.on('drain', () => input.resume());
      input.once('end', () => out.end(tail));
    });
    await syncFile(temp);
    await fs.promises.utimes(temp, mtimeMs / 1000, mtimeMs / 1000);
    await fs.promises.rename(temp, target);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
  await fs.promises.rm(source, { force: true });
  const size = scan.completeBytes + Buffer.byteLength(tail);
  return { ...scan, closeCode: scan.closeCode ?? end?.code, size, completeBytes: size, mtimeMs };
}

/** Moves a live dump that ends with its close line into the outbox (copied when on another file system). */
export async function moveComplete(source: string, target: string): Promise<void> {
  try {
    await fs.promises.rename(source, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await sealDump(source, target, undefined);
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * Rebuilds the metadata record of a sealed dump from its own header (line 2 carries the dump id,
 * the connection facts, and the key id and rtcStats claims the token carried).
 */
export function recordFromScan(id: string, scan: DumpScan): DumpDraft | undefined {
  const h = scan.header;
  if (h === undefined || scan.closeCode === undefined) return undefined;
  const claims = h.rtcStats !== null && typeof h.rtcStats === 'object' ? (h.rtcStats as Record<string, unknown>) : {};
  const addresses = Array.isArray(h.remoteAddresses) ? h.remoteAddresses.filter((a) => typeof a === 'string') : [];
  return {
    id,
    startTime: typeof h.startTime === 'number' ? h.startTime : Math.round(scan.mtimeMs),
    endTime: Math.round(scan.mtimeMs),
    closeCode: scan.closeCode,
    frameCount: scan.frames,
    bytes: scan.frameBytes,
    user: str(claims.user),
    session: str(claims.session),
    conference: str(claims.conference),
    kid: str(h.kid),
    origin: str(h.origin),
    userAgent: str(h.userAgent),
    clientProtocol: str(h.clientProtocol),
    path: typeof h.url === 'string' ? pathOf(h.url) : '/',
    remoteAddress: addresses.join(', ') || null,
  };
}
