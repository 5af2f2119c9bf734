/**
 * What the logger itself removes from every line, whatever a caller passes: token query values,
 * Authorization headers, and anything shaped like a JWT (Jitsi clients put the token in the path).
 * Plain functions, applied by the pino hooks in logging.module.ts.
 */
// A token value is URL-safe base64 and dots, possibly percent-encoded.
const TOKEN_QUERY = /(rtcstats-token=)[A-Za-z0-9._~%+=/-]+/gi;
const BEARER = /(bearer\s+)[^\s"',]+/gi;
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
export const REDACTED = '[redacted]';

export function redactText(text: string): string {
  if (!text.includes('rtcstats-token') && !/bearer/i.test(text) && !text.includes('eyJ')) return text;
  return text.replace(TOKEN_QUERY, `$1${REDACTED}`).replace(BEARER, `$1${REDACTED}`).replace(JWT, REDACTED);
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// The lines of a connection name its dump ("Connection <id> ...", "Dump <id>: ...", "... (dump <id>)").
const DUMP_ID = new RegExp(`(?:^(?:Connection|Dump) |\\(dump )(${UUID})`);
// A Jitsi socket: "Jitsi connection <id> ...", or a session's line "... on connection <id>".
const JITSI_CONNECTION = new RegExp(`(?:^Jitsi connection | on connection )(${UUID})`);

/** The structured fields a message names: `dumpId`, and `connectionId` for Jitsi sockets. */
export function messageFields(message: string): { dumpId?: string; connectionId?: string } | undefined {
  const dump = DUMP_ID.exec(message);
  const conn = JITSI_CONNECTION.exec(message);
  if (dump === null && conn === null) return undefined;
  return { ...(dump !== null && { dumpId: dump[1] }), ...(conn !== null && { connectionId: conn[1] }) };
}

/** A request URL for the log: the path and the query, with token values masked. */
export function redactUrl(url: string | undefined): string | undefined {
  return url === undefined ? undefined : redactText(url);
}
