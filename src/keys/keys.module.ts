import { Module } from '@nestjs/common';

import { AuthModule } from '../auth/auth.module.js';
import { KeysController } from './keys.controller.js';

@Module({
  imports: [AuthModule],
  controllers: [KeysController],
})
export class KeysModule {}
