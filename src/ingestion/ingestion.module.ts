import { Module } from '@nestjs/common';

import { AuthModule } from '../auth/auth.module.js';
import { FinalizationModule } from '../finalization/finalization.module.js';
import { JitsiIngestion } from '../jitsi/jitsi-ingestion.service.js';
import { RtcstatsGateway } from './rtcstats.gateway.js';

@Module({
  imports: [AuthModule, FinalizationModule],
  providers: [RtcstatsGateway, JitsiIngestion],
})
export class IngestionModule {}
