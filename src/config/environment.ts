import { ConfigModule, type ConfigModuleOptions } from '@nestjs/config';

import type { EnvReader } from './app-config.js';

/** How the server's ConfigModule reads `.env` in the working directory; variables already set win. */
export const ENV_FILE_OPTIONS: ConfigModuleOptions = { envFilePath: '.env' };

/**
 * Environment for command-line tools: `.env` loaded by the same ConfigModule call the server
 * makes, so a setting means the same to `npm start` and to `npm run keys`.
 */
export async function loadEnvironment(): Promise<EnvReader> {
  await ConfigModule.forRoot(ENV_FILE_OPTIONS);
  return (name) => process.env[name];
}
