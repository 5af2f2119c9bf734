import { Module } from '@nestjs/common';

import { KeyUsage } from './key-usage.js';
import { WsAuthGuard } from './ws-auth.guard.js';

@Module({
  providers: [WsAuthGuard, { provide: KeyUsage, useValue: new KeyUsage() }],
  exports: [WsAuthGuard, KeyUsage],
})
export class AuthModule {}
