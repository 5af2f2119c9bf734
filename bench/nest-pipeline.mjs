#!/usr/bin/env node
// Experiment behind a design choice: how much does Nest's WebSocket message pipeline
// (@SubscribeMessage through the stock WsAdapter) cost per frame, compared with a raw `ws`
// 'message' listener attached in handleConnection? Both modes boot the same Nest app, append
// every frame to one file per connection and apply the same backpressure and the same close
// (fsync, rename `.part` to `.jsonl`) as bench/baseline-server.mjs; only the way a frame reaches
// the write differs. No auth: this isolates the per-frame path. Compare them with
// `npm run bench -- --targets baseline,nest-raw,nest-pipeline --scenarios real-50x2000`.
//   node bench/nest-pipeline.mjs --mode nest|raw --port 8092 --dir /tmp/out
import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';

const { values: args } = parseArgs({
  options: { mode: { type: 'string', default: 'raw' }, port: { type: 'string', default: '8092' }, dir: { type: 'string', default: './pipeline-out' }, secret: { type: 'string' } },
});
const dir = path.resolve(args.dir);
fs.mkdirSync(dir, { recursive: true });
const NL = Buffer.from('\n');
const OUT = Symbol('out');
let n = 0;

function write(ws, data) {
  const out = ws[OUT];
  out.write(data);
  if (!out.write(NL) && !ws.isPaused) {
    ws.pause();
    out.once('drain', () => ws.resume());
  }
}

class Gateway {
  handleConnection(ws) {
    const name = path.join(dir, String(n++));
    ws[OUT] = fs.createWriteStream(`${name}.part`, { highWaterMark: 256 * 1024, flush: true });
    ws.on('close', () => {
      ws[OUT].on('close', () => fs.rename(`${name}.part`, `${name}.jsonl`, (err) => { if (err) throw err; }));
      ws[OUT].end();
    });
    if (args.mode === 'raw') ws.on('message', (data) => write(ws, data));
  }
  onFrame(ws, data) {
    write(ws, data);
  }
}
if (args.mode === 'nest') {
  const d = Object.getOwnPropertyDescriptor(Gateway.prototype, 'onFrame');
  SubscribeMessage('frame')(Gateway.prototype, 'onFrame', d);
}
WebSocketGateway({ perMessageDeflate: false })(Gateway);

class AppModule {}
Module({ providers: [Gateway] })(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
// Frames are arrays, not {event, data}: wrap each one so the stock pipeline routes it to onFrame.
app.useWebSocketAdapter(new WsAdapter(app, { messageParser: (data) => ({ event: 'frame', data }) }));
await app.listen(Number(args.port), '127.0.0.1');
console.log(`nest-pipeline experiment (${args.mode}) on ws://127.0.0.1:${args.port}/ pid ${process.pid}`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
