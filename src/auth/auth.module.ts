import { Module } from '@nestjs/common';

import { WsAuthGuard } from './ws-auth.guard.js';

@Module({
  providers: [WsAuthGuard],
  exports: [WsAuthGuard],
})
export class AuthModule {}
