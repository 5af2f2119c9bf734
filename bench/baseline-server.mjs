#!/usr/bin/env node
// The yardstick of `npm run bench`: the least a Node process can do to record rtcstats sessions
// durably. `ws` on one port, the JWT checked once in the HTTP upgrade (HS256, secret as a KeyObject),
// every text frame appended as-is plus '\n' to one file per connection (256 KiB write buffer, socket
// paused while the buffer is full), and at close: end the file, fsync it, rename `<n>.part` to
// `<n>.jsonl` (the rename is how the bench sees that a session is durable). A bad token gets the
// upgrade and then close 1008, as the collector does. No obfuscation, metadata or compression.
//   node bench/baseline-server.mjs --port 8190 --dir /tmp/out --secret S
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';

import jwt from 'jsonwebtoken';
import { WebSocketServer } from 'ws';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, dir: { type: 'string' }, secret: { type: 'string' } },
});
if (!args.port || !args.dir || !args.secret) {
  console.error('usage: node bench/baseline-server.mjs --port N --dir DIR --secret S [--host H]');
  process.exit(2);
}
const dir = path.resolve(args.dir);
fs.mkdirSync(dir, { recursive: true });
const key = crypto.createSecretKey(Buffer.from(args.secret));
const NL = Buffer.from('\n');
let sessions = 0;

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthcheck' ? 200 : 404).end();
});
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  handleProtocols: (offered) => (offered.has('rtcstats#5.0') ? 'rtcstats#5.0' : false),
});

server.on('upgrade', (req, socket, head) => {
  const token = new URL(req.url ?? '/', 'http://x').searchParams.get('rtcstats-token');
  let ok = false;
  try {
    jwt.verify(token ?? '', key, { algorithms: ['HS256'] });
    ok = true;
  } catch {
    // Refused below, after the upgrade, like the collector.
  }
  wss.handleUpgrade(req, socket, head, (ws) => (ok ? record(ws) : ws.close(1008, 'invalid token')));
});

function record(ws) {
  const name = path.join(dir, String(sessions++));
  let out = null;
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    // flush: fsync before the stream closes its file.
    out ??= fs.createWriteStream(`${name}.part`, { highWaterMark: 256 * 1024, flush: true });
    out.write(data);
    if (!out.write(NL) && !ws.isPaused) {
      ws.pause();
      out.once('drain', () => ws.resume());
    }
  });
  ws.on('close', () => {
    if (out === null) return;
    out.on('close', () => fs.rename(`${name}.part`, `${name}.jsonl`, (err) => { if (err) throw err; }));
    out.end();
  });
}

server.listen(Number(args.port), args.host, () => console.log(`baseline listening on ${args.host}:${args.port}`));
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
});
