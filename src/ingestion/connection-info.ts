import type { IncomingMessage } from 'node:http';

import type { RtcStatsClaims } from '../auth/token-verifier.js';
import { TOKEN_PARAM } from '../common/protocol.constants.js';

/** What the server knows about an accepted connection; becomes dump line 2 and the metadata record. */
export interface ConnectionInfo {
  readonly id: string;
  readonly startTime: number;
  /** Path + query with every rtcstats-token value replaced by "obfuscated". */
  readonly url: string;
  readonly path: string;
  readonly origin: string | undefined;
  readonly userAgent: string | undefined;
  readonly remoteAddresses: readonly string[];
  readonly clientProtocol: string | undefined;
  readonly kid: string | null;
  readonly claims: RtcStatsClaims;
}

const MAX_HEADER_VALUE = 1024;

function header(request: IncomingMessage, name: string): string | undefined {
  const v = request.headers[name];
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s === undefined ? undefined : s.slice(0, MAX_HEADER_VALUE);
}

/** Replaces the value of each rtcstats-token parameter, however its name is percent-encoded. */
export function obfuscateTokenInUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const masked = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq === -1 ? pair : pair.slice(0, eq);
      let name: string;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        name = rawName;
      }
      return name === TOKEN_PARAM ? `${rawName}=obfuscated` : pair;
    })
    .join('&');
  return url.slice(0, q + 1) + masked + (hash === -1 ? '' : url.slice(hash));
}

export function connectionInfo(
  request: IncomingMessage,
  id: string,
  startTime: number,
  auth: { kid: string | null; claims: RtcStatsClaims },
  remoteAddresses: readonly string[],
): ConnectionInfo {
  const url = request.url ?? '/';
  const q = url.indexOf('?');
  return {
    id,
    startTime,
    url: obfuscateTokenInUrl(url),
    path: q === -1 ? url : url.slice(0, q),
    origin: header(request, 'origin'),
    userAgent: header(request, 'user-agent'),
    remoteAddresses,
    clientProtocol: header(request, 'sec-websocket-protocol'),
    kid: auth.kid,
    claims: auth.claims,
  };
}

/** Lines 1 and 2 of a dump (format v3): the magic line and the connection metadata, spec keys in spec order. */
export function dumpHeader(info: ConnectionInfo): string {
  const meta: Record<string, unknown> = { url: info.url };
  if (info.origin !== undefined) meta.origin = info.origin;
  if (info.userAgent !== undefined) meta.userAgent = info.userAgent;
  meta.startTime = info.startTime;
  meta.remoteAddresses = info.remoteAddresses;
  if (info.clientProtocol !== undefined) meta.clientProtocol = info.clientProtocol;
  meta.fileFormat = 3;
  meta.dumpId = info.id;
  // What the metadata record needs beyond the keys above, so recovery after a crash can rebuild
  // the record from the file alone (readers ignore extra keys).
  meta.kid = info.kid;
  meta.rtcStats = {
    user: info.claims.user ?? null,
    session: info.claims.session ?? null,
    conference: info.claims.conference ?? null,
  };
  return `RTCStatsDump\n${JSON.stringify(meta)}\n`;
}
