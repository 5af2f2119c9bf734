/**
 * Real-browser harness: Debian's Chromium driven by playwright-core (never a downloaded browser),
 * headless, fake media devices, kept off the network, with a fresh profile and temp folder that
 * are removed afterwards; plus a tiny HTTP server for the test pages and the bundled
 * @jitsi/rtcstats client (built here with esbuild, in memory).
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';

import { build } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';

import { REPO_ROOT, removeTempDir, tempDir } from './helpers.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests cannot run here (undefined when they can). Under CI a missing browser fails. */
export function browserUnavailable(): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined;
  const message = `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; .ci/run does) to run the browser tests`;
  if (process.env.CI === 'true') throw new Error(message);
  return message;
}

/** The real @jitsi/rtcstats client as one browser script exposing `window.JitsiRtcstats`. */
export async function bundleJitsiClient(): Promise<string> {
  const result = await build({
    stdin: {
      contents: [
        "import rtcstatsInit from '@jitsi/rtcstats/rtcstats';",
        "import traceInit from '@jitsi/rtcstats/trace-ws';",
        'window.JitsiRtcstats = { rtcstatsInit, traceInit };',
      ].join('\n'),
      resolveDir: REPO_ROOT,
      loader: 'js',
    },
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    logLevel: 'silent',
    // The client imports a folder the package's exports map does not resolve for bundlers.
    alias: {
      '@jitsi/js-utils/browser-detection': path.join(REPO_ROOT, 'node_modules/@jitsi/js-utils/dist/browser-detection/index.js'),
    },
  });
  return result.outputFiles[0].text;
}

export interface PageServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves test/browser/*.html and the given scripts on 127.0.0.1 (a secure context for getUserMedia). */
export async function servePages(scripts: Record<string, string>): Promise<PageServer> {
  const dir = path.join(REPO_ROOT, 'test/browser');
  const server = http.createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
    if (scripts[name] !== undefined) {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(scripts[name]);
    } else if (/^[a-z0-9-]+\.html$/.test(name) && fs.existsSync(path.join(dir, name))) {
      res.writeHead(200, { 'content-type': 'text/html' }).end(fs.readFileSync(path.join(dir, name)));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Chromium puts its singleton Unix socket in $TMPDIR/org.chromium.Chromium.XXXXXX/, and a socket
 * path holds at most 107 bytes: under a deep test TMPDIR it gets a short folder in /tmp instead.
 */
function chromiumTempDir(): string {
  const dir = tempDir('cr-');
  if (dir.length <= 60) return dir;
  removeTempDir(dir);
  return fs.mkdtempSync('/tmp/rtcstats-cr-');
}

export async function launchChromium(): Promise<Browser> {
  const profile = tempDir('rtcstats-chromium-profile-');
  const tmp = chromiumTempDir();
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's own temp files (and pulse/dbus sockets) go to a folder removed afterwards.
    env: { ...process.env, TMPDIR: tmp, HOME: tmp },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
    ],
  }).catch((err: unknown) => {
    removeTmp();
    throw err;
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
      removeTmp();
    },
  };
}

export interface ServerSockets {
  /** Destroys every open TCP connection of the server (no close frame), as a crashing server or dying link would. */
  cut(): void;
}

/** Tracks the collector's own sockets, so a test can cut a browser's connection from the server side. */
export function serverSockets(server: http.Server): ServerSockets {
  const open = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return {
    cut: () => {
      for (const s of open) s.destroy();
    },
  };
}
