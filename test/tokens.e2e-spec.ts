import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import jwt from 'jsonwebtoken';

import { deriveKid, generateSecret, type KeyringFileSpec } from '../src/keyring/keyring.js';
import { ApiKeyAuthenticator } from '../src/auth/api-key.guard.js';
import { KeyringService } from '../src/keyring/keyring.service.js';
import { KeysModule } from '../src/keys/keys.module.js';
import { TokensModule } from '../src/tokens/tokens.module.js';
import {
  closed,
  connect,
  keyringLanded,
  REPO_ROOT,
  sendAndClose,
  startApp,
  tempDir,
  TestClock,
  TEST_SECRET,
  type TestApp,
  tokenQuery,
  waitFor,
  waitForRecords,
  within,
  writeKeyring,
} from './helpers.js';

const API_KEY = 'api-key-one-0123456789-abcdefghijklmnopq';
const API_KEY_2 = 'api-key-two-0123456789-abcdefghijklmnopq';
const PUBLIC_URL = 'wss://rtcstats.example.com/stats';
const CURRENT_KID = deriveKid(TEST_SECRET);
/** Many failures are provoked on purpose; only the rate-limit tests use a low limit. */
const BASE_ENV = { RTCSTATS_API_KEYS: `${API_KEY}, ${API_KEY_2}`, RTCSTATS_AUTH_FAILURE_LIMIT: '1000' };

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

interface PostOptions {
  apiKey?: string | null;
  headers?: Record<string, string>;
  /** Raw body; otherwise `body` is sent as JSON. */
  raw?: string;
}

async function post(t: TestApp, body: unknown = {}, options: PostOptions = {}): Promise<Reply> {
  const apiKey = options.apiKey === undefined ? API_KEY : options.apiKey;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(apiKey !== null && { authorization: `Bearer ${apiKey}` }),
    ...options.headers,
  };
  const res = await within(
    fetch(`http://127.0.0.1:${t.port}/tokens`, { method: 'POST', headers, body: options.raw ?? JSON.stringify(body) }),
    'POST /tokens',
  );
  const text = await within(res.text(), 'POST /tokens body');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function mint(t: TestApp, body: unknown = {}, apiKey = API_KEY): Promise<any> {
  const r = await post(t, body, { apiKey });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

function decode(token: string): { header: jwt.JwtHeader; payload: Record<string, unknown> } {
  const d = jwt.decode(token, { complete: true });
  assert.ok(d !== null && typeof d.payload === 'object');
  return { header: d.header, payload: d.payload as Record<string, unknown> };
}

const iso = (sec: number): string => new Date(sec * 1000).toISOString();

describe('POST /tokens', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ ...BASE_ENV, RTCSTATS_PUBLIC_URL: PUBLIC_URL });
  });
  after(() => t.close());

  it('mints a token that connects a real client; its claims land in the metadata record', async () => {
    const body = await mint(t, { user: 'u-minted', session: 's-minted', conference: 'c-minted', expiresIn: 600 });
    assert.equal(body.kid, CURRENT_KID);
    const ws = await connect(t.url(`/minted${tokenQuery(body.token)}`));
    assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
    const [record] = await waitForRecords(t, 1, { session: 's-minted' });
    assert.equal(record.user, 'u-minted');
    assert.equal(record.conference, 'c-minted');
    assert.equal(record.kid, CURRENT_KID);
  });

  it('answers the documented shape: exact claims, kid header, expiry arithmetic, ready URL', async () => {
    const before = Math.floor(Date.now() / 1000);
    const body = await mint(t, { user: 'alice', conference: 'room' });
    const after = Math.floor(Date.now() / 1000);
    assert.deepEqual(Object.keys(body).sort(), ['expiresAt', 'expiresIn', 'kid', 'refreshAfter', 'token', 'url']);
    const { header, payload } = decode(body.token);
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT', kid: CURRENT_KID });
    assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'rtcStats']);
    assert.deepEqual(payload.rtcStats, { user: 'alice', conference: 'room' });
    const iat = payload.iat as number;
    assert.ok(iat >= before && iat <= after, 'iat is now');
    assert.equal(body.expiresIn, 6 * 3600, 'default lifetime 6 h');
    assert.equal(payload.exp, iat + 6 * 3600);
    assert.equal(body.expiresAt, iso(iat + 6 * 3600));
    assert.equal(body.refreshAfter, iso(iat + 0.6 * 6 * 3600));
    assert.equal(body.url, `${PUBLIC_URL}?rtcstats-token=${body.token}`);
  });

  const lifetimes: [unknown, number | null][] = [
    [59, null],
    [60, 60],
    [86400, 86400],
    [86401, null],
    ['6h', 6 * 3600],
    ['90s', 90],
    ['1d', 86400],
    ['25h', null],
    ['abc', null],
    ['', null],
    [60.5, null],
    [-60, null],
    [true, null],
    [null, null],
  ];
  for (const [expiresIn, seconds] of lifetimes) {
    it(`expiresIn ${JSON.stringify(expiresIn)}: ${seconds === null ? '400' : `${seconds} s`}`, async () => {
      const r = await post(t, { expiresIn });
      if (seconds === null) {
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.error, 'Bad Request');
        assert.ok(r.json.message.some((m: string) => m.startsWith('expiresIn ')), r.text);
        return;
      }
      assert.equal(r.status, 201, r.text);
      const { payload } = decode(r.json.token);
      assert.equal(r.json.expiresIn, seconds);
      assert.equal((payload.exp as number) - (payload.iat as number), seconds);
      assert.equal(r.json.expiresAt, iso(payload.exp as number));
      assert.equal(r.json.refreshAfter, iso((payload.iat as number) + Math.floor(seconds * 0.6)));
    });
  }

  describe('authentication', () => {
    const minted = () => mint(t).then((b) => b.token as string);
    const cases: [string, () => Promise<Record<string, string>>][] = [
      ['no Authorization header', async () => ({})],
      ['Basic scheme with the key', async () => ({ authorization: `Basic ${Buffer.from(`x:${API_KEY}`).toString('base64')}` })],
      ['Bearer without a key', async () => ({ authorization: 'Bearer' })],
      ['the bare key, no scheme', async () => ({ authorization: API_KEY })],
      ['wrong key', async () => ({ authorization: `Bearer ${API_KEY.slice(0, -1)}x` })],
      ['key with a trailing space and more', async () => ({ authorization: `Bearer ${API_KEY} x` })],
      ['key with a trailing non-breaking space', async () => ({ authorization: `Bearer ${API_KEY}\u00a0` })],
      ['both keys at once', async () => ({ authorization: `Bearer ${API_KEY},${API_KEY_2}` })],
      ['a minted client token used as an API key', async () => ({ authorization: `Bearer ${await minted()}` })],
      ['the signing secret used as an API key', async () => ({ authorization: `Bearer ${TEST_SECRET}` })],
    ];
    let reference: string | undefined;
    for (const [name, headers] of cases) {
      it(`401 with WWW-Authenticate: Bearer and the same body: ${name}`, async () => {
        const r = await post(t, { user: 'x' }, { apiKey: null, headers: await headers() });
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/);
        assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message', 'statusCode']);
        reference ??= r.text;
        assert.equal(r.text, reference, 'the body does not say which part was wrong');
        assert.ok(!r.text.includes(API_KEY.slice(0, 12)), 'no key in the body');
      });
    }

    it('HTTP drops trailing whitespace before the app sees it (RFC 9110 5.5), so only the exact key gets through', async () => {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: t.port, path: '/tokens', method: 'POST', headers: { authorization: `Bearer ${API_KEY} `, 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
      assert.equal(status, 201);
    });

    it('accepts every configured key (rotation) and a lower-case scheme', async () => {
      assert.equal((await mint(t, {}, API_KEY_2)).kid, CURRENT_KID);
      const r = await post(t, {}, { apiKey: null, headers: { authorization: `bearer ${API_KEY}` } });
      assert.equal(r.status, 201);
    });

    it('an API key presented as rtcstats-token: the WebSocket opens, then closes 1008', async () => {
      const ws = await connect(t.url(`/api-key-as-token${tokenQuery(API_KEY)}`));
      assert.equal((await closed(ws)).code, 1008);
    });

    it('never logs an API key or a minted token', async () => {
      const token = await minted();
      await post(t, {}, { apiKey: 'not-the-key-0123456789-abcdefghijklmnopq' });
      const logs = t.logs.join('\n');
      for (const secret of [API_KEY, API_KEY_2, token, 'not-the-key-0123456789']) assert.ok(!logs.includes(secret));
    });
  });

  describe('validation', () => {
    const bad: [string, unknown, RegExp][] = [
      ['non-string user', { user: 42 }, /^user must be a string$/],
      ['null user', { user: null }, /^user must be a string$/],
      ['257-character user', { user: 'u'.repeat(257) }, /^user must be shorter than or equal to 256 characters$/],
      ['control character in session', { session: 'a\u0007b' }, /^session must not contain control characters$/],
      ['newline in conference', { conference: 'a\nb' }, /^conference must not contain control characters$/],
      ['C1 control character in user', { user: 'a\u0085b' }, /^user must not contain control characters$/],
      ['object conference', { conference: { $ne: 1 } }, /^conference must be a string$/],
      ['bad expiresIn', { expiresIn: 'soon' }, /^expiresIn must be a whole number of seconds or a duration string/],
      ['unknown field', { user: 'u', admin: true }, /^property admin should not exist$/],
      ['claims nested as in the token', { rtcStats: { user: 'u' } }, /^property rtcStats should not exist$/],
    ];
    for (const [name, body, rule] of bad) {
      it(`400 naming the field and the rule: ${name}`, async () => {
        const r = await post(t, body);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.json.statusCode, 400);
        assert.equal(r.json.error, 'Bad Request');
        assert.ok(Array.isArray(r.json.message) && r.json.message.some((m: string) => rule.test(m)), r.text);
      });
    }

    it('reports every bad field, one rule each', async () => {
      const r = await post(t, { user: 5, session: 'a\u0001', extra: 1 });
      assert.equal(r.status, 400);
      assert.deepEqual([...r.json.message].sort(), [
        'property extra should not exist',
        'session must not contain control characters',
        'user must be a string',
      ]);
    });

    it('accepts 256 characters, unicode and an empty body', async () => {
      const body = await mint(t, { user: 'u'.repeat(256), conference: 'Konferenz café 会議 🎥' });
      assert.deepEqual(decode(body.token).payload.rtcStats, { user: 'u'.repeat(256), conference: 'Konferenz café 会議 🎥' });
      const res = await within(
        fetch(`http://127.0.0.1:${t.port}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } }),
        'POST /tokens without a body',
      );
      assert.equal(res.status, 201);
      assert.equal(((await res.json()) as any).expiresIn, 6 * 3600);
    });

    it('400 for malformed JSON and for a JSON array', async () => {
      assert.equal((await post(t, undefined, { raw: '{"user":' })).status, 400);
      const array = await post(t, [{ user: 'u' }]);
      assert.equal(array.status, 400);
      assert.deepEqual(array.json.message, ['the body must be a JSON object']);
    });

    it('413 for a 5 KB body', async () => {
      const r = await post(t, { user: 'u', pad: 'x'.repeat(5 * 1024) });
      assert.equal(r.status, 413);
      assert.equal(r.json.statusCode, 413);
    });

    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      it(`415 for Content-Type ${type}`, async () => {
        const r = await post(t, undefined, { raw: 'user=u', headers: { 'content-type': type } });
        assert.equal(r.status, 415, r.text);
        assert.equal(r.json.message, 'Content-Type must be application/json');
      });
    }

    it('GET /healthcheck still answers 200 with an empty body', async () => {
      const res = await within(fetch(`http://127.0.0.1:${t.port}/healthcheck`), 'healthcheck');
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '');
    });
  });

  describe('OpenAPI', () => {
    it('serves the description at /docs-json with the bearer scheme and examples', async () => {
      const res = await within(fetch(`http://127.0.0.1:${t.port}/docs-json`), 'docs-json');
      assert.equal(res.status, 200);
      const doc = (await res.json()) as any;
      assert.deepEqual(doc.components.securitySchemes['api-key'], {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'API key',
        description: "API key (RTCSTATS_API_KEYS or the keyring file's apiKeys)",
      });
      const op = doc.paths['/tokens'].post;
      assert.deepEqual(op.security, [{ 'api-key': [] }]);
      assert.deepEqual(Object.keys(op.responses).sort(), ['201', '400', '401', '403', '413', '415', '429', '503']);
      assert.ok(op.requestBody.content['application/json'].examples.full.value.user);
      assert.deepEqual(Object.keys(doc.components.schemas.CreateTokenDto.properties).sort(), ['conference', 'expiresIn', 'session', 'user']);
      assert.ok(doc.components.schemas.TokenResponseDto.properties.token.example);
    });

    it('serves the UI at /docs', async () => {
      const res = await within(fetch(`http://127.0.0.1:${t.port}/docs`), 'docs');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await res.text(), /swagger-ui/);
      const asset = await within(fetch(`http://127.0.0.1:${t.port}/docs/swagger-ui-bundle.js`), 'swagger asset');
      assert.equal(asset.status, 200);
      await asset.arrayBuffer();
    });
  });
});

describe('POST /tokens without an API key configured', () => {
  it('503 telling the operator how to configure one', async () => {
    const t = await startApp();
    try {
      const r = await post(t);
      assert.equal(r.status, 503);
      assert.match(r.json.message, /RTCSTATS_API_KEYS/);
      assert.match(r.json.message, /apiKeys/);
    } finally {
      await t.close();
    }
  });

  it('refuses a short RTCSTATS_API_KEYS at boot, naming the variable and not the key', async () => {
    await assert.rejects(startApp({ RTCSTATS_API_KEYS: `${API_KEY},short-key-value` }), (err: Error) => {
      assert.equal(err.name, 'ConfigError');
      assert.match(err.message, /^RTCSTATS_API_KEYS: key 2 is 15 bytes, at least 32 are required$/);
      return true;
    });
  });

  it('the first-start generated keyring includes an API key that works', async () => {
    const t = await startApp({ RTCSTATS_JWT_SECRET: '' });
    try {
      const spec = JSON.parse(fs.readFileSync(path.join(t.dataDir, 'keyring.json'), 'utf8')) as KeyringFileSpec;
      const body = await mint(t, { user: 'first' }, spec.apiKeys![0].key);
      assert.equal(body.kid, spec.keys[0].kid);
      assert.equal(body.url, undefined, 'no url without RTCSTATS_PUBLIC_URL');
    } finally {
      await t.close();
    }
  });
});

describe('issuer and audience', () => {
  it('adds iss and aud when configured, and the token still connects', async () => {
    const t = await startApp({ ...BASE_ENV, RTCSTATS_JWT_ISSUER: 'https://app.example.com', RTCSTATS_JWT_AUDIENCE: 'rtcstats' });
    try {
      const body = await mint(t, { user: 'u-iss' });
      const { payload } = decode(body.token);
      assert.deepEqual(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'iss', 'rtcStats']);
      assert.equal(payload.iss, 'https://app.example.com');
      assert.equal(payload.aud, 'rtcstats');
      const ws = await connect(t.url(`/iss${tokenQuery(body.token)}`));
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
      assert.equal((await waitForRecords(t, 1, { user: 'u-iss' }))[0].user, 'u-iss');
    } finally {
      await t.close();
    }
  });
});

describe('rate limits', () => {
  it('per API key: 429 with Retry-After at the limit, other keys unaffected, recovers after the window', async () => {
    const clock = new TestClock();
    const t = await startApp({ ...BASE_ENV, RTCSTATS_TOKENS_RATE_LIMIT: '3', RTCSTATS_RATE_LIMIT_WINDOW: '60' }, { clock });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await post(t)).status, 201);
      const limited = await post(t);
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '60');
      assert.equal((await post(t, {}, { apiKey: API_KEY_2 })).status, 201, 'the limit is per key');
      clock.advance(59_999);
      assert.equal((await post(t)).status, 429, 'still limited just before the window ends');
      clock.advance(1);
      assert.equal((await post(t)).status, 201, 'recovered after the window');
    } finally {
      await t.close();
    }
  });

  it('failed authentication per IP: 429 with Retry-After, even with the right key, then recovers', async () => {
    const clock = new TestClock();
    const t = await startApp({ ...BASE_ENV, RTCSTATS_AUTH_FAILURE_LIMIT: '3', RTCSTATS_RATE_LIMIT_WINDOW: '60' }, { clock });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await post(t)).status, 201, 'successes do not count');
      for (let i = 0; i < 3; i++) assert.equal((await post(t, {}, { apiKey: `wrong-${i}` })).status, 401);
      const limited = await post(t, {}, { apiKey: 'wrong-3' });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '60');
      clock.advance(20_000);
      const blocked = await post(t);
      assert.equal(blocked.status, 429, 'the right key does not get through a block');
      assert.equal(blocked.headers.get('retry-after'), '40');
      clock.advance(40_000);
      assert.equal((await post(t)).status, 201, 'recovered after the window');
      assert.equal((await post(t, {}, { apiKey: 'wrong-again' })).status, 401, 'the failure count starts over');
    } finally {
      await t.close();
    }
  });
});

describe('one blocking state for every API-key route', () => {
  it('a client blocked for failed keys on GET /admin/keys is blocked on POST /tokens too, and the reverse', async () => {
    for (const [failOn, thenTry] of [['/admin/keys', '/tokens'], ['/tokens', '/admin/keys']] as const) {
      const t = await startApp({ ...BASE_ENV, RTCSTATS_AUTH_FAILURE_LIMIT: '3', RTCSTATS_RATE_LIMIT_WINDOW: '60' });
      try {
        const request = (route: string, apiKey: string) =>
          within(
            fetch(`http://127.0.0.1:${t.port}${route}`, {
              method: route === '/tokens' ? 'POST' : 'GET',
              headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
              ...(route === '/tokens' && { body: '{}' }),
            }),
            route,
          );
        for (let i = 0; i < 3; i++) assert.equal((await request(failOn, `wrong-${i}`)).status, 401);
        assert.equal((await request(failOn, 'wrong-3')).status, 429, `blocked on ${failOn}`);
        const other = await request(thenTry, API_KEY);
        assert.equal(other.status, 429, `${thenTry} after a block earned on ${failOn}`);
        assert.ok(Number(other.headers.get('retry-after')) >= 1, 'with Retry-After');
        // Every route's guard asks the same authenticator (Nest builds a guard per module).
        assert.equal(t.app.select(TokensModule).get(ApiKeyAuthenticator), t.app.select(KeysModule).get(ApiKeyAuthenticator));
      } finally {
        await t.close();
      }
    }
  });
});

describe('client address behind a load balancer', () => {
  it('counts failed authentication per client from X-Forwarded-For only when the peer is a trusted proxy', async () => {
    const limits = { ...BASE_ENV, RTCSTATS_AUTH_FAILURE_LIMIT: '2', RTCSTATS_RATE_LIMIT_WINDOW: '60' };
    const fail = (t: TestApp, client: string) => post(t, {}, { apiKey: 'wrong', headers: { 'x-forwarded-for': client } });
    const trusted = await startApp({ ...limits, RTCSTATS_TRUSTED_PROXIES: '127.0.0.1' });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await fail(trusted, '198.51.100.1')).status, 401);
      assert.equal((await fail(trusted, '198.51.100.1')).status, 429, 'that client is blocked');
      assert.equal((await fail(trusted, '198.51.100.2')).status, 401, 'another client behind the same proxy is not');
    } finally {
      await trusted.close();
    }
    const untrusted = await startApp(limits);
    try {
      for (let i = 0; i < 2; i++) assert.equal((await fail(untrusted, `198.51.100.${i}`)).status, 401);
      assert.equal((await fail(untrusted, '198.51.100.9')).status, 429, 'a forged X-Forwarded-For does not escape the limit');
    } finally {
      await untrusted.close();
    }
  });
});

describe('rotation of a running instance (keyring file reloaded live)', () => {
  it('after promotion new tokens carry the new kid; tokens signed with the old current key still connect', async () => {
    const file = path.join(tempDir(), 'keyring.json');
    const [a, b] = [generateSecret(), generateSecret()];
    const apiKeys = [{ id: 'backend', key: API_KEY }];
    writeKeyring(file, { keys: [{ kid: 'A', secret: a, state: 'current' }, { kid: 'B', secret: b, state: 'next' }], apiKeys });
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_AUTH_FAILURE_LIMIT: '1000' });
    try {
      const body = await mint(t, { user: 'u-old', session: 's-old' });
      assert.equal(body.kid, 'A');
      assert.equal(decode(body.token).header.kid, 'A');

      writeKeyring(file, { keys: [{ kid: 'A', secret: a, state: 'previous' }, { kid: 'B', secret: b, state: 'current' }], apiKeys });
      await keyringLanded(t, 'A(previous), B(current)');
      const fresh = await mint(t, { user: 'u-new', session: 's-new' });
      assert.equal(fresh.kid, 'B');
      assert.equal(decode(fresh.token).header.kid, 'B');
      for (const [token, session] of [[body.token, 's-old'], [fresh.token, 's-new']]) {
        const ws = await connect(t.url(`/promoted${tokenQuery(token)}`));
        assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
        await waitForRecords(t, 1, { session });
      }
      const [oldRecord] = await t.metadata.find({ session: 's-old' }, 10);
      assert.equal(oldRecord.kid, 'A');
    } finally {
      await t.close();
    }
  });

  it('an API key removed from the keyring file is refused (401) as soon as the reload lands', async () => {
    const file = path.join(tempDir(), 'keyring.json');
    const keys = [{ kid: 'A', secret: generateSecret(), state: 'current' as const }];
    writeKeyring(file, { keys, apiKeys: [{ id: 'old', key: API_KEY }, { id: 'new', key: API_KEY_2 }] });
    const t = await startApp({ RTCSTATS_KEYRING_FILE: file, RTCSTATS_AUTH_FAILURE_LIMIT: '1000' });
    try {
      await mint(t, {}, API_KEY);
      writeKeyring(file, { keys: [{ ...keys[0] }], apiKeys: [{ id: 'new', key: API_KEY_2 }] });
      await waitFor(() => (t.app.get(KeyringService).get()?.apiKeys.length === 1 ? true : undefined), 'API key removal');
      const refused = await post(t, {}, { apiKey: API_KEY });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="rtcstats"');
      await mint(t, {}, API_KEY_2);
    } finally {
      await t.close();
    }
  });
});

/** process.env without this project's settings, so a developer's shell or .env cannot leak in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RTCSTATS_')));
  return { ...env, ...extra };
}

function run(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, script), ...args], { cwd: tempDir(), env: cleanEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return within(new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))), `${script} to exit`).finally(() =>
    child.kill('SIGKILL'),
  );
}

describe('token CLI (compiled, as a child process)', () => {
  const CLI = 'dist/src/cli/token.cli.js';

  it('prints a URL whose token connects to an app with the same secret; claims are recorded', async () => {
    const t = await startApp();
    try {
      const base = t.url('/cli');
      const args = ['--user', 'u-cli', '--session', 's-cli', '--conference', 'c-cli', '--lifetime', '600', '--url', base];
      const { code, stdout, stderr } = await run(CLI, args, { RTCSTATS_JWT_SECRET: TEST_SECRET, RTCSTATS_DATA_DIR: tempDir() });
      assert.equal(code, 0, stderr);
      const url = stdout.trim();
      assert.ok(url.startsWith(`${base}?rtcstats-token=`), url);
      const token = new URL(url).searchParams.get('rtcstats-token')!;
      const { header, payload } = decode(token);
      assert.equal(header.kid, CURRENT_KID);
      assert.equal((payload.exp as number) - (payload.iat as number), 600);
      const ws = await connect(url);
      assert.equal((await sendAndClose(ws, ['[1,null,null,0]'])).code, 1000);
      const [record] = await waitForRecords(t, 1, { session: 's-cli' });
      assert.equal(record.user, 'u-cli');
      assert.equal(record.conference, 'c-cli');
    } finally {
      await t.close();
    }
  });

  it('exits 1 with a clear message when no current key exists', async () => {
    const { code, stdout, stderr } = await run(CLI, ['--user', 'u'], { RTCSTATS_DATA_DIR: tempDir() });
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /^token: no current signing key: set RTCSTATS_JWT_SECRET or RTCSTATS_KEYRING_FILE/);
  });
});

describe('first start (compiled main.js)', () => {
  /** Starts the server and resolves with its stdout once it listens; the caller stops it. */
  async function startMain(dataDir: string): Promise<{ child: ChildProcess; output: () => string }> {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/src/main.js')], {
      cwd: dataDir,
      env: cleanEnv({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_PORT: '0', RTCSTATS_HOST: '127.0.0.1' }),
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    try {
      await waitFor(() => (out.includes('Clients connect to') ? true : undefined), 'the server to start');
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return { child, output: () => out };
  }

  async function stop(child: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await within(exited, 'the server to stop');
  }

  it('stdout not a terminal (a log pipeline): never prints the key, names the file and the command that shows it', async () => {
    const dataDir = tempDir();
    const first = await startMain(dataDir);
    let out: string;
    try {
      out = await waitFor(() => (first.output().includes('api-show') ? first.output() : undefined), 'the API key notice');
    } finally {
      await stop(first.child);
    }
    out = first.output();
    const file = path.join(dataDir, 'keyring.json');
    const key = (JSON.parse(fs.readFileSync(file, 'utf8')) as KeyringFileSpec).apiKeys![0].key;
    assert.ok(!out.includes(key), 'the key is not in the output');
    const command = `npm run keys -- api-show default --file ${file}`;
    // Logs are JSON lines: the notice is the message of one of them.
    const messages = out.split('\n').flatMap((l) => {
      try {
        return [(JSON.parse(l) as { msg?: string }).msg];
      } catch {
        return [];
      }
    });
    assert.ok(messages.includes(`API key "default" (tokens, admin) generated into ${file}; show it with: ${command}`), out);
    // The command it names prints the key.
    const shown = await run('dist/src/cli/keys.cli.js', ['api-show', 'default', '--file', file], {});
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, `${key}\n`);
  });

  it('stdout a terminal: prints the key once, saying where it is stored', async () => {
    const dataDir = tempDir();
    const main = path.join(REPO_ROOT, 'dist/src/main.js');
    // script(1) gives the server a pseudo-terminal as stdout.
    const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(main)}`, '/dev/null'], {
      cwd: dataDir,
      env: cleanEnv({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_PORT: '0', RTCSTATS_HOST: '127.0.0.1' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => (out.includes('will not be shown again') ? true : undefined), 'the API key line on the terminal');
    } finally {
      // The server is script's child in its own session: stop it by its pid.
      const children = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const pid of children) process.kill(Number(pid), 'SIGTERM');
      await within(exited, 'script and the server to stop');
    }
    const file = path.join(dataDir, 'keyring.json');
    const key = (JSON.parse(fs.readFileSync(file, 'utf8')) as KeyringFileSpec).apiKeys![0].key;
    assert.equal(out.split(key).length - 1, 1, 'the key appears exactly once');
    assert.match(out, new RegExp(`API key "default" \\(tokens, admin\\): ${key}\\r?\\n`));
    assert.ok(out.includes(`It will not be shown again; it is stored in ${file}`));
  });

  it('the next start does not mention the key', async () => {
    const dataDir = tempDir();
    const first = await startMain(dataDir);
    await stop(first.child);
    const key = (JSON.parse(fs.readFileSync(path.join(dataDir, 'keyring.json'), 'utf8')) as KeyringFileSpec).apiKeys![0].key;
    const second = await startMain(dataDir);
    // Checked after exit, when everything the process wrote has been read.
    await stop(second.child);
    assert.ok(!second.output().includes(key), 'not shown on the next start');
    assert.ok(!second.output().includes('api-show'), 'no notice on the next start');
  });
});
