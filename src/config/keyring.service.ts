import { Inject, Injectable, Logger } from '@nestjs/common';

import type { AppConfig } from './app-config.js';
import { APP_CONFIG } from './app-config.token.js';
import type { Keyring } from './keyring.js';
import { loadKeyring } from './keyring-loader.js';

/** Holds the current keyring snapshot; readers call get() each time so a swap is seen at once. */
@Injectable()
export class KeyringService {
  private readonly logger = new Logger('Keyring');
  private snapshot: Keyring | undefined;
  /** The keyring file in use, if any. */
  readonly file: string | undefined;
  readonly generated: boolean;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const loaded = loadKeyring(config, { generate: true });
    this.snapshot = loaded.keyring;
    this.file = loaded.file;
    this.generated = loaded.generated;
    if (loaded.generated) {
      this.logger.log(`No signing secret configured: generated a keyring at ${loaded.file} (mode 0600)`);
    }
    if (this.snapshot !== undefined) {
      this.logger.log(`Keyring loaded from ${this.snapshot.source}: ${this.snapshot.describe()}`);
    }
  }

  get(): Keyring | undefined {
    return this.snapshot;
  }
}
