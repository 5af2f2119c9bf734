import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';

import { ConfigError, logLevelEnabled, parseConfig, parseDurationSeconds } from './app-config.js';

const env = (values: Record<string, string>) => (name: string) => values[name];

describe('parseConfig: limits, logs, metrics', () => {
  it('defaults that never trouble a real client', () => {
    const c = parseConfig(env({}));
    assert.deepEqual(c.limits, {
      maxConnections: 10_000,
      maxConnectionsPerIp: 50,
      authTimeoutMs: 10_000,
      idleTimeoutMs: 300_000,
      maxFramesPerSecond: 100,
      maxBytesPerSecond: 1024 * 1024,
      maxDumpBytes: 256 * 1024 * 1024,
      maxSessionDurationMs: 12 * 3600 * 1000,
      minFreeDiskBytes: 1024 ** 3,
    });
    assert.equal(c.logFormat, undefined);
    assert.equal(c.metricsPort, undefined);
  });

  it('reads sizes with binary suffixes and durations, and names a bad value', () => {
    const c = parseConfig(
      env({ RTCSTATS_MAX_BYTES_PER_SECOND: '2MiB', RTCSTATS_MAX_DUMP_BYTES: '1g', RTCSTATS_MIN_FREE_DISK: '0', RTCSTATS_IDLE_TIMEOUT: '5m', RTCSTATS_LOG_FORMAT: 'pretty', RTCSTATS_METRICS_PORT: '9464' }),
    );
    assert.equal(c.limits.maxBytesPerSecond, 2 * 1024 ** 2);
    assert.equal(c.limits.maxDumpBytes, 1024 ** 3);
    assert.equal(c.limits.minFreeDiskBytes, 0);
    assert.equal(c.limits.idleTimeoutMs, 300_000);
    assert.equal(c.logFormat, 'pretty');
    assert.equal(c.metricsPort, 9464);
    assert.throws(() => parseConfig(env({ RTCSTATS_MAX_DUMP_BYTES: '10 apples' })), /RTCSTATS_MAX_DUMP_BYTES must be a number of bytes/);
    assert.throws(() => parseConfig(env({ RTCSTATS_MAX_CONNECTIONS: '0' })), /RTCSTATS_MAX_CONNECTIONS must be between 1/);
    assert.throws(() => parseConfig(env({ RTCSTATS_LOG_FORMAT: 'xml' })), /RTCSTATS_LOG_FORMAT must be one of json, pretty/);
  });
});

describe('parseConfig', () => {
  it('has working defaults', () => {
    const c = parseConfig(env({}), '/srv/app');
    assert.equal(c.port, 8080);
    assert.equal(c.dataDir, '/srv/app/data');
    assert.equal(c.auth, 'required');
    assert.equal(c.maxPayload, 4 * 1024 * 1024);
    assert.equal(c.jwt.maxLifetimeSec, 86400);
    assert.equal(c.jwt.clockToleranceSec, 30);
    assert.equal(c.shutdownTimeoutMs, 25_000);
    assert.equal(c.finalizeConcurrency, Math.max(4, os.availableParallelism()));
    assert.equal(c.uploadPath, undefined);
    assert.equal(c.maxUploadBytes, 64 * 1024 * 1024);
  });

  it('reads every setting', () => {
    const c = parseConfig(
      env({
        RTCSTATS_PORT: '9000',
        RTCSTATS_DATA_DIR: '/var/lib/rtcstats',
        RTCSTATS_AUTH: 'disabled',
        RTCSTATS_JWT_PREVIOUS_SECRETS: ' a , b ,',
        RTCSTATS_JWT_MAX_LIFETIME: '6h',
        RTCSTATS_JWT_CLOCK_TOLERANCE: '45',
        RTCSTATS_MAX_PAYLOAD: '65536',
        RTCSTATS_SHUTDOWN_TIMEOUT: '2m',
        RTCSTATS_FINALIZE_CONCURRENCY: '3',
        RTCSTATS_UPLOAD_PATH: '/rtcstats/upload',
        RTCSTATS_MAX_UPLOAD_BYTES: '1048576',
      }),
    );
    assert.equal(c.shutdownTimeoutMs, 120_000);
    assert.equal(c.finalizeConcurrency, 3);
    assert.equal(c.uploadPath, '/rtcstats/upload');
    assert.equal(c.maxUploadBytes, 1048576);
    assert.equal(c.port, 9000);
    assert.equal(c.dataDir, '/var/lib/rtcstats');
    assert.equal(c.auth, 'disabled');
    assert.deepEqual(c.jwt.previousSecrets, ['a', 'b']);
    assert.equal(c.jwt.maxLifetimeSec, 6 * 3600);
    assert.equal(c.jwt.clockToleranceSec, 45);
    assert.equal(c.maxPayload, 65536);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ RTCSTATS_PORT: 'eighty' }, /^RTCSTATS_PORT must be a whole number .*"eighty"/],
    [{ RTCSTATS_PORT: '70000' }, /^RTCSTATS_PORT must be between 0 and 65535/],
    [{ RTCSTATS_PORT: '-1' }, /^RTCSTATS_PORT/],
    [{ RTCSTATS_AUTH: 'off' }, /^RTCSTATS_AUTH must be one of required, disabled \(got "off"\)/],
    [{ RTCSTATS_MAX_PAYLOAD: '4MB' }, /^RTCSTATS_MAX_PAYLOAD/],
    [{ RTCSTATS_MAX_PAYLOAD: '10' }, /^RTCSTATS_MAX_PAYLOAD must be between/],
    [{ RTCSTATS_JWT_MAX_LIFETIME: 'forever' }, /^RTCSTATS_JWT_MAX_LIFETIME/],
    [{ RTCSTATS_JWT_CLOCK_TOLERANCE: '1h' }, /^RTCSTATS_JWT_CLOCK_TOLERANCE must be between/],
    [{ RTCSTATS_LOG_LEVEL: 'loud' }, /^RTCSTATS_LOG_LEVEL/],
    [{ RTCSTATS_SHUTDOWN_TIMEOUT: 'soon' }, /^RTCSTATS_SHUTDOWN_TIMEOUT/],
    [{ RTCSTATS_FINALIZE_CONCURRENCY: '0' }, /^RTCSTATS_FINALIZE_CONCURRENCY must be between 1 and 256/],
    [{ RTCSTATS_UPLOAD_PATH: 'upload' }, /^RTCSTATS_UPLOAD_PATH must be a URL path starting with \//],
    [{ RTCSTATS_UPLOAD_PATH: '/up?x=1' }, /^RTCSTATS_UPLOAD_PATH/],
    [{ RTCSTATS_MAX_UPLOAD_BYTES: '1k' }, /^RTCSTATS_MAX_UPLOAD_BYTES/],
  ];
  for (const [values, message] of bad) {
    it(`rejects ${JSON.stringify(values)}`, () => {
      assert.throws(() => parseConfig(env(values)), (err: Error) => err instanceof ConfigError && message.test(err.message));
    });
  }
});

describe('parseConfig: production storage', () => {
  it('defaults to the embedded storage, the reference table name and no analysis', () => {
    const c = parseConfig(env({}));
    assert.equal(c.database.url, undefined);
    assert.equal(c.database.table, 'rtcstats-server');
    assert.equal(c.database.poolSize, 10);
    assert.equal(c.s3, undefined);
    assert.equal(c.analysis, undefined);
    assert.ok(c.hostIdentifier.length > 0);
    assert.equal(c.workers, 1);
    assert.equal(c.workerSlot, undefined);
    assert.equal(c.redis, undefined);
  });

  it('reads cluster and fleet settings: RTCSTATS_WORKERS=0 is one per core, RTCSTATS_HOST_ID wins over the reference name', () => {
    const c = parseConfig(
      env({ RTCSTATS_WORKERS: '0', RTCSTATS_HOST_ID: 'vm-7', RTCSTATS_HOST_IDENTIFIER: 'old', RTCSTATS_REDIS_URL: 'redis://:pw@cache:6379/2' }),
    );
    assert.equal(c.workers, os.availableParallelism());
    assert.equal(c.hostIdentifier, 'vm-7');
    assert.deepEqual(c.redis, { url: 'redis://:pw@cache:6379/2', keyPrefix: 'rtcstats:' });
    assert.equal(parseConfig(env({ RTCSTATS_WORKERS: '3', RTCSTATS_WORKER_SLOT: '2' })).workerSlot, 2);
  });

  it('reads PostgreSQL, S3 and analysis settings', () => {
    const c = parseConfig(
      env({
        RTCSTATS_DATABASE_URL: 'postgres://u:p@db:5432/stats',
        RTCSTATS_DATABASE_SSL_MODE: 'verify-ca',
        RTCSTATS_DATABASE_POOL_SIZE: '4',
        RTCSTATS_DATABASE_TABLE: 'stats.rtcstats-server',
        RTCSTATS_S3_BUCKET: 'dumps',
        RTCSTATS_S3_REGION: 'eu-west-1',
        RTCSTATS_S3_ENDPOINT: 'https://s3.example.com',
        RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
        RTCSTATS_S3_PREFIX: 'rtcstats-',
        RTCSTATS_ANALYSIS_URL: 'https://analysis.example/upload',
        RTCSTATS_ANALYSIS_TOKEN: 'tok',
        RTCSTATS_ANALYSIS_SAMPLE: '0.25',
        RTCSTATS_HOST_IDENTIFIER: 'collector-1',
      }),
    );
    assert.deepEqual(c.database, {
      url: 'postgres://u:p@db:5432/stats',
      sslMode: 'verify-ca',
      ca: undefined,
      poolSize: 4,
      table: 'stats.rtcstats-server',
    });
    assert.deepEqual(c.s3, { bucket: 'dumps', region: 'eu-west-1', endpoint: 'https://s3.example.com', forcePathStyle: true, prefix: 'rtcstats-' });
    assert.deepEqual(c.analysis, { url: 'https://analysis.example/upload', token: 'tok', sample: 0.25 });
    assert.equal(c.hostIdentifier, 'collector-1');
  });

  it('reads the CA file at boot; a CA file alone means verify-full', () => {
    const c = parseConfig(env({ RTCSTATS_DATABASE_URL: 'postgres://db/x', RTCSTATS_DATABASE_CA_FILE: 'package.json' }));
    assert.equal(c.database.sslMode, 'verify-full');
    assert.match(c.database.ca!, /rtcstats-server-nestjs/);
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ RTCSTATS_DATABASE_URL: 'mysql://u:secret@db/x' }, /^RTCSTATS_DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL$/],
    [{ RTCSTATS_DATABASE_SSL_MODE: 'prefer' }, /^RTCSTATS_DATABASE_SSL_MODE must be one of disable, require, verify-ca, verify-full/],
    [{ RTCSTATS_DATABASE_URL: 'postgres://db/x?sslmode=require', RTCSTATS_DATABASE_SSL_MODE: 'verify-full' }, /remove sslmode/],
    [{ RTCSTATS_DATABASE_CA_FILE: '/nonexistent/ca.pem' }, /^RTCSTATS_DATABASE_CA_FILE: cannot read \/nonexistent\/ca.pem \(ENOENT\)/],
    [{ RTCSTATS_DATABASE_CA_FILE: 'package.json', RTCSTATS_DATABASE_SSL_MODE: 'disable' }, /needs RTCSTATS_DATABASE_SSL_MODE/],
    [{ RTCSTATS_DATABASE_POOL_SIZE: '0' }, /^RTCSTATS_DATABASE_POOL_SIZE must be between 1/],
    [{ RTCSTATS_DATABASE_TABLE: 'a"b' }, /^RTCSTATS_DATABASE_TABLE must be a table name/],
    [{ RTCSTATS_DATABASE_TABLE: 'a.b.c' }, /^RTCSTATS_DATABASE_TABLE/],
    [{ RTCSTATS_S3_PREFIX: 'x/' }, /^RTCSTATS_S3_PREFIX is set but RTCSTATS_S3_BUCKET is not/],
    [{ RTCSTATS_S3_BUCKET: 'b', RTCSTATS_S3_PREFIX: '/x' }, /^RTCSTATS_S3_PREFIX must not start with "\/"/],
    [{ RTCSTATS_S3_BUCKET: 'b', RTCSTATS_S3_ENDPOINT: 'ftp://x' }, /^RTCSTATS_S3_ENDPOINT must be a http:\/\/ or https:\/\/ URL/],
    [{ RTCSTATS_ANALYSIS_URL: 'https://a.example' }, /^RTCSTATS_ANALYSIS_URL needs RTCSTATS_ANALYSIS_TOKEN/],
    [{ RTCSTATS_ANALYSIS_TOKEN: 't' }, /^RTCSTATS_ANALYSIS_TOKEN is set but RTCSTATS_ANALYSIS_URL is not/],
    [{ RTCSTATS_ANALYSIS_SAMPLE: '1.5' }, /^RTCSTATS_ANALYSIS_SAMPLE must be a number from 0 to 1/],
    [{ RTCSTATS_ANALYSIS_SAMPLE: 'half' }, /^RTCSTATS_ANALYSIS_SAMPLE/],
    [{ RTCSTATS_WORKERS: '-1' }, /^RTCSTATS_WORKERS must be a whole number between 0 and 256/],
    [{ RTCSTATS_WORKERS: '1000' }, /^RTCSTATS_WORKERS must be between 0 and 256/],
    [{ RTCSTATS_REDIS_URL: 'http://u:secret@cache' }, /^RTCSTATS_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL$/],
    [{ RTCSTATS_REDIS_KEY_PREFIX: 'x:' }, /^RTCSTATS_REDIS_KEY_PREFIX is set but RTCSTATS_REDIS_URL is not/],
  ];
  for (const [values, message] of bad) {
    it(`rejects ${JSON.stringify(values)}`, () => {
      assert.throws(
        () => parseConfig(env(values)),
        (err: Error) => err instanceof ConfigError && message.test(err.message) && !err.message.includes('secret'),
      );
    });
  }
});

describe('logLevelEnabled', () => {
  it('orders the levels error < warn < log < debug < verbose', () => {
    assert.equal(logLevelEnabled('warn', 'log'), false);
    assert.equal(logLevelEnabled('warn', 'warn'), true);
    assert.equal(logLevelEnabled('warn', 'error'), true);
    assert.equal(logLevelEnabled('log', 'log'), true);
    assert.equal(logLevelEnabled('log', 'debug'), false);
    assert.equal(logLevelEnabled('verbose', 'debug'), true);
  });
});

describe('parseDurationSeconds', () => {
  it('parses seconds and unit suffixes', () => {
    assert.equal(parseDurationSeconds('600'), 600);
    assert.equal(parseDurationSeconds('10m'), 600);
    assert.equal(parseDurationSeconds('6h'), 21600);
    assert.equal(parseDurationSeconds('1d'), 86400);
    assert.equal(parseDurationSeconds('6 h'), 21600);
    assert.equal(parseDurationSeconds('1.5h'), undefined);
    assert.equal(parseDurationSeconds('-5'), undefined);
    assert.equal(parseDurationSeconds(''), undefined);
  });
});
