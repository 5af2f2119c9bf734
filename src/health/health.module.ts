import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { MetadataModule } from '../metadata/metadata.module.js';
import { StorageModule } from '../storage/storage.module.js';
import { HealthController } from './health.controller.js';
import { ReadinessController } from './readiness.controller.js';

@Module({
  // Terminus's own error log would repeat at every probe; the readiness controller logs changes.
  imports: [TerminusModule.forRoot({ logger: false }), MetadataModule, StorageModule],
  controllers: [HealthController, ReadinessController],
})
export class HealthModule {}
