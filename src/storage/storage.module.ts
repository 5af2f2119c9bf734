import path from 'node:path';

import { Module } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { DUMP_STORE } from './dump-store.js';
import { LocalDumpStore } from './local-dump.store.js';

@Module({
  providers: [
    {
      provide: DUMP_STORE,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new LocalDumpStore(path.join(config.dataDir, 'dumps'), config.gzipLevel),
    },
  ],
  exports: [DUMP_STORE],
})
export class StorageModule {}
