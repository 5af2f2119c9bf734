import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BadRequestException, ServiceUnavailableException } from '@nestjs/common';
import jwt from 'jsonwebtoken';

import { PerKeyJwt } from '../auth/per-key-jwt.js';
import { TokenVerifier } from '../auth/token-verifier.js';
import { parseConfig } from '../config/app-config.js';
import { buildKeyring, type Keyring } from '../keyring/keyring.js';
import type { KeyringService } from '../keyring/keyring.service.js';
import { TokensService } from './tokens.service.js';

const A = 'secret-a-0123456789-abcdefghijklmnopqrstu';
const B = 'secret-b-0123456789-abcdefghijklmnopqrstu';
const NOW = Date.parse('2026-11-28T12:00:00.400Z');
const NOW_SEC = Math.floor(NOW / 1000);

function setup(env: Record<string, string> = {}) {
  const config = parseConfig((name) => env[name], '/srv');
  let keyring: Keyring | undefined = buildKeyring({ keys: [{ kid: 'A', secret: A, state: 'current' }] }, 'test');
  const keyringService = { get: () => keyring } as KeyringService;
  const service = new TokensService(config, keyringService, () => NOW, new PerKeyJwt());
  return { service, setKeyring: (k: Keyring | undefined) => (keyring = k), keyring: () => keyring, config };
}

describe('TokensService', () => {
  it('computes expiresAt and refreshAfter exactly from the clock', () => {
    const { service } = setup();
    const r = service.create({ user: 'u', expiresIn: 1000 });
    assert.equal(r.expiresIn, 1000);
    assert.equal(r.expiresAt, '2026-11-28T12:16:40.000Z');
    assert.equal(r.refreshAfter, '2026-11-28T12:10:00.000Z');
    const payload = jwt.decode(r.token) as jwt.JwtPayload;
    assert.deepEqual(payload, { rtcStats: { user: 'u' }, iat: NOW_SEC, exp: NOW_SEC + 1000 });
  });

  it('defaults to 6 h, or the maximum lifetime when that is shorter', () => {
    assert.equal(setup().service.create({}).expiresAt, new Date((NOW_SEC + 6 * 3600) * 1000).toISOString());
    assert.equal(setup({ RTCSTATS_JWT_MAX_LIFETIME: '1h' }).service.create({}).expiresIn, 3600);
  });

  it('accepts 60 s up to the configured maximum, as seconds or a duration string', () => {
    const { service } = setup({ RTCSTATS_JWT_MAX_LIFETIME: '2h' });
    assert.equal(service.create({ expiresIn: 60 }).expiresIn, 60);
    assert.equal(service.create({ expiresIn: '2h' }).expiresIn, 7200);
    for (const bad of [59, 7201, '3h', '0']) {
      assert.throws(() => service.create({ expiresIn: bad }), (err: BadRequestException) => {
        assert.ok(err instanceof BadRequestException);
        assert.deepEqual((err.getResponse() as { message: string[] }).message, [
          `expiresIn must be between 60 and 7200 seconds (got ${typeof bad === 'number' ? bad : bad === '3h' ? 10800 : 0})`,
        ]);
        return true;
      });
    }
  });

  it('signs with the current key of the snapshot it reads per request, so a swap applies at once', () => {
    const { service, setKeyring } = setup();
    const first = service.create({});
    assert.equal(first.kid, 'A');
    const promoted = buildKeyring(
      { keys: [{ kid: 'A', secret: A, state: 'previous' }, { kid: 'B', secret: B, state: 'current' }] },
      'test',
    );
    setKeyring(promoted);
    const second = service.create({});
    assert.equal(second.kid, 'B');
    assert.equal(jwt.decode(second.token, { complete: true })!.header.kid, 'B');
    const verifier = new TokenVerifier(() => promoted, { jwt: new PerKeyJwt(), clockToleranceSec: 30, maxLifetimeSec: 86400 }, () => NOW);
    assert.equal(verifier.verify(first.token).ok, true, 'the old token still verifies with the previous key');
    assert.equal(verifier.verify(second.token).ok, true);
  });

  it('returns a ready URL only when RTCSTATS_PUBLIC_URL is set, keeping its path and query', () => {
    assert.equal(setup().service.create({}).url, undefined);
    const r = setup({ RTCSTATS_PUBLIC_URL: 'wss://stats.example.com/rtc?region=eu' }).service.create({});
    assert.equal(r.url, `wss://stats.example.com/rtc?region=eu&rtcstats-token=${r.token}`);
  });

  it('adds iss and aud when configured', () => {
    const r = setup({ RTCSTATS_JWT_ISSUER: 'me', RTCSTATS_JWT_AUDIENCE: 'them' }).service.create({});
    const payload = jwt.decode(r.token) as jwt.JwtPayload;
    assert.equal(payload.iss, 'me');
    assert.equal(payload.aud, 'them');
  });

  it('503 when there is no current signing key', () => {
    const { service, setKeyring } = setup();
    setKeyring(undefined);
    assert.throws(() => service.create({}), ServiceUnavailableException);
  });
});
