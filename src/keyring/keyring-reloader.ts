import fs from 'node:fs';
import path from 'node:path';

import type { Keyring } from './keyring.js';

export interface KeyringReloaderOptions {
  readonly file: string;
  /** Watch the file's directory (catches editors' renames and Kubernetes' symlink swaps). */
  readonly watch: boolean;
  /** Fallback poll period; 0 disables polling. */
  readonly pollMs: number;
  /** Bursts of change events (a rename is several) trigger one reload after this quiet time. */
  readonly debounceMs: number;
  /** Reads and validates the whole file; throws with a message naming the problem. */
  readonly load: (file: string) => Keyring;
  /** Called with every successfully loaded keyring; deciding whether it changed is the caller's. */
  readonly onLoaded: (keyring: Keyring, trigger: string) => void;
  /** Called when the file is invalid; the running keyring stays in force. */
  readonly onInvalid: (error: Error, trigger: string) => void;
}

/**
 * Reloads a keyring file on change, on demand (SIGHUP) and by a slow poll. No Nest imports:
 * the service wires it to the process, tests drive it directly.
 */
export class KeyringReloader {
  private watcher: fs.FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;

  constructor(private readonly options: KeyringReloaderOptions) {}

  start(): void {
    const { file, watch, pollMs } = this.options;
    if (watch) {
      const base = path.basename(file);
      try {
        // Watch the directory, not the file: a rename or symlink swap replaces the file's inode.
        this.watcher = fs.watch(path.dirname(file), { persistent: false }, (_event, name) => {
          if (name === null || name === base || name.startsWith('..')) this.schedule('file change');
        });
        this.watcher.on('error', (err) => this.options.onInvalid(new Error(`watching stopped (${err.message})`), 'watch'));
      } catch (err) {
        this.options.onInvalid(new Error(`cannot watch ${path.dirname(file)} (${(err as Error).message})`), 'watch');
      }
    }
    if (pollMs > 0) {
      this.poller = setInterval(() => this.reload('poll'), pollMs);
      this.poller.unref();
    }
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.poller);
    clearTimeout(this.debounce);
    this.watcher = undefined;
    this.poller = undefined;
    this.debounce = undefined;
  }

  /** Reads the file now; returns true when it was valid. */
  reload(trigger: string): boolean {
    let keyring: Keyring;
    try {
      keyring = this.options.load(this.options.file);
    } catch (err) {
      this.options.onInvalid(err as Error, trigger);
      return false;
    }
    this.options.onLoaded(keyring, trigger);
    return true;
  }

  private schedule(trigger: string): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.reload(trigger), this.options.debounceMs);
    this.debounce.unref();
  }
}
