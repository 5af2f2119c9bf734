import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { TrustedProxies } from '../common/trusted-proxies.js';
import { type ApiKey, DEFAULT_API_KEY_SCOPES, MIN_SECRET_BYTES } from '../keyring/keyring.js';
import type { LimitsConfig } from '../limits/limits.js';
import { DEFAULT_TABLE } from '../metadata/schema.js';

/** Raised for any invalid setting; the message names the variable and the problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type AuthMode = 'required' | 'disabled';
export type DatabaseSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';
export type LogLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

const LOG_LEVEL_ORDER: readonly LogLevel[] = ['error', 'warn', 'log', 'debug', 'verbose'];

/** Whether lines at `level` are written under RTCSTATS_LOG_LEVEL `configured` (hot paths skip building the others). */
export function logLevelEnabled(configured: LogLevel, level: LogLevel): boolean {
  return LOG_LEVEL_ORDER.indexOf(level) <= LOG_LEVEL_ORDER.indexOf(configured);
}

export type LogFormat = 'json' | 'pretty';

/** Typed, validated configuration. Built once at boot; nothing else reads process.env. */
export interface AppConfig {
  readonly port: number;
  readonly host: string | undefined;
  readonly dataDir: string;
  readonly auth: AuthMode;
  readonly jwt: {
    readonly secret: string | undefined;
    readonly previousSecrets: readonly string[];
    readonly nextSecret: string | undefined;
    readonly keyringFile: string | undefined;
    /** Reload the keyring file when its directory changes. */
    readonly keyringWatch: boolean;
    /** Fallback reload period of the keyring file in ms; 0 disables it. */
    readonly keyringPollMs: number;
    readonly clockToleranceSec: number;
    readonly maxLifetimeSec: number;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
  };
  readonly tokens: {
    /** API keys for POST /tokens from RTCSTATS_API_KEYS (the keyring file may add more). */
    readonly apiKeys: readonly ApiKey[];
    /** Public WebSocket URL of the collector (ws:// or wss://), to return ready-to-use URLs. */
    readonly publicUrl: string | undefined;
    /** Successful-auth requests allowed per API key per window. */
    readonly rateLimit: number;
    /** Failed API key authentications allowed per client IP per window. */
    readonly authFailureLimit: number;
    readonly rateLimitWindowSec: number;
  };
  readonly maxPayload: number;
  /** gzip level of finished dumps: 1 is about 2.5x cheaper in CPU than 6 for ~15% larger files. */
  readonly gzipLevel: number;
  readonly pingIntervalMs: number;
  /** Jitsi clients (@jitsi/rtcstats): resume and acknowledgement cadence. */
  readonly jitsi: {
    /** How long a disconnected session waits for its client to reconnect before it is finalized. */
    readonly resumeGraceMs: number;
    /** Acknowledge (`sn`) after this many entries... */
    readonly ackEntries: number;
    /** ...or after this long with entries unacknowledged. */
    readonly ackIntervalMs: number;
  };
  /** Mask IP addresses in frames and metadata before anything is written. */
  readonly obfuscateIps: boolean;
  /** Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges). */
  readonly trustedProxies: readonly string[];
  readonly logLevel: LogLevel;
  /** JSON lines by default; pretty when set or when stdout is a terminal (decided in main). */
  readonly logFormat: LogFormat | undefined;
  /** Serve GET /metrics on this port instead of the main one (undefined: main port). */
  readonly metricsPort: number | undefined;
  readonly limits: LimitsConfig;
  /** How long a SIGTERM/SIGINT drain may take before what is left stays in work/ for recovery. */
  readonly shutdownTimeoutMs: number;
  /** Dumps sealed, stored and recorded at once (the rest wait in the finalization queue). */
  readonly finalizeConcurrency: number;
  /** Path of the HTTP upload endpoint (POST, multipart); undefined: upload disabled. */
  readonly uploadPath: string | undefined;
  readonly maxUploadBytes: number;
  /** Serve the OpenAPI description and UI at /docs (it holds no secret). */
  readonly docs: boolean;
  /** Where metadata goes: PostgreSQL when `url` is set, else `<dataDir>/rtcstats.sqlite`. */
  readonly database: {
    /** postgres:// connection string (holds a password: never logged). */
    readonly url: string | undefined;
    /** TLS to PostgreSQL; undefined leaves it to the URL's own `sslmode`. */
    readonly sslMode: DatabaseSslMode | undefined;
    /** PEM contents of the CA that signs the server certificate (read at boot). */
    readonly ca: string | undefined;
    readonly poolSize: number;
    /** The reference server's table name (`schema.table` allowed). */
    readonly table: string;
  };
  /** Object storage for finished dumps; undefined keeps them in `<dataDir>/dumps`. */
  readonly s3: S3Config | undefined;
  /** Forwarding of stored dumps to an rtcstats.com-style analysis service; undefined: off. */
  readonly analysis: AnalysisConfig | undefined;
  /** Written to each record's `host_identifier` (which collector recorded it). */
  readonly hostIdentifier: string;
  /** Processes serving the port (a Node cluster when > 1); RTCSTATS_WORKERS=0 means one per core. */
  readonly workers: number;
  /**
   * Set by the cluster primary in each worker it forks (never by operators): the worker's slot,
   * which names its own work/ and outbox/ folders so that only it, or its replacement, finalizes them.
   */
  readonly workerSlot: number | undefined;
  /** Shared POST /tokens rate-limit state; undefined keeps it in the process. */
  readonly redis: RedisConfig | undefined;
}

export interface RedisConfig {
  /** redis:// or rediss:// URL (may hold a password: never logged). */
  readonly url: string;
  /** Prefix of every key the collector writes. */
  readonly keyPrefix: string;
}

export interface S3Config {
  readonly bucket: string;
  /** undefined: the SDK's own chain (AWS_REGION, profile). */
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  readonly forcePathStyle: boolean;
  readonly prefix: string;
}

export interface AnalysisConfig {
  readonly url: string;
  /** Bearer token of the analysis service (secret: never logged). */
  readonly token: string;
  /** Fraction of dumps forwarded, 0..1. */
  readonly sample: number;
}

export type EnvReader = (name: string) => string | undefined;

/** The non-empty, trimmed items of a comma-separated setting. */
function splitList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses "600", "600s", "10m", "6h", "1d" into seconds; undefined when malformed. */
export function parseDurationSeconds(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * DURATION_UNITS[m[2] || 's'];
}

class Reader {
  constructor(private readonly env: EnvReader) {}

  string(name: string): string | undefined {
    const v = this.env(name);
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  int(name: string, def: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw)) {
      throw new ConfigError(`${name} must be a whole number between ${min} and ${max} (got "${raw}")`);
    }
    const n = Number(raw);
    if (n < min || n > max) {
      throw new ConfigError(`${name} must be between ${min} and ${max} (got ${n})`);
    }
    return n;
  }

  /** Bytes, with an optional KiB/MiB/GiB/TiB suffix (powers of 1024). */
  bytes(name: string, def: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return def;
    const m = /^(\d+)\s*(|k|ki|kib|m|mi|mib|g|gi|gib|t|ti|tib)$/i.exec(raw);
    if (!m) throw new ConfigError(`${name} must be a number of bytes, optionally with KiB, MiB, GiB or TiB (got "${raw}")`);
    const unit = m[2].toLowerCase().charAt(0);
    const n = Number(m[1]) * 1024 ** (unit === '' ? 0 : 'kmgt'.indexOf(unit) + 1);
    if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max} bytes (got ${n})`);
    return n;
  }

  duration(name: string, def: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return def;
    const n = parseDurationSeconds(raw);
    if (n === undefined) {
      throw new ConfigError(`${name} must be a number of seconds or a duration such as 30s, 10m, 6h (got "${raw}")`);
    }
    if (n < min || n > max) {
      throw new ConfigError(`${name} must be between ${min}s and ${max}s (got ${n}s)`);
    }
    return n;
  }

  /** A comma-separated list, checked by `validate` (which throws with the problem). */
  list(name: string, validate: (entries: string[]) => unknown): string[] {
    const entries = splitList(this.string(name));
    try {
      validate(entries);
    } catch (err) {
      throw new ConfigError(`${name}: ${(err as Error).message}`);
    }
    return entries;
  }

  bool(name: string, def: boolean): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return def;
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    throw new ConfigError(`${name} must be true or false (got "${raw}")`);
  }

  /** A ws:// or wss:// URL; the message never echoes more than the variable's name and the rule. */
  wsUrl(name: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`${name} must be a ws:// or wss:// URL (got "${raw}")`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw new ConfigError(`${name} must be a ws:// or wss:// URL (got "${raw}")`);
    }
    return url.toString();
  }

  /** Comma-separated secrets; errors name the variable and the position, never the value. */
  apiKeys(name: string): ApiKey[] {
    const raw = this.env(name);
    if (raw === undefined || raw.trim() === '') return [];
    const seen = new Set<string>();
    return raw.split(',').map((item, i) => {
      const key = item.trim();
      const bytes = Buffer.byteLength(key, 'utf8');
      if (bytes < MIN_SECRET_BYTES) {
        throw new ConfigError(`${name}: key ${i + 1} is ${bytes} bytes, at least ${MIN_SECRET_BYTES} are required`);
      }
      const digest = crypto.createHash('sha256').update(key).digest('hex');
      if (seen.has(digest)) throw new ConfigError(`${name}: key ${i + 1} repeats an earlier key`);
      seen.add(digest);
      return { id: `${name}[${i + 1}]`, key: Buffer.from(key, 'utf8'), scopes: DEFAULT_API_KEY_SCOPES };
    });
  }

  /** An http:// or https:// URL; `secret` URLs (credentials inside) are never echoed. */
  httpUrl(name: string, protocols: readonly string[], secret = false): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const rule = `${name} must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL`;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(secret ? rule : `${rule} (got "${raw}")`);
    }
    if (!protocols.includes(url.protocol)) throw new ConfigError(secret ? rule : `${rule} (got "${raw}")`);
    return raw;
  }

  fraction(name: string, def: number): number {
    const raw = this.string(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!/^\d*\.?\d+$/.test(raw) || !(n >= 0 && n <= 1)) {
      throw new ConfigError(`${name} must be a number from 0 to 1 (got "${raw}")`);
    }
    return n;
  }

  /** A file read at boot; the error names the variable and the path, never the contents. */
  fileContents(name: string, cwd: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const file = path.resolve(cwd, raw);
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }

  /** An absolute URL path such as /upload (no query, no fragment). */
  urlPath(name: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(raw)) {
      throw new ConfigError(`${name} must be a URL path starting with / (got "${raw}")`);
    }
    return raw;
  }

  oneOf<T extends string>(name: string, def: T, allowed: readonly T[]): T {
    const raw = this.string(name);
    if (raw === undefined) return def;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
    }
    return raw as T;
  }
}

/** Builds the configuration from environment variables; throws ConfigError on the first bad value. */
/** Default RTCSTATS_FINALIZE_CONCURRENCY: the number of cores, at least 4. */
export function defaultFinalizeConcurrency(): number {
  return Math.max(4, os.availableParallelism());
}

export function parseConfig(env: EnvReader, cwd = process.cwd()): AppConfig {
  const r = new Reader(env);
  const dataDir = path.resolve(cwd, r.string('RTCSTATS_DATA_DIR') ?? './data');
  const keyringFile = r.string('RTCSTATS_KEYRING_FILE');
  return {
    port: r.int('RTCSTATS_PORT', 8080, 0, 65535),
    host: r.string('RTCSTATS_HOST'),
    dataDir,
    auth: r.oneOf<AuthMode>('RTCSTATS_AUTH', 'required', ['required', 'disabled']),
    jwt: {
      // Secrets are validated by the keyring builder, which names the offending key.
      secret: env('RTCSTATS_JWT_SECRET') || undefined,
      previousSecrets: splitList(env('RTCSTATS_JWT_PREVIOUS_SECRETS')),
      nextSecret: env('RTCSTATS_JWT_NEXT_SECRET') || undefined,
      keyringFile: keyringFile === undefined ? undefined : path.resolve(cwd, keyringFile),
      keyringWatch: r.bool('RTCSTATS_KEYRING_WATCH', true),
      keyringPollMs: r.duration('RTCSTATS_KEYRING_POLL_INTERVAL', 30, 0, 86400) * 1000,
      clockToleranceSec: r.duration('RTCSTATS_JWT_CLOCK_TOLERANCE', 30, 0, 300),
      maxLifetimeSec: r.duration('RTCSTATS_JWT_MAX_LIFETIME', 24 * 3600, 60, 30 * 86400),
      issuer: r.string('RTCSTATS_JWT_ISSUER'),
      audience: r.string('RTCSTATS_JWT_AUDIENCE'),
    },
    tokens: {
      apiKeys: r.apiKeys('RTCSTATS_API_KEYS'),
      publicUrl: r.wsUrl('RTCSTATS_PUBLIC_URL'),
      rateLimit: r.int('RTCSTATS_TOKENS_RATE_LIMIT', 600, 1, 1_000_000_000),
      authFailureLimit: r.int('RTCSTATS_AUTH_FAILURE_LIMIT', 10, 1, 1_000_000),
      rateLimitWindowSec: r.duration('RTCSTATS_RATE_LIMIT_WINDOW', 60, 1, 86400),
    },
    maxPayload: r.int('RTCSTATS_MAX_PAYLOAD', 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    gzipLevel: r.int('RTCSTATS_GZIP_LEVEL', 1, 1, 9),
    obfuscateIps: r.bool('RTCSTATS_OBFUSCATE_IPS', true),
    trustedProxies: r.list('RTCSTATS_TRUSTED_PROXIES', (entries) => new TrustedProxies(entries)),
    pingIntervalMs: r.int('RTCSTATS_PING_INTERVAL_MS', 30_000, 100, 3_600_000),
    jitsi: {
      resumeGraceMs: r.duration('RTCSTATS_JITSI_RESUME_GRACE', 120, 0, 3600) * 1000,
      // The client keeps at most 1000 unacknowledged entries for a resend.
      ackEntries: r.int('RTCSTATS_JITSI_ACK_ENTRIES', 100, 1, 900),
      ackIntervalMs: r.duration('RTCSTATS_JITSI_ACK_INTERVAL', 10, 1, 300) * 1000,
    },
    logLevel: r.oneOf<LogLevel>('RTCSTATS_LOG_LEVEL', 'log', ['error', 'warn', 'log', 'debug', 'verbose']),
    logFormat: r.string('RTCSTATS_LOG_FORMAT') === undefined ? undefined : r.oneOf<LogFormat>('RTCSTATS_LOG_FORMAT', 'json', ['json', 'pretty']),
    metricsPort: r.string('RTCSTATS_METRICS_PORT') === undefined ? undefined : r.int('RTCSTATS_METRICS_PORT', 0, 0, 65535),
    limits: {
      maxConnections: r.int('RTCSTATS_MAX_CONNECTIONS', 10_000, 1, 10_000_000),
      maxConnectionsPerIp: r.int('RTCSTATS_MAX_CONNECTIONS_PER_IP', 50, 1, 10_000_000),
      authTimeoutMs: r.duration('RTCSTATS_AUTH_TIMEOUT', 10, 1, 3600) * 1000,
      idleTimeoutMs: r.duration('RTCSTATS_IDLE_TIMEOUT', 300, 1, 86400) * 1000,
      maxFramesPerSecond: r.int('RTCSTATS_MAX_FRAMES_PER_SECOND', 100, 1, 1_000_000),
      maxBytesPerSecond: r.bytes('RTCSTATS_MAX_BYTES_PER_SECOND', 1024 * 1024, 1024, 2 ** 40),
      maxDumpBytes: r.bytes('RTCSTATS_MAX_DUMP_BYTES', 256 * 1024 * 1024, 1024, 2 ** 50),
      maxSessionDurationMs: r.duration('RTCSTATS_MAX_SESSION_DURATION', 12 * 3600, 1, 30 * 86400) * 1000,
      minFreeDiskBytes: r.bytes('RTCSTATS_MIN_FREE_DISK', 1024 ** 3, 0, 2 ** 60),
    },
    shutdownTimeoutMs: r.duration('RTCSTATS_SHUTDOWN_TIMEOUT', 25, 0, 3600) * 1000,
    // At least 4: each store waits on an fsync, so even one core keeps a few in flight.
    finalizeConcurrency: r.int('RTCSTATS_FINALIZE_CONCURRENCY', defaultFinalizeConcurrency(), 1, 256),
    uploadPath: r.urlPath('RTCSTATS_UPLOAD_PATH'),
    maxUploadBytes: r.int('RTCSTATS_MAX_UPLOAD_BYTES', 64 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
    docs: r.bool('RTCSTATS_DOCS', true),
    database: parseDatabase(r, cwd),
    s3: parseS3(r),
    analysis: parseAnalysis(r),
    // RTCSTATS_HOST_IDENTIFIER: the setting's earlier name, still read.
    hostIdentifier: r.string('RTCSTATS_HOST_ID') ?? r.string('RTCSTATS_HOST_IDENTIFIER') ?? os.hostname(),
    workers: r.int('RTCSTATS_WORKERS', 1, 0, 256) || os.availableParallelism(),
    workerSlot: r.string('RTCSTATS_WORKER_SLOT') === undefined ? undefined : r.int('RTCSTATS_WORKER_SLOT', 1, 1, 256),
    redis: parseRedis(r),
  };
}

function parseDatabase(r: Reader, cwd: string): AppConfig['database'] {
  const url = r.httpUrl('RTCSTATS_DATABASE_URL', ['postgres:', 'postgresql:'], true);
  const sslMode = r.string('RTCSTATS_DATABASE_SSL_MODE') === undefined
    ? undefined
    : r.oneOf<DatabaseSslMode>('RTCSTATS_DATABASE_SSL_MODE', 'disable', ['disable', 'require', 'verify-ca', 'verify-full']);
  const ca = r.fileContents('RTCSTATS_DATABASE_CA_FILE', cwd);
  if (url !== undefined && sslMode !== undefined && /[?&]ssl(mode)?=/.test(url)) {
    // pg lets the URL's sslmode override an explicit TLS configuration: refuse the ambiguity.
    throw new ConfigError('RTCSTATS_DATABASE_SSL_MODE: remove sslmode from RTCSTATS_DATABASE_URL, or leave this unset');
  }
  if (ca !== undefined && sslMode === 'disable') {
    throw new ConfigError('RTCSTATS_DATABASE_CA_FILE needs RTCSTATS_DATABASE_SSL_MODE other than disable');
  }
  const table = r.string('RTCSTATS_DATABASE_TABLE') ?? DEFAULT_TABLE;
  // Quoted as identifiers by Kysely; a dot separates the schema. Quotes and control characters
  // would need escaping rules that no real table name needs.
  if (!/^[^".\x00-\x1f]{1,63}(\.[^".\x00-\x1f]{1,63})?$/.test(table)) {
    throw new ConfigError(`RTCSTATS_DATABASE_TABLE must be a table name, optionally schema.table, without quotes (got "${table}")`);
  }
  return {
    url,
    // A CA file alone means: verify the server against it.
    sslMode: sslMode ?? (ca !== undefined ? 'verify-full' : undefined),
    ca,
    poolSize: r.int('RTCSTATS_DATABASE_POOL_SIZE', 10, 1, 1000),
    table,
  };
}

function parseS3(r: Reader): S3Config | undefined {
  const bucket = r.string('RTCSTATS_S3_BUCKET');
  const names = ['RTCSTATS_S3_REGION', 'RTCSTATS_S3_ENDPOINT', 'RTCSTATS_S3_FORCE_PATH_STYLE', 'RTCSTATS_S3_PREFIX'];
  if (bucket === undefined) {
    const stray = names.find((n) => r.string(n) !== undefined);
    if (stray !== undefined) throw new ConfigError(`${stray} is set but RTCSTATS_S3_BUCKET is not`);
    return undefined;
  }
  const prefix = r.string('RTCSTATS_S3_PREFIX') ?? '';
  if (prefix.startsWith('/')) throw new ConfigError(`RTCSTATS_S3_PREFIX must not start with "/" (got "${prefix}")`);
  return {
    bucket,
    region: r.string('RTCSTATS_S3_REGION'),
    endpoint: r.httpUrl('RTCSTATS_S3_ENDPOINT', ['http:', 'https:']),
    forcePathStyle: r.bool('RTCSTATS_S3_FORCE_PATH_STYLE', false),
    prefix,
  };
}

function parseRedis(r: Reader): RedisConfig | undefined {
  const url = r.httpUrl('RTCSTATS_REDIS_URL', ['redis:', 'rediss:'], true);
  const keyPrefix = r.string('RTCSTATS_REDIS_KEY_PREFIX') ?? 'rtcstats:';
  if (url === undefined) {
    if (r.string('RTCSTATS_REDIS_KEY_PREFIX') !== undefined) throw new ConfigError('RTCSTATS_REDIS_KEY_PREFIX is set but RTCSTATS_REDIS_URL is not');
    return undefined;
  }
  return { url, keyPrefix };
}

function parseAnalysis(r: Reader): AnalysisConfig | undefined {
  const url = r.httpUrl('RTCSTATS_ANALYSIS_URL', ['http:', 'https:']);
  const token = r.string('RTCSTATS_ANALYSIS_TOKEN');
  const sample = r.fraction('RTCSTATS_ANALYSIS_SAMPLE', 1);
  if (url === undefined) {
    if (token !== undefined) throw new ConfigError('RTCSTATS_ANALYSIS_TOKEN is set but RTCSTATS_ANALYSIS_URL is not');
    return undefined;
  }
  if (token === undefined) throw new ConfigError('RTCSTATS_ANALYSIS_URL needs RTCSTATS_ANALYSIS_TOKEN');
  return { url, token, sample };
}
