import { Module } from '@nestjs/common';

import { AppConfigModule } from './config/app-config.module.js';
import { HealthModule } from './health/health.module.js';
import { IngestionModule } from './ingestion/ingestion.module.js';
import { KeyringModule } from './keyring/keyring.module.js';
import { KeysModule } from './keys/keys.module.js';
import { TokensModule } from './tokens/tokens.module.js';

@Module({
  imports: [AppConfigModule, KeyringModule, HealthModule, IngestionModule, TokensModule, KeysModule],
})
export class AppModule {}
