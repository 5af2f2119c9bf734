import fs from 'node:fs';

import { Inject, Injectable, Logger } from '@nestjs/common';

import { ANALYSIS_FORWARDER } from '../analysis/analysis.module.js';
import type { AnalysisForwarder } from '../analysis/analysis-forwarder.js';
import { METADATA_STORE, type MetadataStore } from '../metadata/metadata.store.js';
import { DUMP_STORE, type DumpStore } from '../storage/dump-store.js';
import type { SessionResult } from './dump-session.js';

/**
 * Moves a finished live dump to the dump store, then records its metadata, then removes the
 * live file. Any failure keeps the live file in the work folder, where it can be recovered.
 */
@Injectable()
export class DumpFinalizer {
  private readonly logger = new Logger('Dumps');

  constructor(
    @Inject(DUMP_STORE) private readonly dumps: DumpStore,
    @Inject(METADATA_STORE) private readonly metadata: MetadataStore,
    @Inject(ANALYSIS_FORWARDER) private readonly analysis: AnalysisForwarder | null,
  ) {}

  async finalize(result: SessionResult): Promise<void> {
    const { info } = result;
    if (result.error !== undefined) {
      this.logger.error(`Dump ${info.id}: write failed (${result.error.message}); live file kept at ${result.file}`);
      return;
    }
    if (!result.stored) return;
    try {
      const location = await this.dumps.store(info.id, result.file);
      await this.metadata.insert({
        id: info.id,
        startTime: info.startTime,
        endTime: result.endTime,
        closeCode: result.closeCode,
        frameCount: result.frameCount,
        bytes: result.bytes,
        location,
        user: info.claims.user ?? null,
        session: info.claims.session ?? null,
        conference: info.claims.conference ?? null,
        kid: info.kid,
        origin: info.origin ?? null,
        userAgent: info.userAgent ?? null,
        clientProtocol: info.clientProtocol ?? null,
        path: info.path,
        remoteAddress: info.remoteAddresses.join(', ') || null,
        ...result.extra,
      });
      // Stored and recorded: analysis takes its own copy of the file and never throws.
      await this.analysis?.submit(info.id, result.file);
      await fs.promises.unlink(result.file);
      this.logger.log(
        `Dump ${info.id} stored: ${result.frameCount} frames, ${result.bytes} bytes, close code ${result.closeCode}, at ${location}`,
      );
    } catch (err) {
      this.logger.error(`Dump ${info.id}: finalizing failed (${(err as Error).message}); live file kept at ${result.file}`);
    }
  }
}
