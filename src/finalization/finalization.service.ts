import path from 'node:path';

import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';

import { ANALYSIS_FORWARDER } from '../analysis/analysis.module.js';
import type { AnalysisForwarder } from '../analysis/analysis-forwarder.js';
import { adoptOrphans, slotDir } from '../cluster/work-folders.js';
import { type AppConfig, logLevelEnabled } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { MetricsService } from '../metrics/metrics.service.js';
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
    metrics: MetricsService,
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
      observer: {
        stored: (s) => {
          metrics.stored.inc({ backend: dumps.backend });
          metrics.storeLatency.observe({ backend: dumps.backend }, s);
        },
        storeFailed: () => metrics.storeFailed.inc({ backend: dumps.backend }),
        recorded: (s) => metrics.metadataLatency.observe({ backend: metadata.backend }, s),
        recordFailed: () => metrics.recordFailed.inc({ backend: metadata.backend }),
        finalized: (backend) => metrics.filesProcessed.inc({ backend }),
        attemptFailed: (backend) => metrics.filesErrored.inc({ backend }),
        retryScheduled: (backend) => metrics.retried.inc({ backend }),
      },
      log: {
        log: logLevelEnabled(config.logLevel, 'log') ? (m) => this.logger.log(m) : undefined,
        warn: (m) => this.logger.warn(m),
        error: (m) => this.logger.error(m),
      },
      onRecorded: analysis === null ? undefined : (record, file) => analysis.submit(record.id, file),
    });
    this.registerGauges(metrics);
  }

  private registerGauges(metrics: MetricsService): void {
    const stats = () => this.queue.stats;
    metrics.gauge('rtcstats_finalize_queue_depth', 'Dumps waiting to be stored and recorded (queued, running, retrying)', () => this.queue.depth);
    metrics.gauge('rtcstats_finalize_queue_retrying', 'Dumps waiting for a retry after a failed attempt', () => stats().retrying);
    metrics.gauge('rtcstats_finalize_queue_running', 'Dumps being sealed, stored or recorded now', () => stats().running);
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
