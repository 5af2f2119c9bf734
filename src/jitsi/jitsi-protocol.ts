/**
 * The Jitsi flavour of the rtcstats protocol (@jitsi/rtcstats 9.x and Jitsi's backends), as
 * plain functions: which subprotocols select it, how a message is read, what the server sends.
 * Messages are JSON objects `{statsSessionId, type, data}`; browser clients put each entry in
 * `data` as a JSON string `[method, pcId, value, epochMs, seq]`, identity as an array.
 */
import { members, skipWhitespace } from '../obfuscation/json-spans.js';

/** Browser clients (3.1_*) and Jitsi's backends; the offered one is echoed. */
export const JITSI_SUBPROTOCOLS: readonly string[] = ['3.1_STANDARD', '3.1_LEGACY', '3.0_JVB', '1.0_JICOFO', '1.0_JIGASI'];

/** The client stops retrying on these; any other close code makes it reconnect (for up to 10 min). */
export const CLOSE_CONFERENCE_LEFT = 3001;
export const CLOSE_DUMP_ERROR = 3002;

/** Close code recorded for a session ended by a `close` request. */
export const CLOSE_NORMAL = 1000;

const STATS_SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function isJitsiSubprotocol(protocol: string | undefined): boolean {
  return protocol !== undefined && JITSI_SUBPROTOCOLS.includes(protocol);
}

export function selectJitsiSubprotocol(offered: Set<string>): string | undefined {
  return JITSI_SUBPROTOCOLS.find((p) => offered.has(p));
}

/** Browser clients send `stats-entry` data as a string and expect `sn` acknowledgements. */
export function isBrowserFlavour(protocol: string): boolean {
  return protocol.startsWith('3.1_');
}

/** The `statsFormat` Jitsi's tools read from a dump's connectionInfo line. */
export function statsFormat(protocol: string, userAgent: string | undefined): string {
  switch (protocol.slice(protocol.indexOf('_') + 1)) {
    case 'JVB':
      return 'jvb';
    case 'JICOFO':
      return 'jicofo';
    case 'JIGASI':
      return 'jigasi';
    case 'LEGACY':
      return 'chrome_legacy';
    default: {
      const ua = userAgent ?? '';
      if (/Firefox\//.test(ua)) return 'firefox';
      if (/Chrom(e|ium)\//.test(ua)) return 'chrome_standard';
      if (/Safari\//.test(ua)) return 'safari';
      return 'unknown';
    }
  }
}

/** `{"type":"sn","body":{"value":N}}`, with `state: "initial"` when greeting a (re)connected client. */
export function snMessage(value: number, initial: boolean): string {
  return JSON.stringify({ type: 'sn', body: initial ? { value, state: 'initial' } : { value } });
}

export type JitsiMessage =
  | { readonly kind: 'identity' | 'stats-entry'; readonly statsSessionId: string; readonly line: string; readonly entry: Entry }
  | { readonly kind: 'keepalive' | 'close'; readonly statsSessionId: string }
  | { readonly kind: 'unknown'; readonly statsSessionId: string; readonly type: string }
  /** Cannot be attributed to a session (not JSON, no valid statsSessionId). */
  | { readonly kind: 'invalid'; readonly problem: string }
  /** Attributed to a session but unreadable: ends that session. */
  | { readonly kind: 'malformed'; readonly statsSessionId: string; readonly problem: string };

/** What the server needs from one entry. */
export interface Entry {
  /** The entry's method (`getstats`, `identity`, ...). */
  readonly method: string;
  /** The client's sequence number; undefined for clients that do not number entries. */
  readonly seq: number | undefined;
  /** Identity metadata (the entry's value) for identity entries. */
  readonly identity: Record<string, unknown> | undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an entry array `[method, pcId, value, epochMs, seq]` (seq and pcId optional). */
function readEntry(value: unknown): Entry | string {
  if (!Array.isArray(value) || value.length < 3) return 'entry is not an array of at least 3 elements';
  if (typeof value[0] !== 'string') return 'entry method is not a string';
  const last = value.length >= 5 ? value[value.length - 1] : undefined;
  const seq = Number.isSafeInteger(last) && (last as number) >= 0 ? (last as number) : undefined;
  return { method: value[0], seq, identity: value[0] === 'identity' && isRecord(value[2]) ? value[2] : undefined };
}

/** The client's own text of a value, unless it spans lines (a dump holds one entry per line). */
function oneLine(text: string, value: unknown): string {
  return text.includes('\n') || text.includes('\r') ? JSON.stringify(value) : text;
}

/** The exact text of the top-level member `name` of a JSON object (the last one, as JSON.parse). */
function memberText(text: string, name: string): string | undefined {
  let found: string | undefined;
  for (const m of members(text, skipWhitespace(text, 0))) if (m.key === name) found = text.slice(m.start, m.end);
  return found;
}

/**
 * Parses one text frame. `backend` clients (JVB, Jicofo, Jigasi) send `data` as any JSON value;
 * their line is the whole message. Browser clients' lines are the entries themselves, verbatim.
 */
export function parseJitsiMessage(text: string, backend: boolean): JitsiMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'invalid', problem: 'message is not JSON' };
  }
  if (!isRecord(msg)) return { kind: 'invalid', problem: 'message is not a JSON object' };
  const { statsSessionId, type, data } = msg;
  if (typeof statsSessionId !== 'string' || !STATS_SESSION_ID.test(statsSessionId)) {
    return { kind: 'invalid', problem: 'statsSessionId missing or not 1-128 of [A-Za-z0-9_-]' };
  }
  if (typeof type !== 'string') return { kind: 'malformed', statsSessionId, problem: 'type missing' };
  if (type === 'keepalive' || type === 'close') return { kind: type, statsSessionId };
  if (type !== 'identity' && type !== 'stats-entry') return { kind: 'unknown', statsSessionId, type: type.slice(0, 64) };
  if (backend) {
    const identity = type === 'identity' ? (Array.isArray(data) ? (isRecord(data[2]) ? data[2] : undefined) : isRecord(data) ? data : undefined) : undefined;
    return { kind: type, statsSessionId, line: oneLine(text, msg), entry: { method: type, seq: undefined, identity } };
  }
  if (type === 'identity') {
    // Identity data is sent as an array, not a string: its line is the client's own text of it.
    const entry = readEntry(data);
    if (typeof entry === 'string') return { kind: 'malformed', statsSessionId, problem: `identity ${entry}` };
    return { kind: type, statsSessionId, line: oneLine(memberText(text, 'data')!, data), entry };
  }
  if (typeof data !== 'string') return { kind: 'malformed', statsSessionId, problem: 'stats-entry data is not a string' };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { kind: 'malformed', statsSessionId, problem: 'stats-entry data is not JSON' };
  }
  const entry = readEntry(value);
  if (typeof entry === 'string') return { kind: 'malformed', statsSessionId, problem: `stats-entry ${entry}` };
  return { kind: type, statsSessionId, line: oneLine(data, value), entry };
}
