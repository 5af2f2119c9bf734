import { Injectable } from '@nestjs/common';
import { type Aggregator, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { clusterMetricsSource } from '../cluster/cluster-metrics.js';

/** Labels hold only these fixed words, dump-store backends and kids: never a token, claim or address. */
export type RejectLabel =
  | 'token_missing'
  | 'expired'
  | 'bad_signature'
  | 'unknown_kid'
  | 'invalid_token'
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'disk_low'
  | 'draining';

export type LimitLabel = 'rate_limit' | 'dump_too_large' | 'session_duration' | 'idle_timeout' | 'auth_timeout' | 'key_revoked';

export type ClientProtocol = 'rtcstats' | 'jitsi';

/** What a live source reports at scrape time (plain numbers kept by the hot path). */
export interface LiveTotals {
  readonly open: number;
  readonly frames: number;
  readonly bytes: number;
}

const SIZE_BUCKETS = [1024, 16 * 1024, 128 * 1024, 1024 ** 2, 8 * 1024 ** 2, 64 * 1024 ** 2, 256 * 1024 ** 2, 1024 ** 3];
const DURATION_BUCKETS = [1, 10, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 12 * 3600];
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The process's one Prometheus registry and its metrics (provided once, globally). Events are
 * counted where they happen (a connection, a dump, a token: never per frame); per-frame totals and
 * gauges are read from their owners when Prometheus scrapes, so a frame costs no metric call.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  /** In a cluster worker: the metrics of every worker, summed (see cluster-metrics.ts). */
  readonly clusterMetrics = clusterMetricsSource(this.registry);
  private readonly live = new Map<ClientProtocol, () => LiveTotals>();

  readonly accepted = new Counter({
    name: 'rtcstats_connections_accepted_total',
    help: 'WebSocket connections accepted (authenticated), by client protocol',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'rtcstats_connections_rejected_total',
    help: 'Connections refused, by reason (token problems, limits, draining)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly limited = new Counter({
    name: 'rtcstats_connections_closed_by_limit_total',
    help: 'Live connections or sessions the server closed because of a limit (or a key revocation), dump kept',
    labelNames: ['limit', 'protocol'] as const,
    registers: [this.registry],
  });
  // The legacy rtcstats-server's names, same meaning: dumps processed (stored and recorded), and failed processing attempts.
  readonly filesProcessed = new Counter({
    name: 'rtcstats_files_processed',
    help: 'Dumps processed: stored and recorded (legacy name)',
    registers: [this.registry],
  });
  readonly filesErrored = new Counter({
    name: 'rtcstats_files_errored',
    help: 'Dump processing attempts that failed (each is retried; legacy name)',
    registers: [this.registry],
  });
  readonly stored = new Counter({
    name: 'rtcstats_dumps_stored_total',
    help: 'Dumps written to dump storage, by backend',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly storeFailed = new Counter({
    name: 'rtcstats_dumps_store_failures_total',
    help: 'Failed dump storage writes, by backend (retried)',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly recordFailed = new Counter({
    name: 'rtcstats_metadata_failures_total',
    help: 'Failed metadata inserts, by backend (retried)',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly retried = new Counter({
    name: 'rtcstats_dumps_retried_total',
    help: 'Finalization retries scheduled after a failed attempt',
    registers: [this.registry],
  });
  readonly dumpSize = new Histogram({
    name: 'rtcstats_dump_size_bytes',
    help: 'Payload bytes of finished connections and Jitsi sessions',
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly sessionDuration = new Histogram({
    name: 'rtcstats_session_duration_seconds',
    help: 'Duration of finished connections and Jitsi sessions',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly storeLatency = new Histogram({
    name: 'rtcstats_store_duration_seconds',
    help: 'Time to write one dump to dump storage (successful writes), by backend',
    labelNames: ['backend'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly metadataLatency = new Histogram({
    name: 'rtcstats_metadata_duration_seconds',
    help: 'Time to insert one metadata record (successful inserts), by backend',
    labelNames: ['backend'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly tokensMinted = new Counter({
    name: 'rtcstats_tokens_minted_total',
    help: 'Client tokens minted by POST /tokens',
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'rtcstats_http_requests_total',
    help: 'HTTP requests by route (the route pattern, never the URL) and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    const live = this.live;
    const sum = (pick: (t: LiveTotals) => number) =>
      function (this: Gauge<'protocol'> | Counter<'protocol'>): void {
        this.reset();
        for (const [protocol, totals] of live) {
          const v = pick(totals());
          if (this instanceof Gauge) this.set({ protocol }, v);
          else this.inc({ protocol }, v);
        }
      };
    new Gauge({
      name: 'rtcstats_websocket_connections',
      help: 'Open WebSocket connections, by client protocol (legacy name)',
      labelNames: ['protocol'] as const,
      registers: [this.registry],
      collect: sum((t) => t.open),
    });
    new Counter({
      name: 'rtcstats_frames_received_total',
      help: 'Frames (rtcstats) or messages (Jitsi) received from accepted clients',
      labelNames: ['protocol'] as const,
      registers: [this.registry],
      collect: sum((t) => t.frames),
    });
    new Counter({
      name: 'rtcstats_bytes_received_total',
      help: 'Payload bytes received from accepted clients',
      labelNames: ['protocol'] as const,
      registers: [this.registry],
      collect: sum((t) => t.bytes),
    });
    collectDefaultMetrics({ register: this.registry, prefix: '' });
  }

  /** A source of live totals (its counters are plain numbers it keeps anyway). */
  liveSource(protocol: ClientProtocol, totals: () => LiveTotals): void {
    this.live.set(protocol, totals);
  }

  /**
   * A gauge whose value is read at scrape time. `aggregator`: how a cluster combines the workers'
   * values (sum unless a sum means nothing, e.g. a timestamp or a shared disk's free space).
   */
  gauge(name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void {
    new Gauge({
      name,
      help,
      aggregator,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A labelled gauge or counter whose values are read at scrape time. */
  labelled(
    type: 'gauge' | 'counter',
    name: string,
    help: string,
    labelNames: readonly string[],
    read: () => Array<{ labels: Record<string, string>; value: number }>,
    aggregator: Aggregator = 'sum',
  ): void {
    const options = { name, help, labelNames, aggregator, registers: [this.registry] };
    if (type === 'gauge') {
      new Gauge({
        ...options,
        collect() {
          this.reset();
          for (const { labels, value } of read()) this.set(labels, value);
        },
      });
    } else {
      new Counter({
        ...options,
        collect() {
          this.reset();
          for (const { labels, value } of read()) this.inc(labels, value);
        },
      });
    }
  }

  /** A finished connection or Jitsi session. */
  sessionEnded(bytes: number, durationMs: number): void {
    this.dumpSize.observe(bytes);
    this.sessionDuration.observe(durationMs / 1000);
  }
}
