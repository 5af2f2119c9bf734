import path from 'node:path';

import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';

import { ANALYSIS_FORWARDER } from '../analysis/analysis.module.js';
import type { AnalysisForwarder } from '../analysis/analysis-forwarder.js';
import { adoptOrphans, slotDir } from '../cluster/work-folders.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { METADATA_STORE, type MetadataStore } from '../metadata/metadata.store.js';
import { DUMP_STORE, type DumpStore } from '../storage/dump-store.js';
import { FinalizeQueue } from './finalize-queue.js';
import { recoveryJobs } from './recovery.js';

/**
 * The process's one finalization queue (provided once). At start it takes over every dump a
 * previous run (or, in a cluster, the dead worker it replaces) left in its work/ or outbox/
 * folder, before the server accepts connections.
 */
@Injectable()
export class FinalizationService implements OnModuleInit {
  private readonly logger = new Logger('Dumps');
  readonly queue: FinalizeQueue;
  readonly workDir: string;
  readonly outboxDir: string;
  private readonly single: boolean;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(DUMP_STORE) dumps: DumpStore,
    @Inject(METADATA_STORE) metadata: MetadataStore,
    @Inject(ANALYSIS_FORWARDER) analysis: AnalysisForwarder | null,
  ) {
    // A cluster worker owns the folders of its slot; a single process owns work/ and outbox/.
    this.workDir = slotDir(path.join(config.dataDir, 'work'), config.workerSlot);
    this.outboxDir = slotDir(path.join(config.dataDir, 'outbox'), config.workerSlot);
    this.single = config.workerSlot === undefined;
    this.queue = new FinalizeQueue({
      dumps,
      metadata,
      outboxDir: this.outboxDir,
      concurrency: config.finalizeConcurrency,
      log: {
        log: (m) => this.logger.log(m),
        warn: (m) => this.logger.warn(m),
        error: (m) => this.logger.error(m),
      },
      onRecorded: analysis === null ? undefined : (record, file) => analysis.submit(record.id, file),
    });
  }

  onModuleInit(): void {
    // Alone, this process also takes over what cluster workers of an earlier run left (the
    // cluster primary does the same for its workers before forking them).
    if (this.single) {
      adoptOrphans(this.workDir, this.workDir, undefined);
      adoptOrphans(this.outboxDir, this.outboxDir, undefined);
    }
    const jobs = recoveryJobs(this.workDir, this.outboxDir);
    if (jobs.length === 0) return;
    this.logger.warn(`Recovering ${jobs.length} dump(s) left by a previous run in ${this.workDir} and ${this.outboxDir}`);
    for (const job of jobs) this.queue.submit(job);
  }
}
