import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { describePgError, tlsOptions } from './postgres.js';

const db = (sslMode: 'disable' | 'require' | 'verify-ca' | 'verify-full' | undefined, ca?: string) => ({
  url: 'postgres://db/x',
  sslMode,
  ca,
  poolSize: 1,
  table: 't',
});

describe('tlsOptions (RTCSTATS_DATABASE_SSL_MODE, libpq meanings)', () => {
  it('leaves TLS to the URL when unset, and turns it off for disable', () => {
    assert.equal(tlsOptions(db(undefined)), undefined);
    assert.equal(tlsOptions(db('disable')), false);
  });

  it('require encrypts without verifying, unless a CA is given (then it verifies the chain)', () => {
    assert.deepEqual(tlsOptions(db('require')), { rejectUnauthorized: false });
    const withCa = tlsOptions(db('require', 'PEM')) as { ca: string; rejectUnauthorized?: boolean; checkServerIdentity: () => unknown };
    assert.equal(withCa.ca, 'PEM');
    assert.notEqual(withCa.rejectUnauthorized, false);
    assert.equal(withCa.checkServerIdentity(), undefined);
  });

  it('verify-ca checks the chain but not the host name; verify-full checks both', () => {
    const ca = tlsOptions(db('verify-ca', 'PEM')) as { ca: string; checkServerIdentity: () => unknown; rejectUnauthorized?: boolean };
    assert.equal(ca.ca, 'PEM');
    assert.notEqual(ca.rejectUnauthorized, false);
    assert.equal(ca.checkServerIdentity(), undefined);
    assert.deepEqual(tlsOptions(db('verify-full', 'PEM')), { ca: 'PEM' });
  });
});

describe('describePgError', () => {
  it('names the setting to check when the server certificate is rejected', () => {
    const untrusted = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    assert.match(describePgError(untrusted), /^unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): .*TLS certificate was rejected .*RTCSTATS_DATABASE_CA_FILE/);
    const wrongHost = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    assert.match(describePgError(wrongHost), /not for the host in RTCSTATS_DATABASE_URL/);
    assert.equal(describePgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'connect ECONNREFUSED (ECONNREFUSED)');
  });
});
