import path from 'node:path';

import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';

import { slotDir } from '../cluster/work-folders.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { DUMP_STORE, type DumpStore } from './dump-store.js';
import { LocalDumpStore } from './local-dump.store.js';

/** The S3-compatible bucket when RTCSTATS_S3_BUCKET is set, else `<data dir>/dumps`. */
export async function openDumpStore(config: AppConfig): Promise<DumpStore> {
  if (config.s3 === undefined) {
    const spareDir = slotDir(path.join(config.dataDir, 'spare'), config.workerSlot);
    return new LocalDumpStore(path.join(config.dataDir, 'dumps'), config.gzipLevel, config.workerSlot === undefined, spareDir);
  }
  // Loaded only when used: the AWS SDK adds about 25 MB of RSS to every process that imports it.
  const { S3DumpStore } = await import('./s3-dump.store.js');
  const store = new S3DumpStore(config.s3, config.gzipLevel);
  await store.checkConfig();
  return store;
}

@Module({
  providers: [{ provide: DUMP_STORE, inject: [APP_CONFIG], useFactory: openDumpStore }],
  exports: [DUMP_STORE],
})
export class StorageModule implements OnApplicationShutdown {
  constructor(@Inject(DUMP_STORE) private readonly store: DumpStore) {}

  onApplicationShutdown(): void {
    this.store.close?.();
  }
}
