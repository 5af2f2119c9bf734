import fs from 'node:fs';
import path from 'node:path';

import { makeDataDir } from '../common/file-modes.js';
import type { AppConfig } from '../config/app-config.js';
import { generateKeyringSpec, type Keyring, KeyringError, keyringFromSecrets } from './keyring.js';
import { readKeyringFile } from './keyring-file.js';

export interface LoadedKeyring {
  readonly keyring: Keyring | undefined;
  /** The file the keyring came from (configured or generated), when it came from a file. */
  readonly file: string | undefined;
  /** True when this call created the file (first start without configured secrets). */
  readonly generated: boolean;
}

export const GENERATED_KEYRING_NAME = 'keyring.json';

/**
 * Picks the keyring source, in order: RTCSTATS_KEYRING_FILE, the RTCSTATS_JWT_* secrets,
 * then (auth required and nothing configured) a keyring generated once into the data directory.
 */
export function loadKeyring(config: AppConfig, options: { generate: boolean }): LoadedKeyring {
  const { jwt } = config;
  if (jwt.keyringFile !== undefined) {
    return { keyring: readKeyringFile(jwt.keyringFile).keyring, file: jwt.keyringFile, generated: false };
  }
  if (jwt.secret !== undefined) {
    return { keyring: keyringFromSecrets(jwt.secret, jwt.previousSecrets, jwt.nextSecret), file: undefined, generated: false };
  }
  if (jwt.previousSecrets.length > 0 || jwt.nextSecret !== undefined) {
    throw new KeyringError('RTCSTATS_JWT_PREVIOUS_SECRETS or RTCSTATS_JWT_NEXT_SECRET is set without RTCSTATS_JWT_SECRET');
  }
  const file = path.join(config.dataDir, GENERATED_KEYRING_NAME);
  if (fs.existsSync(file)) {
    return { keyring: readKeyringFile(file).keyring, file, generated: false };
  }
  if (config.auth === 'disabled' || !options.generate) {
    return { keyring: undefined, file: undefined, generated: false };
  }
  const spec = generateKeyringSpec(new Date());
  makeDataDir(config.dataDir);
  // 'wx' so two instances starting on one data directory never overwrite each other's secret.
  fs.writeFileSync(file, JSON.stringify(spec, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  return { keyring: readKeyringFile(file).keyring, file, generated: true };
}
