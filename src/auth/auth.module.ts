import { Module } from '@nestjs/common';

import { ApiKeyAuthenticator } from './api-key.guard.js';
import { KeyUsage } from './key-usage.js';
import { ConnectionAuthenticator } from './connection-authenticator.js';

@Module({
  providers: [ConnectionAuthenticator, ApiKeyAuthenticator, { provide: KeyUsage, useValue: new KeyUsage() }],
  exports: [ConnectionAuthenticator, ApiKeyAuthenticator, KeyUsage],
})
export class AuthModule {}
