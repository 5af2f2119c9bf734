import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';

import { parseConfig } from '../src/config/app-config.js';
import { openPostgresMetadataStore } from '../src/metadata/postgres.js';
import { createTestDatabase, PG_HOST, PG_PORT, pgUnavailable } from './backends.js';
import { REPO_ROOT, removeTempDir, TEST_SECRET, tempDir, within } from './helpers.js';

// The shared PostgreSQL has TLS off (and must stay so): a proxy started here speaks PostgreSQL's
// TLS negotiation to the client and forwards the decrypted stream to the real server.

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]); // length 8, code 80877103
const PASSWORD = 'pg-s3cret-pass-7f3a';

interface Pki {
  dir: string;
  caFile: string;
  otherCaFile: string;
  /** Issued by the CA for localhost and 127.0.0.1. */
  server: { key: string; cert: string };
  /** Issued by the CA for another host name only. */
  wrongHost: { key: string; cert: string };
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway CA, a second unrelated CA, and two server certificates issued by the first. */
function makePki(): Pki {
  const dir = tempDir('rtcstats-pg-tls-');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const ca = (name: string) =>
    openssl(dir, ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  ca('test-ca');
  ca('other-ca');
  const issue = (name: string, san: string) => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'test-ca.crt', '-CAkey', 'test-ca.key',
      '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
    return { key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'), cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8') };
  };
  return {
    dir,
    caFile: path.join(dir, 'test-ca.crt'),
    otherCaFile: path.join(dir, 'other-ca.crt'),
    server: issue('server', 'DNS:localhost,IP:127.0.0.1'),
    wrongHost: issue('wrong-host', 'DNS:db.example.invalid'),
  };
}

/** TLS-terminating PostgreSQL proxy on 127.0.0.1, port 0, counting what clients asked for. */
class PgTlsProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  sslRequests = 0;
  secureConnections = 0;
  plainConnections = 0;

  constructor(private readonly identity: { key: string; cert: string }) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track<S extends net.Socket>(s: S): S {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy()); // a client refusing our certificate resets the connection
    return s;
  }

  private accept(socket: net.Socket): void {
    this.track(socket);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 8) return;
      socket.off('data', onData);
      socket.pause();
      const upstream = this.track(net.connect(PG_PORT, PG_HOST));
      const link = (client: net.Socket) => {
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
      };
      if (head.subarray(0, 8).equals(SSL_REQUEST) && head.length === 8) {
        this.sslRequests++;
        socket.write('S');
        const secure = this.track(new tls.TLSSocket(socket, { isServer: true, ...this.identity }));
        secure.on('secure', () => this.secureConnections++);
        link(secure);
      } else {
        this.plainConnections++;
        upstream.write(head);
        link(socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  }
}

/** The store's whole path over the given settings: migrate, insert, read back. */
async function roundTrip(url: string, env: Record<string, string>): Promise<void> {
  const database = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, ...env })[n]).database;
  const store = await openPostgresMetadataStore({ database, hostIdentifier: 'tls-test' });
  try {
    const id = crypto.randomUUID();
    await store.insert({
      id,
      startTime: 1764316800000,
      endTime: 1764316860000,
      closeCode: 1000,
      frameCount: 3,
      bytes: 300,
      location: `/dumps/${id}.jsonl.gz`,
      user: 'tls-user',
      session: 'tls-session',
      conference: `tls-${id}`,
      kid: null,
      origin: 'https://example.test',
      userAgent: 'UA',
      clientProtocol: 'rtcstats#5.0',
      path: '/',
      remoteAddress: null,
    });
    const found = await store.find({ conference: `tls-${id}` });
    assert.deepEqual(found.map((r) => [r.id, r.user]), [[id, 'tls-user']]);
  } finally {
    await store.close();
  }
}

/** Boots the built collector and expects it to fail; returns everything it printed. */
async function failedBoot(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const dataDir = tempDir();
  try {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/src/main.js')], {
      cwd: dataDir,
      env: { PATH: process.env.PATH ?? '', RTCSTATS_PORT: '0', RTCSTATS_HOST: '127.0.0.1', RTCSTATS_DATA_DIR: dataDir,
        RTCSTATS_JWT_SECRET: TEST_SECRET, RTCSTATS_KEYRING_WATCH: 'false', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const code = await within(exited, 'collector exits after the failed TLS connection', 30_000).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}\n${output}`);
    });
    return { code, output };
  } finally {
    removeTempDir(dataDir);
  }
}

describe('PostgreSQL over TLS (through a TLS-terminating proxy)', { skip: pgUnavailable }, () => {
  let pki: Pki;
  let proxy: PgTlsProxy;
  let wrongHostProxy: PgTlsProxy;
  const drops: (() => Promise<void>)[] = [];

  before(async () => {
    pki = makePki();
    proxy = await new PgTlsProxy(pki.server).start();
    wrongHostProxy = await new PgTlsProxy(pki.wrongHost).start();
  });
  after(async () => {
    await proxy?.stop();
    await wrongHostProxy?.stop();
    for (const d of drops) await d();
    if (pki) removeTempDir(pki.dir);
  });

  /** A fresh database, and its URL through the given proxy (with a password the server ignores). */
  async function databaseVia(p: PgTlsProxy): Promise<string> {
    const db = await createTestDatabase();
    drops.push(db.drop);
    return `postgres://postgres:${PASSWORD}@127.0.0.1:${p.port}/${db.name}`;
  }

  it('require: the connection is encrypted and the store migrates, inserts and reads', async () => {
    const url = await databaseVia(proxy);
    const before = { ...proxy };
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'require' });
    assert.ok(proxy.secureConnections > before.secureConnections, 'TLS handshakes completed');
    assert.equal(proxy.secureConnections - before.secureConnections, proxy.sslRequests - before.sslRequests, 'every connection was TLS');
    assert.equal(proxy.plainConnections, before.plainConnections, 'no plain connection');
  });

  it('require without a CA file does not verify the certificate; with one it checks the issuer (libpq)', async () => {
    // Neither the issuer nor the host name is known: require still connects.
    const url = await databaseVia(wrongHostProxy);
    const before = wrongHostProxy.secureConnections;
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'require' });
    assert.ok(wrongHostProxy.secureConnections > before);
    // With a CA file, libpq's require checks the issuer (as verify-ca), not the host name.
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'require', RTCSTATS_DATABASE_CA_FILE: pki.caFile });
    const other = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, RTCSTATS_DATABASE_SSL_MODE: 'require', RTCSTATS_DATABASE_CA_FILE: pki.otherCaFile })[n]).database;
    await assert.rejects(openPostgresMetadataStore({ database: other, hostIdentifier: null }), /PostgreSQL metadata database: .*TLS certificate was rejected \(check RTCSTATS_DATABASE_CA_FILE/);
  });

  it('verify-full with the issuing CA file connects over TLS', async () => {
    const url = await databaseVia(proxy);
    const before = proxy.secureConnections;
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'verify-full', RTCSTATS_DATABASE_CA_FILE: pki.caFile });
    assert.ok(proxy.secureConnections > before);
  });

  it('verify-full with a different CA fails naming the certificate problem, without the password', async () => {
    const url = await databaseVia(proxy);
    const database = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, RTCSTATS_DATABASE_SSL_MODE: 'verify-full', RTCSTATS_DATABASE_CA_FILE: pki.otherCaFile })[n]).database;
    await assert.rejects(openPostgresMetadataStore({ database, hostIdentifier: null }), (err: Error) => {
      assert.match(err.message, /^PostgreSQL metadata database: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): the server's TLS certificate was rejected \(check RTCSTATS_DATABASE_CA_FILE/);
      assert.ok(!err.message.includes(PASSWORD), err.message);
      return true;
    });
    // The whole collector: it refuses to start, says why, and prints no secret.
    const { code, output } = await failedBoot({
      RTCSTATS_DATABASE_URL: url,
      RTCSTATS_DATABASE_SSL_MODE: 'verify-full',
      RTCSTATS_DATABASE_CA_FILE: pki.otherCaFile,
    });
    assert.notEqual(code, 0, output);
    assert.match(output, /PostgreSQL metadata database: .*TLS certificate was rejected \(check RTCSTATS_DATABASE_CA_FILE/);
    assert.ok(!output.includes(PASSWORD), output);
  });

  it('verify-ca checks the issuer but not the host name', async () => {
    // Issued by the CA, for another host: verify-ca accepts it.
    const url = await databaseVia(wrongHostProxy);
    const before = wrongHostProxy.secureConnections;
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'verify-ca', RTCSTATS_DATABASE_CA_FILE: pki.caFile });
    assert.ok(wrongHostProxy.secureConnections > before);
    // A different CA: verify-ca refuses.
    const other = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, RTCSTATS_DATABASE_SSL_MODE: 'verify-ca', RTCSTATS_DATABASE_CA_FILE: pki.otherCaFile })[n]).database;
    await assert.rejects(openPostgresMetadataStore({ database: other, hostIdentifier: null }), /PostgreSQL metadata database: .*TLS certificate was rejected \(check RTCSTATS_DATABASE_CA_FILE/);
  });

  it('verify-full refuses a certificate for another host name, naming the mismatch', async () => {
    const url = await databaseVia(wrongHostProxy);
    const database = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, RTCSTATS_DATABASE_SSL_MODE: 'verify-full', RTCSTATS_DATABASE_CA_FILE: pki.caFile })[n]).database;
    await assert.rejects(openPostgresMetadataStore({ database, hostIdentifier: null }), (err: Error) => {
      assert.match(err.message, /^PostgreSQL metadata database: .*altnames.*\(ERR_TLS_CERT_ALTNAME_INVALID\): the server's TLS certificate is not for the host in RTCSTATS_DATABASE_URL/);
      assert.ok(!err.message.includes(PASSWORD), err.message);
      return true;
    });    // A CA file without a mode means verify-full.
    const caOnly = parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, RTCSTATS_DATABASE_CA_FILE: pki.caFile })[n]).database;
    await assert.rejects(openPostgresMetadataStore({ database: caOnly, hostIdentifier: null }), /PostgreSQL metadata database: .*altnames/i);
  });

  it('disable never asks for TLS', async () => {
    const url = await databaseVia(proxy);
    const before = { ...proxy };
    await roundTrip(url, { RTCSTATS_DATABASE_SSL_MODE: 'disable' });
    assert.ok(proxy.plainConnections > before.plainConnections, 'connected in plain text');
    assert.equal(proxy.sslRequests, before.sslRequests, 'no SSLRequest was sent');
    assert.equal(proxy.secureConnections, before.secureConnections);
  });
});
