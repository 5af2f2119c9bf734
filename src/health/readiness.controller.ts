import { Controller, Get, Inject, Logger } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';

import { DrainState } from '../lifecycle/drain-state.js';
import { LimitsService } from '../limits/limits.service.js';
import { METADATA_STORE, type MetadataStore } from '../metadata/metadata.store.js';
import { DUMP_STORE, type DumpStore } from '../storage/dump-store.js';

/** A store that does not answer within this is as good as down for a readiness probe. */
export const PING_TIMEOUT_MS = 2_000;

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
  ]);
}

/**
 * GET /readyz: 200 only when a new connection could be recorded end to end: the metadata store and
 * dump storage answer (through their interfaces' ping), the data disk is above
 * RTCSTATS_MIN_FREE_DISK and the service is not draining; 503 with each check's state otherwise.
 * GET /healthcheck stays the liveness probe (the process is up).
 */
@Controller()
export class ReadinessController {
  private readonly logger = new Logger('Readiness');
  private lastProblems = '';

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly drain: DrainState,
    private readonly limits: LimitsService,
    @Inject(METADATA_STORE) private readonly metadata: MetadataStore,
    @Inject(DUMP_STORE) private readonly dumps: DumpStore,
  ) {}

  @Get('readyz')
  @HealthCheck({ swaggerDocumentation: false })
  async readyz() {
    try {
      const result = await this.health.check([
        () => this.ping('metadata', this.metadata),
        () => this.ping('storage', this.dumps),
        () => this.disk(),
        () => this.draining(),
      ]);
      this.report('');
      return result;
    } catch (err) {
      const body = (err as { response?: { error?: Record<string, { message?: string }> } }).response;
      this.report(Object.entries(body?.error ?? {}).map(([k, v]) => `${k}: ${v.message ?? 'down'}`).join('; '));
      throw err;
    }
  }

  private async ping(key: 'metadata' | 'storage', store: { backend: string; ping(): Promise<void> }) {
    const check = this.indicator.check(key);
    try {
      await withTimeout(store.ping(), PING_TIMEOUT_MS);
      return check.up({ backend: store.backend });
    } catch (err) {
      // The store's message (e.g. SQLITE_BUSY, ENOTDIR), never a connection string.
      return check.down({ backend: store.backend, message: (err as Error).message.slice(0, 200) });
    }
  }

  private async disk() {
    const check = this.indicator.check('disk');
    await this.limits.sampleDisk();
    const { free, minFreeBytes, lastError } = this.limits.disk;
    if (free === undefined) return check.down({ message: `free space unknown: ${lastError ?? 'not sampled'}` });
    if (free < minFreeBytes) return check.down({ freeBytes: free, minFreeBytes, message: 'free space below RTCSTATS_MIN_FREE_DISK' });
    return check.up({ freeBytes: free, minFreeBytes });
  }

  private draining() {
    const check = this.indicator.check('draining');
    return this.drain.draining ? check.down({ message: 'draining' }) : check.up();
  }

  /** One log line when readiness changes (probes come every few seconds; a flood helps nobody). */
  private report(problems: string): void {
    if (problems === this.lastProblems) return;
    if (problems === '') this.logger.log('Ready again');
    else this.logger.warn(`Not ready: ${problems}`);
    this.lastProblems = problems;
  }
}
