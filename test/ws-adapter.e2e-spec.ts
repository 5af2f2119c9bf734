import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Server } from 'node:http';
import { describe, it } from 'node:test';

import { ApplicationConfig } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';

import { ConnectionAuthenticator } from '../src/auth/connection-authenticator.js';
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

  it('a connection whose accepting throws is closed with 1011; the process and the next client carry on', async () => {
    const t = await startApp();
    try {
      const auth = t.app.get(ConnectionAuthenticator);
      const authenticate = auth.authenticate.bind(auth);
      let fail = true;
      // Connections arrive from the ws server's 'connection' event, outside Nest's pipeline: an
      // exception there would otherwise be thrown from an event listener and end the process.
      auth.authenticate = (request) => {
        if (fail) {
          fail = false;
          throw new Error('injected failure');
        }
        return authenticate(request);
      };
      const broken = await connect(t.url(`/x?rtcstats-token=${sign({ rtcStats: {} })}`));
      const brokenClose = await closed(broken);
      assert.deepEqual(brokenClose, { code: 1011, reason: 'internal error' });
      const ws = await connect(t.url(`/y?rtcstats-token=${sign({ rtcStats: {} })}`));
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
    } finally {
      await t.close();
      fs.rmSync(t.dataDir, { recursive: true, force: true });
    }
  });
});
