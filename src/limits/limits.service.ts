import type { IncomingMessage } from 'node:http';

import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';

import { TrustedProxies } from '../common/trusted-proxies.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { MetricsService, type RejectLabel } from '../metrics/metrics.service.js';
import { ConnectionSlots } from './connection-slots.js';
import { DiskSpace, statfsProbe } from './disk-space.js';
import { FrameLimiter, type FrameLimiterOptions, type LimitsConfig } from './limits.js';

/** How often the data disk's free space is sampled. */
export const DISK_SAMPLE_MS = 5_000;

export interface Refusal {
  readonly status: 429 | 503;
  readonly text: string;
  readonly reason: RejectLabel;
}

/**
 * The limits that apply before and around a WebSocket: connection slots (total and per client
 * address), free disk, draining. The upgrade listener asks `admit` before upgrading, so a refused
 * client gets an HTTP status it can act on, and costs no WebSocket.
 */
@Injectable()
export class LimitsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Limits');
  readonly config: LimitsConfig;
  readonly slots: ConnectionSlots;
  readonly disk: DiskSpace;
  private readonly proxies: TrustedProxies;
  private sampler: NodeJS.Timeout | undefined;
  private wasLow = false;
  private readonly limiterOptions = new Map<number, FrameLimiterOptions>();

  constructor(
    @Inject(APP_CONFIG) appConfig: AppConfig,
    private readonly drain: DrainState,
    private readonly metrics: MetricsService,
  ) {
    this.config = appConfig.limits;
    this.slots = new ConnectionSlots(this.config.maxConnections, this.config.maxConnectionsPerIp);
    this.disk = new DiskSpace(appConfig.dataDir, this.config.minFreeDiskBytes, statfsProbe);
    this.proxies = new TrustedProxies(appConfig.trustedProxies);
    metrics.gauge('rtcstats_disk_free_bytes', 'Free bytes on the data disk (sampled every 5 s)', () => this.disk.free ?? NaN, 'min');
    metrics.gauge('rtcstats_disk_free_floor_bytes', 'RTCSTATS_MIN_FREE_DISK: below it new connections are refused', () => this.config.minFreeDiskBytes, 'first');
    metrics.gauge('rtcstats_connection_slots_open', 'Connection slots taken (upgraded or upgrading sockets)', () => this.slots.open);
  }

  async onModuleInit(): Promise<void> {
    await this.sampleDisk();
    this.sampler = setInterval(() => void this.sampleDisk(), DISK_SAMPLE_MS);
    this.sampler.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sampler);
  }

  /** Re-reads the free space now (also what the readiness check calls). */
  async sampleDisk(): Promise<void> {
    await this.disk.sample();
    const low = this.disk.low;
    if (low !== this.wasLow) {
      this.wasLow = low;
      if (low) this.logger.warn(`Free disk space ${this.disk.free} bytes is below RTCSTATS_MIN_FREE_DISK (${this.disk.minFreeBytes}): new connections get 503, live ones keep recording`);
      else this.logger.log(`Free disk space is above RTCSTATS_MIN_FREE_DISK again: accepting connections`);
    }
  }

  /** The client address the per-IP limit counts (after the trusted-proxy rules, unmasked). */
  clientAddress(request: IncomingMessage): string | undefined {
    return this.proxies.clientAddress(request.socket.remoteAddress, request.headers['x-forwarded-for']);
  }

  /**
   * Takes a connection slot for an upgrade request, or says why not. A taken slot is released by
   * calling the returned function once (when the socket closes). `address` is the client address
   * it was counted under, for the connection to record (computed once per connection).
   */
  admit(request: IncomingMessage): { refusal: Refusal } | { release: () => void; address: string | undefined } {
    const refuse = (refusal: Refusal) => {
      this.metrics.rejected.inc({ reason: refusal.reason });
      return { refusal };
    };
    if (this.drain.draining) return refuse({ status: 503, text: 'draining', reason: 'draining' });
    if (this.disk.low) return refuse({ status: 503, text: 'disk space low', reason: 'disk_low' });
    const address = this.clientAddress(request);
    const full = this.slots.acquire(address);
    if (full === 'max connections') return refuse({ status: 503, text: 'too many connections', reason: 'max_connections' });
    if (full === 'max connections per ip') return refuse({ status: 429, text: 'too many connections from this address', reason: 'max_connections_per_ip' });
    let released = false;
    return {
      address,
      release: () => {
        if (released) return;
        released = true;
        this.slots.release(address);
      },
    };
  }

  frameLimiter(maxPayload: number, now: number): FrameLimiter {
    // One options object per payload limit (there is one), not one per connection.
    let options = this.limiterOptions.get(maxPayload);
    if (options === undefined) {
      options = { ...this.config, maxPayload };
      this.limiterOptions.set(maxPayload, options);
    }
    return new FrameLimiter(options, now);
  }
}
