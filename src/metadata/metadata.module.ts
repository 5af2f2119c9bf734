import path from 'node:path';

import { Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { METADATA_STORE, type MetadataStore } from './metadata.store.js';
import { openSqliteMetadataStore } from './sqlite.js';

export const SQLITE_FILE_NAME = 'rtcstats.sqlite';

/** PostgreSQL when RTCSTATS_DATABASE_URL is set, else the embedded SQLite file. */
export async function openMetadataStore(config: AppConfig): Promise<MetadataStore> {
  const logger = new Logger('Metadata');
  const onMigrated = (applied: string[]) => logger.log(`Metadata schema migrated: ${applied.join(', ')}`);
  if (config.database.url !== undefined) {
    // Loaded only when used (pg adds about 15 MB of RSS to a process that imports it).
    const { openPostgresMetadataStore } = await import('./postgres.js');
    return openPostgresMetadataStore({ database: config.database, hostIdentifier: config.hostIdentifier, onMigrated });
  }
  return openSqliteMetadataStore(
    path.join(config.dataDir, SQLITE_FILE_NAME),
    { table: config.database.table, hostIdentifier: config.hostIdentifier },
    onMigrated,
  );
}

@Module({
  providers: [{ provide: METADATA_STORE, inject: [APP_CONFIG], useFactory: openMetadataStore }],
  exports: [METADATA_STORE],
})
export class MetadataModule implements OnApplicationShutdown {
  constructor(@Inject(METADATA_STORE) private readonly store: MetadataStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
