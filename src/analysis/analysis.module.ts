import path from 'node:path';

import { Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';

import { slotDir } from '../cluster/work-folders.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { MetadataModule } from '../metadata/metadata.module.js';
import { METADATA_STORE, type MetadataStore } from '../metadata/metadata.store.js';
import { AnalysisForwarder } from './analysis-forwarder.js';

/** The forwarder, or null when RTCSTATS_ANALYSIS_URL is unset. */
export const ANALYSIS_FORWARDER = Symbol('ANALYSIS_FORWARDER');

@Module({
  imports: [MetadataModule],
  providers: [
    {
      provide: ANALYSIS_FORWARDER,
      inject: [APP_CONFIG, METADATA_STORE],
      useFactory: (config: AppConfig, metadata: MetadataStore) =>
        config.analysis === undefined
          ? null
          : new AnalysisForwarder(
              { ...config.analysis, spoolDir: slotDir(path.join(config.dataDir, 'analysis'), config.workerSlot) },
              metadata,
              new Logger('Analysis'),
            ),
    },
  ],
  exports: [ANALYSIS_FORWARDER],
})
export class AnalysisModule implements OnApplicationShutdown {
  constructor(@Inject(ANALYSIS_FORWARDER) private readonly forwarder: AnalysisForwarder | null) {}

  async onApplicationShutdown(): Promise<void> {
    await this.forwarder?.close();
  }
}
