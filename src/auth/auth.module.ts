import { Module } from '@nestjs/common';

import { CLOCK, type Clock } from '../common/clock.js';
import { ApiKeyAuthenticator } from './api-key.guard.js';
import { KeyUsage } from './key-usage.js';
import { PerKeyJwt } from './per-key-jwt.js';
import { ConnectionAuthenticator } from './connection-authenticator.js';

@Module({
  providers: [
    ConnectionAuthenticator,
    ApiKeyAuthenticator,
    PerKeyJwt,
    { provide: KeyUsage, inject: [CLOCK], useFactory: (clock: Clock) => new KeyUsage(clock) },
  ],
  exports: [ConnectionAuthenticator, ApiKeyAuthenticator, KeyUsage, PerKeyJwt],
})
export class AuthModule {}
