import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { WebSocket } from 'ws';

import { REPO_ROOT, type TestApp, waitFor, within } from './helpers.js';
import type { DumpRecord } from '../src/metadata/metadata.store.js';

export const JITSI_FIXTURES = path.join(REPO_ROOT, 'test/fixtures/jitsi');

/** A Jitsi-flavour test client that queues what the server sends. */
export interface JitsiClient {
  ws: WebSocket;
  /** The next server message (parsed), in order. */
  next(what?: string): Promise<{ type: string; body: { value: number; state?: string } }>;
  /** Every server message received so far. */
  received: Array<{ type: string; body: { value: number; state?: string } }>;
}

export function jitsiConnect(url: string, protocol = '3.1_STANDARD'): Promise<JitsiClient> {
  const ws = new WebSocket(url, protocol);
  const received: JitsiClient['received'] = [];
  let read = 0;
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    received.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  const client: JitsiClient = {
    ws,
    received,
    next: (what = 'a server message') =>
      within(
        new Promise((resolve) => {
          const take = () => {
            if (read < received.length) resolve(received[read++]);
            else waiters.push(take);
          };
          take();
        }),
        what,
      ),
  };
  return within(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    }),
    `open ${url}`,
  );
}

/** The URL a Jitsi client builds from endpoint `ws://host/?rtcstats-token=<jwt>`. */
export function jitsiUrl(t: TestApp, token: string, statsSessionId: string, isReconnect = false, fqn = 'meet.example.com/room1'): string {
  return t.url(`/?rtcstats-token=${token}/${fqn}?statsSessionId=${statsSessionId}&isReconnect=${isReconnect}`);
}

/** The message the client sent for one line of a Jitsi dump (inverse of what the server stores). */
export function messageFor(statsSessionId: string, line: string): string {
  const method = line.slice(2, line.indexOf('"', 2));
  if (method === 'identity') return `{"statsSessionId":"${statsSessionId}","type":"identity","data":${line}}`;
  return JSON.stringify({ statsSessionId, type: 'stats-entry', data: line });
}

/** A fixture's client lines (its first line, when the server's connectionInfo record, dropped). */
export function jitsiFixture(name: string): string[] {
  const lines = fs.readFileSync(path.join(JITSI_FIXTURES, name), 'utf8').replace(/\n$/, '').split('\n');
  return lines[0].startsWith('["connectionInfo"') ? lines.slice(1) : lines;
}

export function newSessionId(): string {
  return crypto.randomUUID();
}

/** Waits for the metadata record of the dump of this statsSessionId (n records, when resumed after expiry). */
export function waitForJitsiRecords(t: TestApp, statsSessionId: string, n = 1, ms?: number): Promise<DumpRecord[]> {
  return waitFor(
    async () => {
      const rows = (await t.metadata.find({}, 10_000)).filter((r) => r.statsSessionId === statsSessionId);
      return rows.length >= n ? rows.sort((a, b) => a.startTime - b.startTime) : undefined;
    },
    `${n} record(s) of Jitsi session ${statsSessionId}`,
    ms,
  );
}

/** Sequence numbers of the client entries in a stored Jitsi dump (server lines have none). */
export function seqs(lines: readonly string[]): number[] {
  return lines
    .map((l) => JSON.parse(l) as unknown[])
    .filter((a) => a.length >= 5 && typeof a[4] === 'number')
    .map((a) => a[4] as number);
}
