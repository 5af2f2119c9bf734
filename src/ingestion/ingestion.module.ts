import { Module } from '@nestjs/common';

import { AnalysisModule } from '../analysis/analysis.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { JitsiIngestion } from '../jitsi/jitsi-ingestion.service.js';
import { MetadataModule } from '../metadata/metadata.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { DumpFinalizer } from './dump-finalizer.service.js';
import { RtcstatsGateway } from './rtcstats.gateway.js';

@Module({
  imports: [AuthModule, StorageModule, MetadataModule, AnalysisModule],
  providers: [RtcstatsGateway, DumpFinalizer, JitsiIngestion],
})
export class IngestionModule {}
