import fs from 'node:fs';

import { DATA_FILE_MODE } from '../common/file-modes.js';
import type { DumpRecord } from '../metadata/metadata.store.js';

/** A metadata record before the dump has a storage location. */
export type DumpDraft = Omit<DumpRecord, 'location'>;

export const DUMP_MAGIC = 'RTCStatsDump';
const NL = 0x0a;
/** Only the start of a line is kept while scanning: enough to recognise headers and close lines. */
const KEEP = 512;
/** A header line is small; a longer one is not ours. */
const MAX_HEADER_LINE = 64 * 1024;
/** Jitsi identity entries are read whole (the first one carries the client's config). */
const MAX_IDENTITY_LINE = 1024 * 1024;
/**
 * The scan reads through one buffer of this size: a fresh chunk per read is garbage outside the
 * JS heap that V8 frees late, and a burst of closes scanning 1 MB dumps kept tens of MiB of it.
 */
const SCAN_CHUNK = 64 * 1024;

/**
 * The two dump layouts this collector writes. rtcstats (format v3): `RTCStatsDump`, a metadata
 * line, frames, `["close",null,<code>,<ms since the last frame>]`. Jitsi (`jitsi-1`): a
 * `connectionInfo` line, entries (and the server's disconnect/reconnect lines), a `sessionClose` line.
 */
export type DumpFormat = 'rtcstats' | 'jitsi';

const JITSI_HEADER = Buffer.from('["connectionInfo",null,');
const JITSI_SERVER_LINES = [Buffer.from('["disconnect",null,'), Buffer.from('["reconnect",null,')];
const JITSI_IDENTITY = Buffer.from('["identity",null,');
const CLOSE_PREFIX: Record<DumpFormat, Buffer> = {
  rtcstats: Buffer.from('["close",null,'),
  jitsi: Buffer.from('["sessionClose",null,'),
};

export function closeLine(code: number, msSinceLastFrame: number): string {
  return `${JSON.stringify(['close', null, code, Math.max(0, Math.round(msSinceLastFrame))])}\n`;
}

function formatCloseLine(format: DumpFormat, close: SealClose): string {
  if (format === 'rtcstats') return closeLine(close.code, close.endTime - close.lastFrameAt);
  return `${JSON.stringify(['sessionClose', null, { code: close.code, reason: close.reason ?? 'recovered after the server stopped' }, Math.round(close.endTime)])}\n`;
}

export interface JitsiIdentity {
  conferenceName: string | null;
  displayName: string | null;
  meetingId: string | null;
}

/** What a streaming pass over a (possibly torn) dump file found. */
export interface DumpScan {
  readonly format: DumpFormat | undefined;
  /** The connection metadata (rtcstats line 2, Jitsi's connectionInfo value), when complete. */
  readonly header: Record<string, unknown> | undefined;
  /** Complete frame lines (client entries), not counting a final close line. */
  readonly frames: number;
  /** Bytes of those frame lines, without their newlines. */
  readonly frameBytes: number;
  /** Byte length up to and including the last newline; what is after it is a torn line. */
  readonly completeBytes: number;
  readonly size: number;
  /** The final close line's code when the file ends with one (and nothing torn after it). */
  readonly closeCode: number | undefined;
  readonly mtimeMs: number;
  /** Jitsi: identity fields from the client's identity entries. */
  readonly identity: JitsiIdentity;
}

const startsWith = (head: Buffer, prefix: Buffer) => head.length >= prefix.length && head.subarray(0, prefix.length).equals(prefix);

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function jsonArray(text: string): unknown[] | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export async function scanDump(file: string): Promise<DumpScan> {
  const stat = await fs.promises.stat(file);
  let format: DumpFormat | undefined;
  let header: Record<string, unknown> | undefined;
  const identity: JitsiIdentity = { conferenceName: null, displayName: null, meetingId: null };
  let lineNo = 0;
  let lineLen = 0;
  let head: Buffer[] = [];
  let headLen = 0;
  // Whole-line capture for the lines that must be parsed (headers, Jitsi identity entries).
  let whole: Buffer[] | undefined;
  let wholeLen = 0;
  let wholeMax = MAX_HEADER_LINE;
  let frames = 0;
  let frameBytes = 0;
  let completeBytes = 0;
  let offset = 0;
  let last: { head: Buffer; len: number; counted: boolean } | undefined;

  const endLine = () => {
    lineNo++;
    const start = Buffer.concat(head, headLen);
    const text = whole !== undefined && wholeLen <= wholeMax ? Buffer.concat(whole, wholeLen).toString('utf8') : undefined;
    let counted = false;
    if (lineNo === 1) {
      if (lineLen === DUMP_MAGIC.length && start.toString('utf8') === DUMP_MAGIC) format = 'rtcstats';
      else if (startsWith(start, JITSI_HEADER) && text !== undefined) {
        const arr = jsonArray(text);
        const meta = arr?.[0] === 'connectionInfo' ? arr[2] : undefined;
        if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
          format = 'jitsi';
          header = meta as Record<string, unknown>;
        }
      }
    } else if (format === 'rtcstats' && lineNo === 2) {
      header = text === undefined ? undefined : jsonObject(text);
    } else if (format !== undefined && header !== undefined) {
      counted = format === 'rtcstats' || !JITSI_SERVER_LINES.some((p) => startsWith(start, p));
      if (counted) {
        frames++;
        frameBytes += lineLen;
      }
      if (format === 'jitsi' && text !== undefined && startsWith(start, JITSI_IDENTITY)) {
        const value = jsonArray(text)?.[2];
        if (value !== null && typeof value === 'object') {
          const v = value as Record<string, unknown>;
          if (typeof v.confName === 'string') identity.conferenceName = v.confName;
          if (typeof v.displayName === 'string') identity.displayName = v.displayName;
          if (typeof v.meetingUniqueId === 'string') identity.meetingId = v.meetingUniqueId;
        }
      }
      last = { head: start, len: lineLen, counted };
    }
    lineLen = 0;
    head = [];
    headLen = 0;
    whole = undefined;
    wholeLen = 0;
  };

  // No larger than the file (most dumps are a few KB); a file that grew since is read in more steps.
  const buffer = Buffer.allocUnsafeSlow(Math.max(1, Math.min(SCAN_CHUNK, stat.size)));
  const handle = await fs.promises.open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      let pos = 0;
      while (pos < chunk.length) {
        const nl = chunk.indexOf(NL, pos);
        const piece = chunk.subarray(pos, nl === -1 ? chunk.length : nl);
        if (lineLen === 0) {
          // Which lines are read whole is decided by their start (the first piece holds it unless tiny).
          const next = lineNo + 1;
          const wanted =
            next <= 2 || (format === 'jitsi' && startsWith(piece.subarray(0, JITSI_IDENTITY.length), JITSI_IDENTITY));
          whole = wanted ? [] : undefined;
          wholeMax = next <= 2 ? MAX_HEADER_LINE : MAX_IDENTITY_LINE;
        }
        if (whole !== undefined && wholeLen <= wholeMax) {
          whole.push(piece);
          wholeLen += piece.length;
        }
        if (headLen < KEEP) {
          const take = piece.subarray(0, KEEP - headLen);
          head.push(take);
          headLen += take.length;
        }
        lineLen += piece.length;
        if (nl === -1) break;
        completeBytes = offset + nl + 1;
        endLine();
        pos = nl + 1;
      }
      offset += chunk.length;
      // The next read overwrites the buffer: an unfinished line's piece of this chunk (its last one,
      // earlier ones are copies already) gets its own copy.
      if (head.length > 0) head[head.length - 1] = Buffer.from(head[head.length - 1]);
      if (whole !== undefined && whole.length > 0) whole[whole.length - 1] = Buffer.from(whole[whole.length - 1]);
    }
  } finally {
    await handle.close();
  }

  let closeCode: number | undefined;
  const torn = completeBytes < stat.size;
  if (format !== undefined && !torn && last !== undefined && last.len <= KEEP && startsWith(last.head, CLOSE_PREFIX[format])) {
    const parsed = jsonArray(last.head.toString('utf8'));
    const code = format === 'rtcstats' ? parsed?.[2] : (parsed?.[2] as { code?: unknown } | undefined)?.code;
    if (typeof code === 'number') closeCode = code;
  }
  if (closeCode !== undefined && last !== undefined && last.counted) {
    frames--;
    frameBytes -= last.len;
  }
  return { format, header, frames, frameBytes, completeBytes, size: stat.size, closeCode, mtimeMs: stat.mtimeMs, identity };
}

export interface SealClose {
  readonly code: number;
  /** Jitsi's sessionClose line carries a reason. */
  readonly reason?: string;
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
  // Not a dump, or no complete frame: nothing to seal; the caller decides (see FinalizeQueue).
  if (scan.header === undefined || scan.frames === 0) return scan;
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
  const tail = formatCloseLine(scan.format!, end);
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
  const tail = scan.closeCode !== undefined || end === undefined ? '' : formatCloseLine(scan.format!, end);
  const mtimeMs = end?.endTime ?? scan.mtimeMs;
  const temp = `${target}.tmp`;
  try {
    const out = fs.createWriteStream(temp, { flags: 'w', mode: DATA_FILE_MODE });
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

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * Rebuilds the metadata record of a sealed dump from its own header (the connection facts, and
 * the key id and rtcStats claims the token carried; Jitsi: statsSessionId, and identity entries).
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
    path: typeof h.path === 'string' ? h.path : typeof h.url === 'string' ? pathOf(h.url) : '/',
    remoteAddress: addresses.join(', ') || null,
    ...(scan.format === 'jitsi' ? { statsSessionId: str(h.statsSessionId), ...scan.identity } : {}),
  };
}
