/** Injection token for the time source of token minting (epoch ms), so tests can fix the time. */
export const CLOCK = Symbol('CLOCK');
export type Clock = () => number;
