import fs from 'node:fs';

import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';

import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { Keyring } from './keyring.js';
import { readKeyringFile } from './keyring-file.js';
import { loadKeyring } from './keyring-source.js';
import { KeyringReloader } from './keyring-reloader.js';

export type KeyringListener = (next: Keyring, previous: Keyring | undefined) => void;

export interface KeyringReloadStats {
  reloads: number;
  failures: number;
  lastReloadAt: number | undefined;
  lastFailure: string | undefined;
}

const DEBOUNCE_MS = 100;

/**
 * Holds the current keyring snapshot. Readers call get() every time, so a reload is seen by the
 * next verification; a reload validates the whole file first and swaps the reference in one step.
 */
@Injectable()
export class KeyringService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Keyring');
  private snapshot: Keyring | undefined;
  private readonly listeners: KeyringListener[] = [];
  private readonly reloader: KeyringReloader | undefined;
  private readonly onSighup = () => this.reloader?.reload('SIGHUP');
  /** The keyring file in use, if any. */
  readonly file: string | undefined;
  readonly generated: boolean;
  readonly stats: KeyringReloadStats = { reloads: 0, failures: 0, lastReloadAt: undefined, lastFailure: undefined };

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
    if (loaded.file !== undefined) {
      this.reloader = new KeyringReloader({
        file: loaded.file,
        watch: config.jwt.keyringWatch,
        pollMs: config.jwt.keyringPollMs,
        debounceMs: DEBOUNCE_MS,
        load: (file) => readKeyringFile(file).keyring,
        onLoaded: (keyring, trigger) => this.swap(keyring, trigger),
        onInvalid: (error, trigger) => this.invalid(error, trigger),
      });
    }
  }

  onApplicationBootstrap(): void {
    if (this.file !== undefined) this.warnIfReadableByOthers(this.file);
    if (this.reloader === undefined) return;
    this.reloader.start();
    process.on('SIGHUP', this.onSighup);
  }

  onApplicationShutdown(): void {
    this.reloader?.stop();
    process.off('SIGHUP', this.onSighup);
  }

  get(): Keyring | undefined {
    return this.snapshot;
  }

  /** Called after every swap with the new and the previous snapshot. */
  onChange(listener: KeyringListener): void {
    this.listeners.push(listener);
  }

  /** Re-reads the keyring file now (what SIGHUP does); false when there is no file or it is invalid. */
  reload(trigger = 'request'): boolean {
    return this.reloader?.reload(trigger) ?? false;
  }

  /** The file holds every signing secret: only the collector's user should read it. */
  private warnIfReadableByOthers(file: string): void {
    let mode: number;
    try {
      mode = fs.statSync(file).mode & 0o777;
    } catch {
      return; // gone since it was read: the reloader reports that
    }
    if ((mode & 0o044) === 0) return;
    this.logger.warn(
      `Keyring file ${file} is readable by group or others (mode 0${mode.toString(8)}): chmod 600 it (Kubernetes: defaultMode 0400)`,
    );
  }

  private swap(next: Keyring, trigger: string): void {
    const previous = this.snapshot;
    this.stats.lastFailure = undefined;
    if (previous !== undefined && previous.fingerprint === next.fingerprint) return;
    this.snapshot = next;
    this.stats.reloads++;
    this.stats.lastReloadAt = Date.now();
    this.logger.log(`Keyring reloaded from ${next.source} (${trigger}): ${next.describe()}`);
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (err) {
        this.logger.error(`Keyring change listener failed: ${(err as Error).message}`);
      }
    }
  }

  private invalid(error: Error, trigger: string): void {
    this.stats.failures++;
    // The poll would repeat the same complaint every period; say it once per distinct problem.
    if (trigger === 'poll' && this.stats.lastFailure === error.message) return;
    this.stats.lastFailure = error.message;
    this.logger.error(`Keyring not reloaded (${trigger}), the running keyring stays in force: ${error.message}`);
  }
}
