import { Module } from '@nestjs/common';

import { MetadataModule } from '../metadata/metadata.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { FinalizationService } from './finalization.service.js';

@Module({
  imports: [StorageModule, MetadataModule],
  providers: [FinalizationService],
  exports: [FinalizationService],
})
export class FinalizationModule {}
