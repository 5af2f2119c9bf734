import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import jwt from 'jsonwebtoken';
import { WebSocket } from 'ws';

import { AppModule } from '../src/app.module.js';
import { setupApp } from '../src/app.setup.js';
import { CLOCK } from '../src/common/clock.js';
import { type AppConfig, parseConfig } from '../src/config/app-config.js';
import { APP_CONFIG } from '../src/config/app-config.token.js';
import type { KeyringFileSpec } from '../src/keyring/keyring.js';
import { KeyringService } from '../src/keyring/keyring.service.js';
import { METADATA_STORE, type MetadataStore, type StoredDumpRecord } from '../src/metadata/metadata.store.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Client data copied into the repo (origin and licences in test/fixtures/NOTICE.md). */
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop';
export const OTHER_SECRET = 'other-secret-0123456789-abcdefghijklmno';
export const TIMEOUT_MS = 10_000;

/** Rejects after ms with a message saying what was awaited. */
export function within<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

const madeDirs = new Set<string>();

/** A fresh directory under $TMPDIR, removed by removeTempDir or, at the latest, when the test file ends. */
export function tempDir(prefix = 'rtcstats-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  madeDirs.delete(dir);
}

// Whatever a test file made and did not remove itself goes when the file's tests end.
after(() => {
  for (const dir of madeDirs) removeTempDir(dir);
});

class CaptureLogger implements LoggerService {
  readonly lines: string[] = [];
  private push(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length > 0 ? String(rest[rest.length - 1]) : '';
    this.lines.push(`${level} [${context}] ${String(message)}`);
  }
  log(m: unknown, ...r: unknown[]) { this.push('log', m, r); }
  warn(m: unknown, ...r: unknown[]) { this.push('warn', m, r); }
  error(m: unknown, ...r: unknown[]) { this.push('error', m, r); }
  debug(m: unknown, ...r: unknown[]) { this.push('debug', m, r); }
  verbose(m: unknown, ...r: unknown[]) { this.push('verbose', m, r); }
}

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  port: number;
  dataDir: string;
  metadata: MetadataStore;
  logs: string[];
  url(pathAndQuery?: string): string;
  /** Stops the app and removes the data directory it made (keepData: leave it, e.g. to restart on it). */
  close(options?: { keepData?: boolean }): Promise<void>;
}

/** A clock the test moves by hand, for the app's CLOCK (token times, key notAfter, rate windows). */
export class TestClock {
  constructor(private ms = Date.now()) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Boots the real AppModule on an ephemeral port with the given environment (and clock, if given). */
export async function startApp(env: Record<string, string> = {}, options: { clock?: TestClock } = {}): Promise<TestApp> {
  const madeDataDir = env.RTCSTATS_DATA_DIR === undefined;
  const dataDir = env.RTCSTATS_DATA_DIR ?? tempDir();
  const values: Record<string, string> = { RTCSTATS_JWT_SECRET: TEST_SECRET, ...env, RTCSTATS_DATA_DIR: dataDir };
  const removeData = () => {
    if (madeDataDir) removeTempDir(dataDir);
  };
  let app: INestApplication | undefined;
  try {
    const config = parseConfig((name) => values[name]);
    let builder = Test.createTestingModule({ imports: [AppModule] }).overrideProvider(APP_CONFIG).useValue(config);
    if (options.clock !== undefined) builder = builder.overrideProvider(CLOCK).useValue(options.clock.now);
    const moduleRef = await builder.compile();
    const logger = new CaptureLogger();
    const nest = moduleRef.createNestApplication({ logger });
    app = nest;
    setupApp(nest);
    await nest.listen(0, '127.0.0.1');
    const port = (nest.getHttpServer().address() as net.AddressInfo).port;
    return {
      app: nest,
      config,
      port,
      dataDir,
      metadata: nest.get<MetadataStore>(METADATA_STORE),
      logs: logger.lines,
      url: (p = '/') => `ws://127.0.0.1:${port}${p}`,
      close: async ({ keepData = false } = {}) => {
        await nest.close();
        if (!keepData) removeData();
      },
    };
  } catch (err) {
    // A boot that fails (the tests of bad settings) leaves nothing either.
    await app?.close();
    removeData();
    throw err;
  }
}

export function sign(payload: object, secret = TEST_SECRET, options: jwt.SignOptions = {}): string {
  // An explicit `exp` in the payload replaces the default lifetime (jsonwebtoken refuses both).
  const lifetime = 'exp' in payload ? {} : { expiresIn: '1h' as const };
  return jwt.sign(payload, secret, { algorithm: 'HS256', ...lifetime, ...options });
}

export function tokenQuery(token: string): string {
  return `?rtcstats-token=${encodeURIComponent(token)}`;
}

export interface Closed {
  code: number;
  reason: string;
}

/**
 * Close codes of clients opened by connect(), noted from the start: a server that rejects right
 * after the upgrade can close a socket before the test's await of connect() resumes.
 */
const closes = new WeakMap<WebSocket, Promise<Closed>>();

/** Opens a client; resolves on open, rejects on error. */
export function connect(url: string, protocols: string | string[] = 'rtcstats#5.0', options: object = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  closes.set(ws, new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))));
  return within(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    }),
    `open ${url}`,
  );
}

/** Resolves with the close code and reason the client observed. */
export function closed(ws: WebSocket, ms = TIMEOUT_MS): Promise<Closed> {
  const noted = closes.get(ws);
  if (noted === undefined && ws.readyState === WebSocket.CLOSED) throw new Error('socket already closed; attach closed() earlier');
  return within(
    noted ?? new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    'close',
    ms,
  );
}

/** Sends each frame, then closes with `code`, and waits for the close handshake. */
export async function sendAndClose(ws: WebSocket, frames: readonly string[], code = 1000): Promise<Closed> {
  const done = closed(ws);
  for (const f of frames) ws.send(f);
  ws.close(code);
  return done;
}

export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until exactly n records exist (matching query), then returns them. */
export function waitForRecords(t: TestApp, n: number, query: { user?: string; session?: string } = {}): Promise<StoredDumpRecord[]> {
  return waitFor(async () => {
    const rows = await t.metadata.find(query, 10_000);
    return rows.length >= n ? rows : undefined;
  }, `${n} metadata records`);
}

/** The lines of a stored (gzip) dump. */
export function readDump(location: string): string[] {
  const text = zlib.gunzipSync(fs.readFileSync(location)).toString('utf8');
  return text.replace(/\n$/, '').split('\n');
}

export function fixtureLines(relative: string): string[] {
  return fs.readFileSync(path.join(FIXTURES, relative), 'utf8').replace(/\n$/, '').split('\n');
}

/**
 * Waits until the work folder is empty: a record is inserted before its live file is unlinked, so
 * a test that counts files after seeing a record must wait for this real condition, not race it.
 */
export function liveFilesGone(t: TestApp): Promise<true> {
  const work = path.join(t.dataDir, 'work');
  return waitFor(() => (!fs.existsSync(work) || fs.readdirSync(work).length === 0 ? true : undefined), 'live files to be removed');
}

/** Everything in the data directory's dumps and work folders (to prove nothing was stored). */
export function storedFiles(dataDir: string): string[] {
  return ['dumps', 'work'].flatMap((d) => {
    const dir = path.join(dataDir, d);
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(d, f)) : [];
  }).sort();
}

/** A masked client frame (RFC 6455), for raw-socket tests that put frames in the upgrade's packet. */
export function clientFrame(payload: Buffer | string, opcode = 1): Buffer {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = crypto.randomBytes(4);
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.alloc(4);
  if (len >= 126) {
    if (len > 0xffff) throw new Error('frame too large for this helper');
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  }
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, masked]);
}

export function closeFrame(code: number): Buffer {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code);
  return clientFrame(body, 0x8);
}

/**
 * Sends the upgrade request and `frames` in a single write, as a fast browser can, then a close
 * frame; resolves with the server's close code (or null if the server sent none).
 */
export function burstConnect(port: number, pathAndQuery: string, frames: readonly string[]): Promise<number | null> {
  return rawFrames(port, pathAndQuery, frames.map((f) => clientFrame(f)), closeFrame(1000));
}

/**
 * Raw-socket client: the upgrade request and the given (already encoded) frames in one write,
 * then `last` a moment later; resolves with the close code of the server's close frame.
 */
export function rawFrames(port: number, pathAndQuery: string, frames: readonly Buffer[], last?: Buffer): Promise<number | null> {
  const key = crypto.randomBytes(16).toString('base64');
  const request =
    `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rtcstats#5.0\r\n\r\n`;
  return within(
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let received = Buffer.alloc(0);
      let serverClose: number | null = null;
      socket.on('connect', () => {
        socket.write(Buffer.concat([Buffer.from(request), ...frames]));
        // The close frame goes separately, so the server sees the frames before the close.
        if (last !== undefined) setTimeout(() => socket.write(last), 50);
      });
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end === -1) return;
        const frame = received.subarray(end + 4);
        if (serverClose === null && frame.length >= 4 && frame[0] === 0x88) {
          serverClose = frame.readUInt16BE(2);
          socket.end();
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(serverClose));
    }),
    'raw burst connection',
  );
}

/** Replaces a keyring file the way editors and the keys CLI do: write a temp file, then rename over. */
export function writeKeyring(file: string, spec: KeyringFileSpec | string): void {
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2), { mode: 0o600 });
  fs.renameSync(temp, file);
}

/** Waits until the running service has swapped to a keyring whose kids/states are `described`. */
export function keyringLanded(t: TestApp, described: string): Promise<true> {
  const service = t.app.get(KeyringService);
  return waitFor(() => (service.get()?.describe() === described ? true : undefined), `keyring "${described}"`);
}
