export { generateAuthToken, type GenerateAuthTokenOptions } from './tokens/generate-auth-token.js';
export type { RtcStatsClaims } from './auth/token-verifier.js';
