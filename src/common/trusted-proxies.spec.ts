import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseConfig } from '../config/app-config.js';
import { TrustedProxies } from './trusted-proxies.js';

describe('TrustedProxies', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);

  it('matches addresses and ranges of both families, and IPv4-mapped peers', () => {
    assert.equal(proxies.isTrusted('10.20.30.40'), true);
    assert.equal(proxies.isTrusted('::ffff:10.1.1.1'), true);
    assert.equal(proxies.isTrusted('192.0.2.1'), true);
    assert.equal(proxies.isTrusted('192.0.2.2'), false);
    assert.equal(proxies.isTrusted('2001:db8:1::5'), true);
    assert.equal(proxies.isTrusted('2001:db9::5'), false);
    assert.equal(proxies.isTrusted('unknown'), false);
  });

  it('takes the rightmost untrusted hop, and only from a trusted peer', () => {
    assert.equal(proxies.clientAddress('10.0.0.1', '198.51.100.1, 203.0.113.5, 10.0.0.2'), '203.0.113.5');
    assert.equal(proxies.clientAddress('10.0.0.1', ['198.51.100.1', '10.0.0.2']), '198.51.100.1');
    assert.equal(proxies.clientAddress('10.0.0.1', '10.0.0.3, 10.0.0.2'), '10.0.0.3');
    assert.equal(proxies.clientAddress('10.0.0.1', ' , '), '10.0.0.1');
    assert.equal(proxies.clientAddress('198.51.100.9', '203.0.113.5'), '198.51.100.9');
    assert.equal(proxies.clientAddress('::ffff:198.51.100.9', undefined), '198.51.100.9');
    assert.equal(new TrustedProxies([]).clientAddress('10.0.0.1', '203.0.113.5'), '10.0.0.1');
  });

  it('refuses entries that are not addresses or ranges, naming them', () => {
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.0/', '::/129', '1.2.3.4/8/8']) {
      assert.throws(() => new TrustedProxies([bad]), new RegExp(bad.replace(/[./]/g, '\\$&')));
    }
    assert.throws(() => parseConfig((n) => (n === 'RTCSTATS_TRUSTED_PROXIES' ? '10.0.0.1, nope' : undefined)), /^ConfigError: RTCSTATS_TRUSTED_PROXIES: "nope" is not an IP address or CIDR range/);
  });
});
