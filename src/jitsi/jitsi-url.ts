/**
 * Where a Jitsi client's token is. The client cannot set headers and appends
 * `/<meetingFqn>?statsSessionId=<id>&isReconnect=<bool>` to the configured endpoint, so the token
 * comes in one of three forms:
 *   - query:          `<endpoint>/<fqn>?statsSessionId=..&rtcstats-token=<jwt>` (a proxy or custom client)
 *   - query + path:   endpoint `wss://host/?rtcstats-token=<jwt>` gives `?rtcstats-token=<jwt>/<fqn>?statsSessionId=..`
 *   - path:           endpoint `wss://host/t/<jwt>` gives `/t/<jwt>/<fqn>?statsSessionId=..`
 * A JWT never contains `/`, so a query value is cut at the first `/`.
 */
import { TOKEN_PARAM } from '../common/protocol.constants.js';

export const MASKED_TOKEN = 'obfuscated';

export interface JitsiRequestUrl {
  /** Every token found, in order (more than one is refused). */
  readonly tokens: readonly string[];
  /** Path and query with each token replaced by "obfuscated". */
  readonly url: string;
  /** The masked path, with the meeting path the client appended to a query token. */
  readonly path: string;
  readonly statsSessionId: string | undefined;
  readonly isReconnect: boolean;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

interface Query {
  masked: string;
  tokens: string[];
  params: Map<string, string>;
  /** Meeting path appended to a query token. */
  appendedPath: string;
}

function parseQuery(query: string): Query {
  const out: Query = { masked: '', tokens: [], params: new Map(), appendedPath: '' };
  const pairs = query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const name = decode(rawName);
    if (name !== TOKEN_PARAM) {
      if (!out.params.has(name)) out.params.set(name, decode(rawValue));
      return pair;
    }
    const slash = rawValue.indexOf('/');
    if (slash === -1) {
      out.tokens.push(decode(rawValue));
      return `${rawName}=${MASKED_TOKEN}`;
    }
    // `<jwt>/<fqn>?statsSessionId=...`: the client's own path and query follow the token.
    out.tokens.push(decode(rawValue.slice(0, slash)));
    const rest = rawValue.slice(slash);
    const q = rest.indexOf('?');
    out.appendedPath = q === -1 ? rest : rest.slice(0, q);
    if (q !== -1) {
      const inner = parseQuery(rest.slice(q + 1));
      out.tokens.push(...inner.tokens);
      for (const [k, v] of inner.params) if (!out.params.has(k)) out.params.set(k, v);
      return `${rawName}=${MASKED_TOKEN}${out.appendedPath}?${inner.masked}`;
    }
    return `${rawName}=${MASKED_TOKEN}${rest}`;
  });
  out.masked = pairs.join('&');
  return out;
}

const PATH_TOKEN = /(^|\/)t\/([^/]+)/;

export function parseJitsiUrl(rawUrl: string | undefined): JitsiRequestUrl {
  const url = rawUrl ?? '/';
  const q = url.indexOf('?');
  let path = q === -1 ? url : url.slice(0, q);
  const tokens: string[] = [];
  const m = PATH_TOKEN.exec(path);
  if (m !== null) {
    tokens.push(decode(m[2]));
    const at = m.index + m[1].length + 2;
    path = path.slice(0, at) + MASKED_TOKEN + path.slice(at + m[2].length);
  }
  if (q === -1) return { tokens, url: path, path, statsSessionId: undefined, isReconnect: false };
  const query = parseQuery(url.slice(q + 1));
  tokens.push(...query.tokens);
  return {
    tokens,
    url: `${path}?${query.masked}`,
    path: query.appendedPath === '' ? path : path.replace(/\/$/, '') + query.appendedPath,
    statsSessionId: query.params.get('statsSessionId'),
    isReconnect: query.params.get('isReconnect') === 'true',
  };
}
