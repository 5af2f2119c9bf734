/**
 * Offsets of values inside JSON text, so that a value can be replaced (or a member removed)
 * while every other byte stays as the client wrote it. It does not validate the values it skips
 * (run it on text JSON.parse accepted, or parse the spans it returns), but it throws where the
 * separators it steps over are not JSON's, so a walk it completes agrees with JSON.parse on
 * where each member starts and ends whenever those members parse.
 */

export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Member extends Span {
  /** The decoded key. */
  readonly key: string;
  /** Where the member's key starts; `start`/`end` delimit its value. */
  readonly keyStart: number;
}

const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

export function skipWhitespace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** Index just past the string whose opening quote is at i. */
function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) throw new SyntaxError('unterminated JSON string');
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Index just past the value starting at i (char codes, not one-character strings: this is hot). */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d === QUOTE) j = stringEnd(text, j) - 1;
      else if (d === OPEN_BRACE || d === OPEN_BRACKET) depth++;
      else if ((d === CLOSE_BRACE || d === CLOSE_BRACKET) && --depth === 0) return j + 1;
    }
    throw new SyntaxError('unterminated JSON container');
  }
  // A number or a literal: only the characters those can hold, so a value that is neither (a
  // stray quote or bracket) ends here and fails the separator check of the caller.
  let j = i;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    const letter = (d | 0x20) >= 0x61 && (d | 0x20) <= 0x7a;
    if (!letter && !(d >= 0x30 && d <= 0x39) && d !== 0x2b && d !== 0x2d && d !== 0x2e) break;
  }
  return j;
}

/**
 * The members of the object whose `{` is at i, in text order (duplicate keys included); with
 * `until`, the walk stops at the first member ending past that offset (the ones after are not needed).
 */
export function members(text: string, i: number, until = Infinity): Member[] {
  const out: Member[] = [];
  let j = skipWhitespace(text, i + 1);
  if (text[j] === '}') return out;
  for (;;) {
    const keyStart = j;
    if (text.charCodeAt(j) !== QUOTE) throw new SyntaxError('expected a JSON key');
    const keyEnd = stringEnd(text, j);
    const raw = text.slice(keyStart + 1, keyEnd - 1);
    const key = raw.includes('\\') ? (JSON.parse(text.slice(keyStart, keyEnd)) as string) : raw;
    const colon = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(colon) !== COLON) throw new SyntaxError("expected ':' after a JSON key");
    const start = skipWhitespace(text, colon + 1);
    const end = valueEnd(text, start);
    if (end === start) throw new SyntaxError('expected a JSON value');
    out.push({ key, keyStart, start, end });
    if (end > until) return out;
    j = skipWhitespace(text, end);
    const c = text.charCodeAt(j);
    if (c === CLOSE_BRACE) return out;
    if (c !== COMMA) throw new SyntaxError("expected ',' or '}' after a JSON member");
    j = skipWhitespace(text, j + 1);
  }
}

/** The first `limit` elements of the array whose `[` is at i. */
export function elements(text: string, i: number, limit: number): Span[] {
  const out: Span[] = [];
  let j = skipWhitespace(text, i + 1);
  if (text[j] === ']') return out;
  while (out.length < limit) {
    const end = valueEnd(text, j);
    out.push({ start: j, end });
    j = skipWhitespace(text, end);
    if (text.charCodeAt(j) !== COMMA) break;
    j = skipWhitespace(text, j + 1);
  }
  return out;
}

export interface Edit extends Span {
  readonly replacement: string;
}

/** Applies non-overlapping edits; returns `text` itself when there are none. */
export function applyEdits(text: string, edits: Edit[]): string {
  if (edits.length === 0) return text;
  edits.sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const e of edits) {
    out += text.slice(at, e.start) + e.replacement;
    at = e.end;
  }
  return out + text.slice(at);
}

/**
 * Edits removing the flagged members of one object, commas included, so the object stays valid
 * JSON: a member followed by another goes with the separator up to the next key; a trailing run
 * of removed members goes with the separator before it.
 */
export function removeMembers(list: readonly Member[], remove: (m: Member) => boolean, edits: Edit[]): void {
  let tail = list.length;
  while (tail > 0 && remove(list[tail - 1])) tail--;
  for (let i = 0; i < tail; i++) {
    if (remove(list[i])) edits.push({ start: list[i].keyStart, end: list[i + 1].keyStart, replacement: '' });
  }
  if (tail < list.length) {
    const start = tail > 0 ? list[tail - 1].end : list[0].keyStart;
    edits.push({ start, end: list[list.length - 1].end, replacement: '' });
  }
}
