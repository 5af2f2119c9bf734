/*
 * Where a JSON text first goes wrong, as line and column. V8's JSON.parse messages quote the input
 * around the fault (and only sometimes give a position), so for files that hold secrets we report
 * the place from our own scan and never the parser's message.
 */

export interface TextPosition {
  /** 1-based. */
  readonly line: number;
  /** 1-based, in UTF-16 code units. */
  readonly column: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]); // " \ / b f n r t
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** The offset of the first character that makes `text` invalid JSON (text.length if it ends early), or -1 if valid. */
export function jsonSyntaxErrorOffset(text: string): number {
  const n = text.length;
  let i = 0;
  // Open containers: '{' or '['. Iterative, so deep nesting cannot overflow the stack.
  const stack: number[] = [];
  /** True right after a container opened: it may close at once, and needs no comma. */
  let fresh = false;
  const skipWs = () => {
    while (i < n && WS.has(text.charCodeAt(i))) i++;
  };
  const string = (): boolean => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = text.charCodeAt(i + 1);
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) if (!isHex(text.charCodeAt(i + k))) return (i += k), false;
          i += 6;
        } else if (ESCAPES.has(e)) {
          i += 2;
        } else {
          i++;
          return false;
        }
      } else {
        i++;
      }
    }
    return false;
  };
  const number = (): boolean => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (text.charCodeAt(i) === 0x30) i++;
    else if (isDigit(text.charCodeAt(i))) while (isDigit(text.charCodeAt(i))) i++;
    else return false;
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      if (!isDigit(text.charCodeAt(i))) return false;
      while (isDigit(text.charCodeAt(i))) i++;
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const s = text.charCodeAt(i);
      if (s === 0x2b || s === 0x2d) i++;
      if (!isDigit(text.charCodeAt(i))) return false;
      while (isDigit(text.charCodeAt(i))) i++;
    }
    return true;
  };
  const literal = (word: string): boolean => {
    for (let k = 0; k < word.length; k++, i++) if (text.charCodeAt(i) !== word.charCodeAt(k)) return false;
    return true;
  };
  /** Parses one value; containers are opened here and closed by the loop below. */
  const value = (): boolean => {
    skipWs();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      stack.push(c);
      fresh = true;
      i++;
      return true;
    }
    if (c === 0x22) return string();
    if (c === 0x2d || isDigit(c)) return number();
    if (c === 0x74) return literal('true');
    if (c === 0x66) return literal('false');
    if (c === 0x6e) return literal('null');
    return false;
  };
  /** After '{' or ',' in an object: a key, a colon and the value. */
  const member = (): boolean => {
    skipWs();
    if (text.charCodeAt(i) !== 0x22 || !string()) return false;
    skipWs();
    if (text.charCodeAt(i) !== 0x3a) return false;
    i++;
    return value();
  };

  if (!value()) return Math.min(i, n);
  for (;;) {
    const top = stack[stack.length - 1];
    if (top === undefined) break;
    skipWs();
    const c = text.charCodeAt(i);
    if (c === (top === 0x7b ? 0x7d : 0x5d)) {
      stack.pop();
      fresh = false;
      i++;
      continue;
    }
    if (!fresh) {
      if (c !== 0x2c) return Math.min(i, n);
      i++;
    }
    fresh = false;
    if (!(top === 0x7b ? member() : value())) return Math.min(i, n);
  }
  skipWs();
  return i < n ? i : -1;
}

/** Line and column of an offset in `text`. */
export function positionOf(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let k = text.indexOf('\n'); k !== -1 && k < offset; k = text.indexOf('\n', k + 1)) {
    line++;
    lineStart = k + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
