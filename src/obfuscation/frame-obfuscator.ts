/**
 * IP obfuscation of rtcstats frames before they are stored (protocol.md section 6), as a
 * FrameTransform. Frames are rewritten in place: only the masked values change, every other byte
 * stays as the client sent it, and a frame with nothing to mask is returned as the same Buffer.
 */
import { isAscii } from 'node:buffer';

import { maskAddressesInText, obfuscateAddress } from './ip-address.js';
import { applyEdits, type Edit, elements, type Member, members, removeMembers, skipWhitespace, type Span } from './json-spans.js';
import { findStatsKey, NO_KEY } from './key-scan.js';

// Methods by what their value can hold (spec/stats-encoding.md table A: compressed ids of
// rtcstats#5.0, and the plain names a client sends with compression off or Jitsi's client sends).
const CANDIDATE_METHODS = new Set<unknown>([10, 20, 'addIceCandidate', 'onicecandidate']);
const SDP_METHODS = new Set<unknown>([
  3, 5, 6, 7, 8,
  'createOfferOnSuccess', 'createAnswerOnSuccess', 'setLocalDescription', 'setLocalDescriptionOnSuccess', 'setRemoteDescription',
]);
const STATS_METHODS = new Set<unknown>(['g', 1, 'getStats', 'getstats']);
/** RTCPeerConnectionIceErrorEvent: `address` is the local candidate's; `url` the STUN/TURN server's (kept, as relay addresses are). */
const ICE_ERROR_METHODS = new Set<unknown>([21, 'onicecandidateerror']);
/**
 * Methods whose values hold ids, states, options, track and device info, or an RTCConfiguration
 * (whose iceServers are STUN/TURN servers, kept like relay candidates): never a client address.
 * Every other method (the ...OnFailure callbacks, whose error text may quote a candidate, custom
 * `:events`, Jitsi's extra methods, anything unknown) gets the text scan.
 */
const ADDRESS_FREE_METHODS = new Set<unknown>([
  2, 'createOffer', 4, 'createAnswer', 9, 'setRemoteDescriptionOnSuccess', 11, 'addIceCandidateOnSuccess',
  22, 'ontrack', 23, 'onsignalingstatechange', 24, 'oniceconnectionstatechange', 25, 'onconnectionstatechange',
  26, 'onicegatheringstatechange', 27, 'onnegotiationneeded', 28, 'ondatachannel',
  30, 'addTrack', 31, 'addTrackOnSuccess', 32, 'addTransceiver', 33, 'addTransceiverOnSuccess', 34, 'removeTrack',
  35, 'createDataChannel', 36, 'close', 37, 'restartIce', 38, 'setConfiguration', 39, 'create', 40, 'constraints',
  41, 'setCodecPreferences', 42, 'setHeaderExtensionsToNegotiate', 50, 'setParameters', 51, 'replaceTrack',
  60, 'navigator.mediaDevices.getUserMedia', 61, 'navigator.mediaDevices.getUserMediaOnSuccess',
  63, 'navigator.mediaDevices.getDisplayMedia', 64, 'navigator.mediaDevices.getDisplayMediaOnSuccess',
  66, 'navigator.mediaDevices.enumerateDevices', 67, 'navigator.mediaDevices.ondevicechange',
  70, 'MediaStreamTrack.stop', 71, 'MediaStreamTrack.applyConstraints', 72, 'MediaStreamTrack.onended',
  73, 'MediaStreamTrack.onmute', 74, 'MediaStreamTrack.onunmute', 80, 'HTMLMediaElement.resize',
]);

// getStats report keys, compressed and plain.
const ADDRESS_KEYS = new Set(['134', 'address']);
const TYPE_KEYS = new Set(['136', 'candidateType']);
const RELATED_KEYS = new Set(['141', 'relatedAddress']);
const REMOVED_KEY = 'ip';

// Pre-checks on a latin1 view of the raw bytes (one char per byte, no UTF-8 decoding, no parse).
// getStats frames are most of the traffic and carry addresses only under the address keys of
// their report object, so they get one regex for those keys (or a \u escape that could spell
// one); a frame without a hit is returned untouched, whatever else it holds (a valid frame would
// not be rewritten either).
// Other frames get ADDRESS_HINT, which matches every IPv4 dotted quad, every IPv6 form (all have
// two colons with at most four hex digits between; in valid JSON that only happens inside
// strings) and \u escapes of address characters.
const ADDRESS_HINT = /\d\.\d{1,3}\.\d{1,3}\.\d|:[0-9A-Fa-f]{0,4}:|\\u00[2-6]/;
// The stats shortcut applies only where the value is a report object, as clients send it.
const STATS_FRAME = /^\s*\[\s*(?:"(?:g|getStats|getstats)"|1)\s*,\s*(?:"[^"\\]*"|null)\s*,\s*\{/;
// The head of a getStats frame as rewriteText walks it without a full parse: JSON's whitespace only.
const STATS_HEAD = /^[ \t\n\r]*\[[ \t\n\r]*(?:"(?:g|getStats|getstats)"|1)[ \t\n\r]*,[ \t\n\r]*(?:"[^"\\]*"|null)[ \t\n\r]*,[ \t\n\r]*\{/;
const STATS_KEYS = /"(?:134|141|ip|address|relatedAddress)"|\\u/g;
// Without a backslash in the frame no key is escaped, and this cheaper form finds the same keys:
// alternatives that do not all start with `"` (the most frequent byte) let the regex engine skip
// ahead; `ddress"` also matches longer keys ending so, which only sends a frame down the full path.
// On the 90 s Chrome fixture's stats frames it runs in half the instructions of STATS_KEYS.
const STATS_KEYS_PLAIN = /(?:"1(?:34|41)|"ip|ddress)"/g;
const BACKSLASH = 0x5c;

const C_LINE = 'c=IN IP4 0.0.0.0';
const RTCP_LINE = 'a=rtcp:9 IN IP4 0.0.0.0';
const SDP_LINE = /^(?:c=|a=rtcp:|a=candidate:|a=remote-candidates:|o=)[^\r\n]*/gm;
/**
 * The SDP_LINE lines obfuscateSdp could change: every line it matches except `c=` and `a=rtcp:`
 * lines already in their 0.0.0.0 form and the `o=` line Chrome writes (`-`, two numbers,
 * 127.0.0.1: nothing in it the text scan would mask). `(?![^\r\n])`: the line ends there, as
 * SDP_LINE's `[^\r\n]*` sees it. An SDP without a match is returned as it is, without the
 * text scan of its `o=` line, which costs more than everything else here.
 */
const SDP_LINE_TO_CHECK =
  /^(?:c=(?!IN IP4 0\.0\.0\.0(?![^\r\n]))|a=(?:rtcp:(?!9 IN IP4 0\.0\.0\.0(?![^\r\n]))|candidate:|remote-candidates:)|o=(?!- \d+ \d+ IN IP4 127\.0\.0\.1(?![^\r\n])))/m;

/**
 * One ICE candidate (`candidate:...`, with or without `a=`): the connection address is obfuscated
 * unless `typ relay` (TURN addresses are kept to group sessions by server), `raddr` always.
 * Only those tokens change; a candidate not in the RFC 8839 layout gets the text scan instead.
 */
export function obfuscateCandidate(candidate: string): string {
  const tokens = [...candidate.matchAll(/\S+/g)];
  if (tokens.length < 8 || !/^(?:a=)?candidate:/i.test(tokens[0][0]) || tokens[6][0].toLowerCase() !== 'typ') {
    return maskAddressesInText(candidate);
  }
  const edits: Edit[] = [];
  const mask = (t: RegExpMatchArray) => {
    const next = obfuscateAddress(t[0]);
    if (next !== t[0]) edits.push({ start: t.index!, end: t.index! + t[0].length, replacement: next });
  };
  if (tokens[7][0].toLowerCase() !== 'relay') mask(tokens[4]);
  // Every token is checked, not only the name positions, so a malformed tail cannot hide a raddr.
  for (let i = 8; i + 1 < tokens.length; i++) if (tokens[i][0].toLowerCase() === 'raddr') mask(tokens[i + 1]);
  return applyEdits(candidate, edits);
}

/**
 * An SDP blob: `c=` and `a=rtcp:` lines are replaced by their 0.0.0.0 forms (only when they
 * differ), candidate lines go through obfuscateCandidate; `o=` and `a=remote-candidates:` lines,
 * which can also carry host addresses, get the text scan (Chrome's `o=` 127.0.0.1 is kept).
 */
export function obfuscateSdp(sdp: string): string {
  if (!SDP_LINE_TO_CHECK.test(sdp)) return sdp;
  return sdp.replace(SDP_LINE, (line) => {
    if (line.startsWith('c=')) return C_LINE;
    if (line.startsWith('a=rtcp:')) return RTCP_LINE;
    if (line.startsWith('a=candidate:')) return `a=${obfuscateCandidate(line.slice(2))}`;
    return maskAddressesInText(line);
  });
}

/** The `value` element of a frame known to be a JSON array of at least three elements. */
function valueSpan(text: string) {
  return elements(text, skipWhitespace(text, 0), 3)[2];
}

/** Whether one of the (sorted) key hits lies in span. */
function holdsHit(hits: readonly number[], span: Span): boolean {
  // Binary search: a client controls how many members and hits a frame has, so a scan of every
  // hit per member would be quadratic in the frame size.
  let lo = 0;
  let hi = hits.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hits[mid] < span.start) lo = mid + 1;
    else hi = mid;
  }
  return lo < hits.length && hits[lo] < span.end;
}

/** The text scan of a span that holds an address key where a report does not put one (nested, or in an array). */
function scanSpan(text: string, span: Span, edits: Edit[]): void {
  const raw = text.slice(span.start, span.end);
  const next = maskAddressesInText(raw);
  if (next !== raw) edits.push({ start: span.start, end: span.end, replacement: next });
}

function rewriteReport(text: string, fields: readonly Member[], hits: readonly number[], edits: Edit[]): void {
  const decode = (m: Member): unknown => JSON.parse(text.slice(m.start, m.end));
  const types = fields.filter((f) => TYPE_KEYS.has(f.key)).map(decode);
  // A delta may carry the address without its type: then it is not known to be relay.
  const relay = types.length > 0 && types.every((t) => t === 'relay');
  for (const f of fields) {
    if (!RELATED_KEYS.has(f.key) && !ADDRESS_KEYS.has(f.key)) {
      const c = text[f.start];
      if (f.key !== REMOVED_KEY && (c === '{' || c === '[') && holdsHit(hits, f)) scanSpan(text, f, edits);
      continue;
    }
    if (ADDRESS_KEYS.has(f.key) && relay) continue;
    const old = decode(f);
    if (typeof old === 'string') {
      const next = obfuscateAddress(old);
      if (next !== old) edits.push({ start: f.start, end: f.end, replacement: JSON.stringify(next) });
    } else {
      const raw = text.slice(f.start, f.end);
      const next = maskAddressesInText(raw);
      if (next !== raw) edits.push({ start: f.start, end: f.end, replacement: next });
    }
  }
  removeMembers(fields, (f) => f.key === REMOVED_KEY, edits);
}

/**
 * getStats: value is `{reportId: report | null, ..., t: timestamp}`, its `{` at `start`.
 * `checked` false: the frame is text that JSON.parse did not see. Then the key hits are taken
 * from the frame's first byte (`firstHit`: where the pre-check found the first one, not to search
 * that part twice) and the walk stops, returning undefined, at any hit outside a report's value (in
 * the head, in a report id, between reports, after the value, or straddling a value's end),
 * the places a walk misled by invalid text would put a member of a report; each report holding a
 * hit is parsed on its own before it is rewritten, and the walk throws at a separator that is not
 * JSON's. So every address key the hint can find sits in text JSON.parse accepted, where the walk
 * is exact, and the (large) rest of the frame is only skipped, never parsed: a frame without a
 * hit is stored as it came whatever it holds, and the reports without one are treated the same.
 */
function rewriteStats(text: string, start: number, checked: boolean, firstHit = 0): string | undefined {
  // Where the address keys may be (a superset: see STATS_KEYS_PLAIN); only the reports holding
  // one are taken apart member by member, and the reports after the last one are not walked.
  const keys = text.includes('\\') ? STATS_KEYS : STATS_KEYS_PLAIN;
  keys.lastIndex = checked ? start : firstHit;
  const hits: number[] = [];
  const ends: number[] = [];
  for (let m = keys.exec(text); m !== null; m = keys.exec(text)) {
    hits.push(m.index);
    ends.push(m.index + m[0].length);
  }
  if (hits.length === 0) return text;
  const edits: Edit[] = [];
  let h = 0;
  for (const report of members(text, start, hits[hits.length - 1])) {
    let inValue = false;
    for (; h < hits.length && hits[h] < report.end; h++) {
      if (!checked && (hits[h] < report.start || ends[h] > report.end)) return undefined;
      if (hits[h] >= report.start) inValue = true;
    }
    if (!inValue) continue;
    if (!checked) JSON.parse(text.slice(report.start, report.end));
    if (text[report.start] === '{') rewriteReport(text, members(text, report.start), hits, edits);
    else scanSpan(text, report, edits);
    if (h === hits.length) break;
  }
  if (h < hits.length && !checked) return undefined;
  return applyEdits(text, edits);
}

/** onicecandidateerror: `address` as an address, `url` kept, every other string member (a legacy `hostCandidate`, `errorText`) scanned. */
function rewriteIceError(text: string): string {
  const value = valueSpan(text);
  if (text[value.start] !== '{') return maskAddressesInText(text);
  const edits: Edit[] = [];
  for (const m of members(text, value.start)) {
    if (m.key === 'url') continue;
    const raw = text.slice(m.start, m.end);
    const old: unknown = m.key === 'address' ? JSON.parse(raw) : undefined;
    const next = typeof old === 'string' ? JSON.stringify(obfuscateAddress(old)) : maskAddressesInText(raw);
    if (next !== raw) edits.push({ start: m.start, end: m.end, replacement: next });
  }
  return applyEdits(text, edits);
}

/**
 * Rewrites the string member(s) `field` of the frame's value object with fn. `value` is that
 * object as JSON.parse decoded it: when the field is written once (keys compared decoded, so an
 * escaped duplicate counts), its parsed string is the member's and most SDPs and candidates need
 * no change (Chrome's SDP already says 0.0.0.0), decided without decoding the member again.
 */
function rewriteField(text: string, value: unknown, field: string, fn: (s: string) => string): string {
  const span = valueSpan(text);
  const first = text[span.start];
  if (first === 'n') return text; // null: end of gathering, setLocalDescription() without arguments
  if (first !== '{') return maskAddressesInText(text);
  const fields = members(text, span.start).filter((m) => m.key === field);
  const current = (value as Record<string, unknown>)[field];
  if (fields.length === 1 && typeof current === 'string') {
    const next = fn(current);
    if (next === current) return text;
    return applyEdits(text, [{ start: fields[0].start, end: fields[0].end, replacement: JSON.stringify(next) }]);
  }
  const edits: Edit[] = [];
  for (const m of fields) {
    const old: unknown = JSON.parse(text.slice(m.start, m.end));
    if (typeof old !== 'string') return maskAddressesInText(text);
    const next = fn(old);
    if (next !== old) edits.push({ start: m.start, end: m.end, replacement: JSON.stringify(next) });
  }
  return applyEdits(text, edits);
}

function rewrite(text: string): string {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    // Not JSON: stored anyway (the protocol never drops a frame), but its structure is unknown,
    // so every address-like substring is masked by the text scan; no raw address reaches disk.
    return maskAddressesInText(text);
  }
  if (!Array.isArray(frame) || frame.length < 3) return maskAddressesInText(text);
  const method: unknown = frame[0];
  if (CANDIDATE_METHODS.has(method)) return rewriteField(text, frame[2], 'candidate', obfuscateCandidate);
  if (SDP_METHODS.has(method)) return rewriteField(text, frame[2], 'sdp', obfuscateSdp);
  if (STATS_METHODS.has(method)) {
    // Where the value starts: only the first two elements are walked, not the whole value.
    const head = elements(text, skipWhitespace(text, 0), 2);
    const start = skipWhitespace(text, skipWhitespace(text, head[1].end) + 1);
    return text[start] === '{' ? rewriteStats(text, start, true)! : maskAddressesInText(text);
  }
  if (ICE_ERROR_METHODS.has(method)) return rewriteIceError(text);
  if (ADDRESS_FREE_METHODS.has(method)) return text;
  return maskAddressesInText(text);
}

/**
 * The rewrite of a frame that passed the pre-check. getStats frames in the form clients send
 * (STATS_HEAD: JSON whitespace only, a plain pcId) are walked without JSON.parse of the whole
 * frame, which costs more than the rest of the rewrite (a 15 KB report: 28 of 56 us); any doubt
 * in that walk sends the frame down the parsed path.
 */
function rewriteText(text: string, firstHit: number): string {
  const head = STATS_HEAD.exec(text);
  return (head === null ? undefined : rewriteStats(text, head[0].length - 1, false, firstHit)) ?? rewrite(text);
}

/**
 * The pre-check on `probe` (the frame as latin1): -1 when the frame is stored as it is, else
 * where in probe the first getStats key hit is (0 for other frames).
 */
function firstHint(frame: Buffer, probe: string): number {
  if (!STATS_FRAME.test(probe)) return ADDRESS_HINT.test(probe) ? 0 : -1;
  const keys = frame.indexOf(BACKSLASH) < 0 ? STATS_KEYS_PLAIN : STATS_KEYS;
  keys.lastIndex = 0;
  const hit = keys.exec(probe);
  return hit === null ? -1 : hit.index;
}

/** The rewrite of a frame whose pre-check found `hint` in `probe` (the frame as latin1). */
function rewriteFrame(frame: Buffer, probe: string, hint: number): Buffer | string {
  // ASCII (all the fixtures, nearly all traffic) reads the same in latin1: no second decoding,
  // and the offsets (of the first key hit) are the same.
  const ascii = isAscii(frame);
  const text = ascii ? probe : frame.toString('utf8');
  let out: string;
  try {
    out = rewriteText(text, ascii ? hint : 0);
  } catch {
    // Never throw on the ingestion path: any shape the rewriters did not expect gets the text scan.
    out = maskAddressesInText(text);
  }
  return out === text ? frame : out;
}

/** STATS_FRAME's heads as clients write them (no whitespace), up to the pcId's opening quote. */
const COMPACT_STATS_HEADS = ['["g","', '["getStats","', '["getstats","', '[1,"'].map((h) => Buffer.from(h, 'latin1'));

/**
 * Whether the frame starts with a compact head, a pcId without `"` or `\` and `",{`: text that
 * STATS_FRAME matches, checked on the bytes. Other heads (whitespace, a null pcId) take the text path.
 */
function compactStatsHead(frame: Buffer): boolean {
  let i = -1;
  for (const head of COMPACT_STATS_HEADS) {
    let k = 0;
    while (k < head.length && frame[k] === head[k]) k++;
    if (k === head.length) {
      i = k;
      break;
    }
  }
  if (i < 0) return false;
  for (; i < frame.length; i++) {
    const b = frame[i];
    if (b === 0x22) return frame[i + 1] === 0x2c && frame[i + 2] === 0x7b;
    if (b === BACKSLASH) return false;
  }
  return false;
}

/** The FrameTransform: the same Buffer when nothing changes, else the rewritten text. */
export function obfuscateFrame(frame: Buffer): Buffer | string {
  // getStats frames without a backslash, most of the traffic, have their keys searched in the
  // bytes (what STATS_KEYS_PLAIN finds in the latin1 text, at the same index): one without a
  // hit, most of those, never becomes a string, whose allocation and GC cost the server more
  // than the search itself. A backslash anywhere sends the frame down the text path (STATS_KEYS).
  if (compactStatsHead(frame)) {
    const hit = findStatsKey(frame);
    if (hit === NO_KEY) return frame;
    if (hit >= 0 && frame.indexOf(BACKSLASH) < 0) return rewriteFrame(frame, frame.toString('latin1'), hit);
  }
  const probe = frame.toString('latin1');
  const hint = firstHint(frame, probe);
  return hint < 0 ? frame : rewriteFrame(frame, probe, hint);
}
