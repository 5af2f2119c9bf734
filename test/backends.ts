import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Redis } from 'ioredis';
import S3rver from 's3rver';

import { parseConfig } from '../src/config/app-config.js';
import { openMetadataStore, SQLITE_FILE_NAME } from '../src/metadata/metadata.module.js';
import type { MetadataStore } from '../src/metadata/metadata.store.js';
import type { DumpStore } from '../src/storage/dump-store.js';
import { openDumpStore } from '../src/storage/storage.module.js';

// The S3 store takes credentials from the standard AWS chain, as in production: these are
// s3rver's. Never the instance metadata service, never a real AWS endpoint (tests set one).
process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const PG_HOST = process.env.RTCSTATS_TEST_PG_HOST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.RTCSTATS_TEST_PG_PORT ?? 5432);
const PG_ADMIN_URL = `postgres://postgres@${PG_HOST}:${PG_PORT}/test`;
export const BUCKET = 'rtcstats-dumps';

/**
 * Why PostgreSQL tests cannot run here, or false when they can. Under CI=true a missing server
 * is an error (the run must fail), locally the tests are skipped with this reason.
 */
export const pgUnavailable: string | false = await (async () => {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return false;
  } catch (err) {
    const reason = `PostgreSQL is not answering at ${PG_HOST}:${PG_PORT} (${(err as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires it (.ci/run starts it)`);
    // eslint-disable-next-line no-console
    console.log(`# SKIPPING PostgreSQL tests: ${reason}`);
    return `skipped: ${reason}`;
  } finally {
    await client.end().catch(() => undefined);
  }
})();

export const REDIS_URL = process.env.RTCSTATS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Why Redis tests cannot run here, or false when they can (CI=true: a missing server fails the run). */
export const redisUnavailable: string | false = await (async () => {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return false;
  } catch (err) {
    const reason = `Redis is not answering at ${REDIS_URL} (${(err as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires it (.ci/run starts it)`);
    // eslint-disable-next-line no-console
    console.log(`# SKIPPING Redis tests: ${reason}`);
    return `skipped: ${reason}`;
  } finally {
    client.disconnect();
  }
})();

/** A key prefix of its own for one test, and a way to list and delete what was written under it. */
export function redisPrefix(): { prefix: string; keys(): Promise<string[]>; clean(): Promise<void> } {
  const prefix = `rtcstats-test-${crypto.randomBytes(6).toString('hex')}:`;
  const withClient = async <T>(fn: (c: Redis) => Promise<T>): Promise<T> => {
    const c = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      return await fn(c);
    } finally {
      c.disconnect();
    }
  };
  // The collector wraps keys in a hash tag: {<prefix>...}.
  const keys = () => withClient((c) => c.keys(`{${prefix}*`));
  return {
    prefix,
    keys,
    clean: () =>
      withClient(async (c) => {
        const found = await c.keys(`{${prefix}*`);
        if (found.length > 0) await c.del(...found);
      }),
  };
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A database of its own for one test (parallel runs never collide); drop() removes it. */
export async function createTestDatabase(host = PG_HOST, port = PG_PORT): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `rtcstats_test_${crypto.randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  return {
    name,
    url: `postgres://postgres@${host}:${port}/${name}`,
    drop: () => adminQuery(`drop database if exists ${name} with (force)`),
  };
}

/** Runs SQL on a test database with a short-lived client. */
export async function pgQuery<T = Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/** An S3-compatible server (s3rver) on a free port, with one bucket; stop() removes its files. */
export async function startS3(): Promise<{ endpoint: string; port: number; client: S3Client; stop(): Promise<void> }> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true });
  return {
    endpoint,
    port,
    client,
    stop: async () => {
      client.destroy();
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

export async function getObject(client: S3Client, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function listKeys(client: S3Client): Promise<string[]> {
  const res = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

/**
 * A TCP forwarder in front of a service, to take it "down" (refuse and cut connections) and bring
 * it back on the same port, without touching the service itself (which other tests share).
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Everything clients sent through the proxy (to count requests of a plain-HTTP service). */
  sent = '';

  private constructor(private readonly targetPort: number) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await proxy.up();
    return proxy;
  }

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => (this.sent += chunk.toString('latin1')));
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One storage setup: the embedded default, or PostgreSQL + S3. */
export interface BackendInstance {
  /** Settings for startApp / parseConfig (besides the data directory). */
  env: Record<string, string>;
  openMetadata(dataDir: string): Promise<MetadataStore>;
  openDumps(dataDir: string): Promise<DumpStore>;
  /** The stored (gzip) bytes of a dump from the location the store returned. */
  readStored(location: string): Promise<Buffer>;
  /** Every stored dump object or file. */
  storedNames(dataDir: string): Promise<string[]>;
  /** Raw SQL on the metadata database (for the reference's tables). */
  query<T = Record<string, unknown>>(dataDir: string, text: string, values?: unknown[]): Promise<T[]>;
  cleanup(): Promise<void>;
}

export interface Backend {
  name: string;
  skip: string | false;
  setup(extraEnv?: Record<string, string>): Promise<BackendInstance>;
}

const configOf = (env: Record<string, string>, dataDir: string) => parseConfig((n) => ({ ...env, RTCSTATS_DATA_DIR: dataDir })[n]);

export const sqliteLocal: Backend = {
  name: 'SQLite + local directory',
  skip: false,
  async setup(extraEnv = {}) {
    const env = { ...extraEnv };
    return {
      env,
      openMetadata: (dataDir) => openMetadataStore(configOf(env, dataDir)),
      openDumps: (dataDir) => openDumpStore(configOf(env, dataDir)),
      readStored: async (location) => fs.readFileSync(location),
      storedNames: async (dataDir) => {
        const dir = path.join(dataDir, 'dumps');
        return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
      },
      query: async <T>(dataDir: string, text: string, values: unknown[] = []) => {
        const db = new Database(path.join(dataDir, SQLITE_FILE_NAME), { readonly: true });
        try {
          // Numbered placeholders as in PostgreSQL, so one query text serves both.
          return db.prepare(text.replace(/\$\d+/g, '?')).all(...(values as never[])) as T[];
        } finally {
          db.close();
        }
      },
      cleanup: async () => undefined,
    };
  },
};

export const postgresS3: Backend = {
  name: 'PostgreSQL + S3',
  skip: pgUnavailable,
  async setup(extraEnv = {}) {
    const database = await createTestDatabase();
    const s3 = await startS3();
    const env = {
      RTCSTATS_DATABASE_URL: database.url,
      RTCSTATS_S3_BUCKET: BUCKET,
      RTCSTATS_S3_REGION: 'us-east-1',
      RTCSTATS_S3_ENDPOINT: s3.endpoint,
      RTCSTATS_S3_FORCE_PATH_STYLE: 'true',
      ...extraEnv,
    };
    return {
      env,
      openMetadata: (dataDir) => openMetadataStore(configOf(env, dataDir)),
      openDumps: (dataDir) => openDumpStore(configOf(env, dataDir)),
      readStored: (location) => getObject(s3.client, decodeURIComponent(new URL(location).pathname.split('/').slice(2).join('/'))),
      storedNames: () => listKeys(s3.client),
      query: (_dataDir, text, values) => pgQuery(database.url, text, values),
      cleanup: async () => {
        await s3.stop();
        await database.drop();
      },
    };
  },
};

export const BACKENDS: readonly Backend[] = [sqliteLocal, postgresS3];
