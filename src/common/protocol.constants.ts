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

// WebSocket close codes (RFC 6455, section 7.4.1) the collector sends.
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_MESSAGE_TOO_BIG = 1009;
export const CLOSE_INTERNAL_ERROR = 1011;
