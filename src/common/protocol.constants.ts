/*
 * Names and numbers of the wire protocol (spec/protocol.md) and the HTTP API that several modules
 * share: the authenticator, the gateway, the token endpoint, the CLIs and the OpenAPI document.
 */

/** Query parameter that carries the client token on the WebSocket URL. */
export const TOKEN_PARAM = 'rtcstats-token';

/** The subprotocol rtcstats.js offers and the server echoes. */
export const PREFERRED_SUBPROTOCOL = 'rtcstats#5.0';
/** Any rtcstats subprotocol version (echoed when 5.0 is not offered). */
export const SUBPROTOCOL_PATTERN = /^rtcstats#\d+\.\d+$/;

/** OpenAPI security scheme name of the API key (Authorization: Bearer <API key>). */
export const API_KEY_SCHEME = 'api-key';

/**
 * Close reasons (with 1008) of a rejected handshake: one fixed short text per category, so a
 * client learns what kind of problem it has and nothing of the server's configuration (library
 * messages name the expected issuer and audience). The detail goes to the server log only.
 */
export const REJECT_TOKEN_MISSING = 'rtcstats-token missing';
export const REJECT_JWT_EXPIRED = 'jwt expired';
export const REJECT_INVALID_SIGNATURE = 'invalid signature';
export const REJECT_UNKNOWN_KID = 'unknown kid';
export const REJECT_INVALID_TOKEN = 'invalid token';
/** Close reason (with 1008) for live connections authenticated by a key that was just revoked. */
export const CLOSE_REASON_KEY_REVOKED = 'key revoked';
/** A token naming a revoked kid: the same text as the close of that key's live connections. */
export const REJECT_KEY_REVOKED = CLOSE_REASON_KEY_REVOKED;
export type RejectReason =
  | typeof REJECT_TOKEN_MISSING
  | typeof REJECT_JWT_EXPIRED
  | typeof REJECT_INVALID_SIGNATURE
  | typeof REJECT_UNKNOWN_KID
  | typeof REJECT_INVALID_TOKEN
  | typeof REJECT_KEY_REVOKED;

// WebSocket close codes (RFC 6455, section 7.4.1) the collector sends.
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_INTERNAL_ERROR = 1011;
