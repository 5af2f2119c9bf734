import { Module } from '@nestjs/common';

import { ClockModule } from './common/clock.js';
import { AppConfigModule } from './config/app-config.module.js';
import { HealthModule } from './health/health.module.js';
import { IngestionModule } from './ingestion/ingestion.module.js';
import { KeyringModule } from './keyring/keyring.module.js';
import { KeysModule } from './keys/keys.module.js';
import { LifecycleModule } from './lifecycle/lifecycle.module.js';
import { LimitsModule } from './limits/limits.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { TokensModule } from './tokens/tokens.module.js';
import { UploadModule } from './upload/upload.module.js';

@Module({
  imports: [ClockModule, AppConfigModule, LoggingModule, MetricsModule, LimitsModule, KeyringModule, LifecycleModule, HealthModule, IngestionModule, TokensModule, KeysModule, UploadModule],
})
export class AppModule {}
