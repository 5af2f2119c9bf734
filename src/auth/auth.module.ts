import { Module } from '@nestjs/common';

import { CLOCK, type Clock } from '../common/clock.js';
import { KeyUsage } from './key-usage.js';
import { ConnectionAuthenticator } from './connection-authenticator.js';

@Module({
  providers: [ConnectionAuthenticator, { provide: KeyUsage, inject: [CLOCK], useFactory: (clock: Clock) => new KeyUsage(clock) }],
  exports: [ConnectionAuthenticator, KeyUsage],
})
export class AuthModule {}
