import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import zlib from 'node:zlib';

import { ANALYSIS_FORWARDER } from '../src/analysis/analysis.module.js';
import { AnalysisForwarder } from '../src/analysis/analysis-forwarder.js';
import { parseConfig } from '../src/config/app-config.js';
import { openMetadataStore } from '../src/metadata/metadata.module.js';
import type { DumpRecord, MetadataStore } from '../src/metadata/metadata.store.js';
import { BACKENDS, type BackendInstance } from './backends.js';
import { connect, sendAndClose, sign, startApp, tempDir, type TestApp, tokenQuery, waitFor, waitForRecords } from './helpers.js';

const TOKEN = 'analysis-token-0123456789abcdef';
const MiB = 1024 * 1024;

interface ChunkRequest {
  authorization: string | undefined;
  chunk: Buffer;
  fileId: string;
  chunkIndex: number;
  totalChunks: number;
  fileName: string;
}

/** A local stand-in for the rtcstats.com upload endpoint (the reference's wire protocol). */
class FakeAnalysisService {
  readonly chunks: ChunkRequest[] = [];
  readonly assembles: { authorization: string | undefined; body: Record<string, unknown> }[] = [];
  /** 'ok', or the HTTP status every request gets. */
  mode: 'ok' | number = 'ok';
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/upload`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  get requests(): number {
    return this.chunks.length + this.assembles.length;
  }

  /** The uploaded bytes of one fileId, chunks in index order. */
  assembled(fileId: string): Buffer {
    const parts = this.chunks.filter((c) => c.fileId === fileId).sort((a, b) => a.chunkIndex - b.chunkIndex);
    return Buffer.concat(parts.map((p) => p.chunk));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body: Buffer[] = [];
    for await (const part of req) body.push(part as Buffer);
    const raw = Buffer.concat(body);
    const authorization = req.headers.authorization;
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
      const chunk = form.get('chunk') as Blob;
      this.chunks.push({
        authorization,
        chunk: Buffer.from(await chunk.arrayBuffer()),
        fileId: String(form.get('fileId')),
        chunkIndex: Number(form.get('chunkIndex')),
        totalChunks: Number(form.get('totalChunks')),
        fileName: String(form.get('fileName')),
      });
    } else {
      this.assembles.push({ authorization, body: JSON.parse(raw.toString()) });
    }
    if (this.mode !== 'ok') {
      // A careless service echoing the credentials: they must not reach our logs.
      res.writeHead(this.mode, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `rejected ${authorization}` }));
      return;
    }
    if (type.startsWith('multipart/form-data')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    const fileName = String(this.assembles.at(-1)!.body.fileName);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        embedUrl: `https://analysis.example/embed/${fileName}`,
        rtcstatsId: `rs-${fileName}`,
        data: {
          analysisVersion: '9',
          experienceScore: 3.5,
          observations: [{ type: 'highRtt', severity: 'warning', category: 'network', firstSeenAt: 1.5, source: { pid: 'pc1' } }],
        },
      }),
    );
  }
}

function dumpFrames(totalBytes: number): string[] {
  const frames: string[] = [];
  // Incompressible-ish payloads, so the dump really is this big on the wire.
  for (let size = 0; size < totalBytes; ) {
    const frame = JSON.stringify(['getStats', 'pc1', { blob: crypto.randomBytes(48 * 1024).toString('base64') }, size]);
    frames.push(frame);
    size += frame.length + 1;
  }
  return frames;
}

for (const backend of BACKENDS) {
  describe(`analysis forwarding, collector on ${backend.name}`, { skip: backend.skip }, () => {
    const service = new FakeAnalysisService();
    let inst: BackendInstance;
    let apps: TestApp[] = [];
    before(async () => {
      await service.start();
      inst = await backend.setup();
    });
    afterEach(async () => {
      for (const a of apps) {
        await a.close();
        fs.rmSync(a.dataDir, { recursive: true, force: true });
      }
      apps = [];
    });
    after(async () => {
      await service.stop();
      await inst?.cleanup();
    });

    async function app(env: Record<string, string>): Promise<TestApp> {
      const t = await startApp({ ...inst.env, RTCSTATS_ANALYSIS_URL: service.url, RTCSTATS_ANALYSIS_TOKEN: TOKEN, ...env });
      apps.push(t);
      return t;
    }

    async function record(t: TestApp, session: string, frames: string[]) {
      const ws = await connect(t.url(`/a${tokenQuery(sign({ rtcStats: { session } }))}`), 'rtcstats#5.0', { origin: 'https://o.example' });
      assert.equal((await sendAndClose(ws, frames, 1000)).code, 1000);
      const [r] = await waitForRecords(t, 1, { session });
      return r;
    }

    it('sends a dump over 2 MiB in 1 MiB chunks, then assembles; the answer lands in the tables', async () => {
      const t = await app({});
      const r = await record(t, 'big', dumpFrames(2.5 * MiB));
      const stored = zlib.gunzipSync(await inst.readStored(r.location));
      assert.ok(stored.length > 2 * MiB);
      const got = await waitFor(async () => (await t.metadata.get(r.id))?.embedUrl ?? undefined, 'embed url');
      assert.equal(got, `https://analysis.example/embed/${r.id}`);

      const chunks = service.chunks.filter((c) => c.fileName === r.id);
      assert.equal(chunks.length, Math.ceil(stored.length / MiB));
      assert.ok(chunks.length >= 3);
      assert.ok(chunks.every((c) => c.totalChunks === chunks.length && c.fileId === chunks[0].fileId));
      assert.ok(chunks.every((c) => c.authorization === `Bearer ${TOKEN}`));
      assert.ok(chunks.slice(0, -1).every((c) => c.chunk.length === MiB));
      assert.ok(service.assembled(chunks[0].fileId).equals(stored), 'exactly the stored (obfuscated) dump, nothing more');
      const [assemble] = service.assembles.filter((a) => a.body.fileName === r.id);
      assert.deepEqual(assemble.body, { fileId: chunks[0].fileId, assemble: true, fileName: r.id });
      assert.equal(assemble.authorization, `Bearer ${TOKEN}`);

      const [analysis] = await inst.query<Record<string, unknown>>(t.dataDir, 'select * from rtcstats_analysis where dump_id = $1', [r.rowId]);
      assert.equal(analysis.rtcstats_id, `rs-${r.id}`);
      assert.equal(Number(analysis.experience_score), 3.5);
      const observations = await inst.query<Record<string, unknown>>(t.dataDir, 'select * from rtcstats_observations where analysis_id = $1', [
        analysis.id,
      ]);
      assert.deepEqual(observations.map((o) => [o.pid, o.type]), [['pc1', 'highRtt']]);
      await waitFor(() => (fs.readdirSync(path.join(t.dataDir, 'analysis')).length === 0 ? true : undefined), 'spool emptied');
    });

    it('RTCSTATS_ANALYSIS_SAMPLE=0 forwards nothing', async () => {
      const t = await app({ RTCSTATS_ANALYSIS_SAMPLE: '0' });
      const before = service.requests;
      const r = await record(t, 'unsampled', ['["getStats","pc1",{},1]']);
      // The decision is taken after the record is written and before the live file is removed.
      await waitFor(() => (fs.existsSync(path.join(t.dataDir, 'work', `${r.id}.jsonl`)) ? undefined : true), 'live file removed');
      await t.app.get<AnalysisForwarder>(ANALYSIS_FORWARDER).idle();
      assert.equal(service.requests, before);
      assert.equal((await t.metadata.get(r.id))!.embedUrl, null);
    });

    it('a failing service never affects the stored dump or other sessions', async () => {
      service.mode = 500;
      try {
        const t = await app({});
        const first = await record(t, 'isolated-1', ['["getStats","pc1",{},1]']);
        await waitFor(() => (service.chunks.some((c) => c.fileName === first.id) ? true : undefined), 'a forwarding attempt');
        const second = await record(t, 'isolated-2', ['["getStats","pc1",{},2]']);
        for (const r of [first, second]) {
          assert.equal(zlib.gunzipSync(await inst.readStored(r.location)).toString().split('\n')[0], 'RTCStatsDump');
          assert.equal((await t.metadata.get(r.id))!.embedUrl, null);
        }
        await waitFor(() => (fs.readdirSync(path.join(t.dataDir, 'work')).length === 0 ? true : undefined), 'live files removed');
        assert.deepEqual(fs.readdirSync(path.join(t.dataDir, 'outbox')), []);
        assert.ok(!t.logs.join('\n').includes(TOKEN), 'the token never reaches a log line');
      } finally {
        service.mode = 'ok';
      }
    });
  });
}

describe('AnalysisForwarder (real HTTP against the fake service, real SQLite store)', () => {
  const service = new FakeAnalysisService();
  let dataDir: string;
  let metadata: MetadataStore;
  const forwarders: AnalysisForwarder[] = [];
  before(async () => {
    await service.start();
    dataDir = tempDir();
    metadata = await openMetadataStore(parseConfig((n) => ({ RTCSTATS_DATA_DIR: dataDir })[n]));
  });
  after(async () => {
    for (const f of forwarders) await f.close();
    await metadata.close();
    await service.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function forwarder(options: Partial<ConstructorParameters<typeof AnalysisForwarder>[0]> = {}) {
    const lines: string[] = [];
    const log = (level: string) => (m: string) => lines.push(`${level} ${m}`);
    const f = new AnalysisForwarder(
      { url: service.url, token: TOKEN, sample: 1, spoolDir: path.join(dataDir, `spool-${forwarders.length}`), backoffMs: 5, ...options },
      metadata,
      { log: log('log'), warn: log('warn'), error: log('error') },
    );
    forwarders.push(f);
    return { f, lines };
  }

  async function storedDump(content = 'RTCStatsDump\n{}\n'): Promise<{ id: string; file: string }> {
    const id = crypto.randomUUID();
    const file = path.join(dataDir, `${id}.jsonl`);
    fs.writeFileSync(file, content);
    const r: DumpRecord = {
      id, startTime: 1, endTime: 2, closeCode: 1000, frameCount: 1, bytes: 1, location: file, user: null, session: null,
      conference: null, kid: null, origin: null, userAgent: null, clientProtocol: null, path: '/', remoteAddress: null,
    };
    await metadata.insert(r);
    return { id, file };
  }

  it('samples with RTCSTATS_ANALYSIS_SAMPLE: a draw below the fraction is forwarded, one at or above is not', async () => {
    const draws = [0.29, 0.3, 0.9];
    const { f } = forwarder({ sample: 0.3, random: () => draws.shift()! });
    const dumps = [await storedDump(), await storedDump(), await storedDump()];
    for (const d of dumps) await f.submit(d.id, d.file);
    await f.idle();
    assert.deepEqual(
      service.assembles.filter((a) => dumps.some((d) => d.id === a.body.fileName)).map((a) => a.body.fileName),
      [dumps[0].id],
    );
  });

  it('retries a failing service a bounded number of times, then gives up; the dump file is untouched', async () => {
    service.mode = 503;
    try {
      const { f, lines } = forwarder({ attempts: 3 });
      const d = await storedDump('RTCStatsDump\n{"x":1}\n');
      const before = service.chunks.length;
      await f.submit(d.id, d.file);
      await f.idle();
      assert.equal(service.chunks.length - before, 3, 'three attempts of the single chunk');
      assert.match(lines.at(-1)!, /^error Dump .* failed after 3 attempt\(s\), giving up \(chunk 1\/1 refused: HTTP 503: rejected Bearer \[token\]\)/);
      assert.ok(!lines.join('\n').includes(TOKEN));
      assert.equal(fs.readFileSync(d.file, 'utf8'), 'RTCStatsDump\n{"x":1}\n');
      assert.equal((await metadata.get(d.id))!.embedUrl, null);
    } finally {
      service.mode = 'ok';
    }
  });

  it('does not retry what cannot succeed (401)', async () => {
    service.mode = 401;
    try {
      const { f, lines } = forwarder({ attempts: 5 });
      const d = await storedDump();
      const before = service.chunks.length;
      await f.submit(d.id, d.file);
      await f.idle();
      assert.equal(service.chunks.length - before, 1);
      assert.match(lines.at(-1)!, /after 1 attempt\(s\)/);
    } finally {
      service.mode = 'ok';
    }
  });

  it('an unreachable service is retried, then given up, without throwing to the caller', async () => {
    const { f, lines } = forwarder({ url: 'http://127.0.0.1:1/upload', attempts: 2 });
    const d = await storedDump();
    await f.submit(d.id, d.file);
    await f.idle();
    assert.match(lines.join('\n'), /attempt 1\/2: request failed .*retrying/);
    assert.match(lines.at(-1)!, /failed after 2 attempt\(s\), giving up/);
  });

  it('keeps its own copy, so the caller may delete the live file right after submit', async () => {
    const { f } = forwarder();
    const d = await storedDump('RTCStatsDump\n{"kept":true}\n');
    await f.submit(d.id, d.file);
    fs.rmSync(d.file);
    await f.idle();
    const [assemble] = service.assembles.filter((a) => a.body.fileName === d.id);
    assert.ok(service.assembled(assemble.body.fileId as string).equals(Buffer.from('RTCStatsDump\n{"kept":true}\n')));
    assert.equal((await metadata.get(d.id))!.embedUrl, `https://analysis.example/embed/${d.id}`);
  });
});
