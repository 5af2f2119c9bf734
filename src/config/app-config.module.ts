import { Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';

import { parseConfig } from './app-config.js';
import { APP_CONFIG } from './app-config.token.js';
import { ensureWritableDir } from './data-dir.js';
import { ENV_FILE_OPTIONS } from './environment.js';

@Global()
@Module({
  imports: [ConfigModule.forRoot(ENV_FILE_OPTIONS)],
  providers: [
    {
      provide: APP_CONFIG,
      inject: [ConfigService],
      useFactory: (env: ConfigService) => {
        const config = parseConfig((name) => env.get<string>(name));
        ensureWritableDir(config.dataDir, 'RTCSTATS_DATA_DIR');
        return config;
      },
    },
  ],
  exports: [APP_CONFIG],
})
export class AppConfigModule {}
