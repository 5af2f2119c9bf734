import path from 'node:path';

import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { METADATA_STORE, type MetadataStore } from './metadata.store.js';
import { openSqliteMetadataStore } from './sqlite.js';

export const SQLITE_FILE_NAME = 'rtcstats.sqlite';

@Module({
  providers: [
    {
      provide: METADATA_STORE,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => openSqliteMetadataStore(path.join(config.dataDir, SQLITE_FILE_NAME)),
    },
  ],
  exports: [METADATA_STORE],
})
export class MetadataModule implements OnApplicationShutdown {
  constructor(@Inject(METADATA_STORE) private readonly store: MetadataStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
