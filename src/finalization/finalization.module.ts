import { Module } from '@nestjs/common';

import { AnalysisModule } from '../analysis/analysis.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { MetadataModule } from '../metadata/metadata.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { FinalizationController } from './finalization.controller.js';
import { FinalizationService } from './finalization.service.js';

@Module({
  imports: [AuthModule, StorageModule, MetadataModule, AnalysisModule],
  controllers: [FinalizationController],
  providers: [FinalizationService],
  exports: [FinalizationService],
})
export class FinalizationModule {}
