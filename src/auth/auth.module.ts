import { Module } from '@nestjs/common';

import { KeyUsage } from './key-usage.js';
import { ConnectionAuthenticator } from './connection-authenticator.js';

@Module({
  providers: [ConnectionAuthenticator, { provide: KeyUsage, useValue: new KeyUsage() }],
  exports: [ConnectionAuthenticator, KeyUsage],
})
export class AuthModule {}
