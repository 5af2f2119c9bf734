import fs from 'node:fs';

/** Free bytes available to this process on the file system holding `dir`. */
export type FreeSpaceProbe = (dir: string) => Promise<number>;

export const statfsProbe: FreeSpaceProbe = async (dir) => {
  const s = await fs.promises.statfs(dir);
  return s.bavail * s.bsize;
};

/**
 * The free space of the data disk, sampled periodically (never on the upgrade path: a statfs per
 * connection would cost a syscall each). `low` refuses new connections; live dumps keep writing.
 */
export class DiskSpace {
  private freeBytes: number | undefined;
  private error: string | undefined;

  constructor(
    private readonly dir: string,
    readonly minFreeBytes: number,
    private readonly probe: FreeSpaceProbe = statfsProbe,
  ) {}

  /** Undefined until the first sample, or when the last one failed. */
  get free(): number | undefined {
    return this.freeBytes;
  }

  get lastError(): string | undefined {
    return this.error;
  }

  /** Below the floor (an unreadable disk counts as not low: storage readiness reports that). */
  get low(): boolean {
    return this.freeBytes !== undefined && this.freeBytes < this.minFreeBytes;
  }

  async sample(): Promise<number | undefined> {
    try {
      this.freeBytes = await this.probe(this.dir);
      this.error = undefined;
    } catch (err) {
      this.freeBytes = undefined;
      this.error = (err as Error).message;
    }
    return this.freeBytes;
  }
}
