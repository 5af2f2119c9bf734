import { Module } from '@nestjs/common';

import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { AuthModule } from '../auth/auth.module.js';
import { KeysController } from './keys.controller.js';

@Module({
  imports: [AuthModule],
  controllers: [KeysController],
  providers: [ApiKeyGuard],
})
export class KeysModule {}
