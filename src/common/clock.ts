import { Global, Module } from '@nestjs/common';

/** Injection token for the time source (epoch ms) of token checks, minting and rate windows, so tests can set the time. */
export const CLOCK = Symbol('CLOCK');
export type Clock = () => number;

/** Provides the one clock every module uses (the system clock; tests override CLOCK). */
@Global()
@Module({ providers: [{ provide: CLOCK, useValue: Date.now }], exports: [CLOCK] })
export class ClockModule {}
