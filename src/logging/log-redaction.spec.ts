import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { messageFields, redactText } from './log-redaction.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJydGNTdGF0cyI6e319.c2lnbmF0dXJlLXZhbHVl';

describe('redactText', () => {
  it('masks token query values, bearer credentials and JWT-shaped strings', () => {
    assert.equal(redactText(`GET /x?a=1&rtcstats-token=${JWT}&b=2`), 'GET /x?a=1&rtcstats-token=[redacted]&b=2');
    assert.equal(redactText('Authorization: Bearer s3cr3t-api-key-value'), 'Authorization: Bearer [redacted]');
    assert.equal(redactText(`/t/${JWT}/room`), '/t/[redacted]/room');
    assert.equal(redactText('nothing to hide'), 'nothing to hide');
  });
});

describe('messageFields', () => {
  const id = '0b5c2f0e-8d4c-4c1e-9d8b-1f6f1e2a3b4c';
  it('finds the dump id of connection lines', () => {
    assert.deepEqual(messageFields(`Connection ${id} accepted on / (kid k)`), { dumpId: id });
    assert.deepEqual(messageFields(`Dump ${id}: attempt 2 failed`), { dumpId: id });
    assert.deepEqual(messageFields(`Jitsi session s1 started (dump ${id}) on connection x`), { dumpId: id });
    assert.deepEqual(messageFields(`Jitsi connection ${id} accepted`), { connectionId: id });
    assert.deepEqual(messageFields(`Connection ${id} error: Invalid WebSocket frame`), { dumpId: id });
    const conn = '7e0f3a1b-2c4d-4e5f-8a9b-0c1d2e3f4a5b';
    // A session's lines name both: its dump and the socket carrying it.
    assert.deepEqual(messageFields(`Jitsi session s1 started (dump ${id}) on connection ${conn}`), { dumpId: id, connectionId: conn });
    assert.deepEqual(messageFields(`Jitsi connection ${conn}: session s1 is carried by another connection; its messages here are dropped (dump ${id})`), {
      dumpId: id,
      connectionId: conn,
    });
    assert.equal(messageFields('Keyring reloaded'), undefined);
  });
});
