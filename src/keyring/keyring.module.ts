import { Global, Module } from '@nestjs/common';

import { KeyringService } from './keyring.service.js';

/** One keyring snapshot for the whole process: verification, POST /tokens and the admin routes. */
@Global()
@Module({
  providers: [KeyringService],
  exports: [KeyringService],
})
export class KeyringModule {}
