import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Server } from 'node:http';
import { describe, it } from 'node:test';

import { ApplicationConfig } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';

import { RtcstatsWsAdapter } from '../src/ingestion/rtcstats-ws.adapter.js';
import { closed, connect, sendAndClose, sign, startApp } from './helpers.js';

describe('the WebSocket adapter is @nestjs/platform-ws WsAdapter, extended', () => {
  it('upgrades on any path, echoes rtcstats#5.0, and takes its upgrade listener away on close', async () => {
    const t = await startApp();
    const server = t.app.getHttpServer() as Server;
    try {
      const adapter = t.app.get(ApplicationConfig).getIoAdapter();
      assert.ok(adapter instanceof RtcstatsWsAdapter);
      assert.ok(adapter instanceof WsAdapter);
      assert.equal(server.listenerCount('upgrade'), 1);
      for (const p of ['/', '/a/b/c', '/room%20x?x=1&']) {
        const sep = p.includes('?') ? '' : '?';
        const ws = await connect(t.url(`${p}${sep}rtcstats-token=${sign({ rtcStats: {} })}`), ['other', 'rtcstats#5.0']);
        assert.equal(ws.protocol, 'rtcstats#5.0');
        assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
      }
      const none = await connect(t.url(`/x?rtcstats-token=${sign({ rtcStats: {} })}`), []);
      assert.equal(none.protocol, '');
      const done = closed(none);
      none.close(1000);
      assert.equal((await done).code, 1000);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
    assert.equal(server.listenerCount('upgrade'), 0, 'no listener left on the HTTP server');
  });
});
