import crypto from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { Inject, Injectable, Logger } from '@nestjs/common';
import busboy from 'busboy';

import { ConnectionAuthenticator } from '../auth/connection-authenticator.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import type { DumpDraft } from '../finalization/dump-file.js';
import { FinalizationService } from '../finalization/finalization.service.js';
import { TrustedProxies } from '../common/trusted-proxies.js';
import { obfuscateTokenInUrl } from '../ingestion/connection-info.js';
import { DrainState } from '../lifecycle/drain-state.js';
import { obfuscateFrame } from '../obfuscation/frame-obfuscator.js';
import { obfuscateAddress } from '../obfuscation/ip-address.js';
import { type UploadedDump, UploadDumpWriter, UploadRejected } from './upload-dump-writer.js';

interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

const fail = (status: number, error: string): Outcome => ({ status, body: { error } });
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 1024) : undefined);

/**
 * POST <RTCSTATS_UPLOAD_PATH>?rtcstats-token=<JWT>, multipart/form-data: the first file part is a
 * complete dump. Streamed (busboy) into the outbox through the WebSocket path's obfuscation, then
 * stored and recorded by the finalization queue; answered 200 only after both are done.
 */
@Injectable()
export class UploadHandler {
  private readonly logger = new Logger('Upload');
  private readonly proxies: TrustedProxies;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: ConnectionAuthenticator,
    private readonly finalization: FinalizationService,
    private readonly drain: DrainState,
  ) {
    this.proxies = new TrustedProxies(config.trustedProxies);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.process(req)
      .catch((err: unknown) => {
        this.logger.error(`Upload failed: ${err instanceof Error ? err.message : String(err)}`);
        return fail(500, 'the dump could not be stored');
      })
      .then(({ status, body }) => {
        if (res.headersSent) return;
        res.writeHead(status, { 'Content-Type': 'application/json', Connection: 'close' }).end(JSON.stringify(body));
        // Whatever the client still sends after an early answer is read and dropped.
        req.resume();
      });
  }

  private async process(req: IncomingMessage): Promise<Outcome> {
    if (this.drain.draining) return fail(503, 'server shutting down');
    const decision = this.auth.authenticate(req);
    if (!decision.ok) return fail(403, decision.reason);
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fileSize: this.config.maxUploadBytes, fields: 20, fieldSize: 64 * 1024, parts: 40 },
      });
    } catch {
      return fail(400, 'expected multipart/form-data with a boundary');
    }
    const id = crypto.randomUUID();
    const claims = decision.claims;
    const client = this.proxies.clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    const obfuscate = this.config.obfuscateIps;
    const mask = (a: string) => (obfuscate ? obfuscateAddress(a) : a);
    const header = (meta: Record<string, unknown>): Record<string, unknown> => ({
      ...meta,
      ...(typeof meta.url === 'string' ? { url: obfuscateTokenInUrl(meta.url) } : {}),
      remoteAddresses: Array.isArray(meta.remoteAddresses)
        ? meta.remoteAddresses.map((a) => (typeof a === 'string' ? mask(a) : a))
        : client === undefined ? [] : [mask(client)],
      fileFormat: 3,
      dumpId: id,
      kid: decision.kid,
      rtcStats: { user: claims.user ?? null, session: claims.session ?? null, conference: claims.conference ?? null },
    });
    const temp = path.join(this.finalization.outboxDir, `${id}.jsonl.tmp`);

    const consume = async (stream: Readable): Promise<Outcome> => {
      const writer = new UploadDumpWriter(temp, { header, transform: obfuscate ? obfuscateFrame : null });
      let dump: UploadedDump;
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) await writer.write(chunk);
        if ((stream as Readable & { truncated?: boolean }).truncated) {
          await writer.discard();
          return fail(413, `the dump is larger than ${this.config.maxUploadBytes} bytes`);
        }
        dump = await writer.end();
      } catch (err) {
        stream.resume();
        await writer.discard();
        if (err instanceof UploadRejected) return fail(err.status, err.message);
        throw err;
      }
      const sealed = path.join(this.finalization.outboxDir, `${id}.jsonl`);
      await fs.promises.rename(temp, sealed);
      const stored = header(dump.meta);
      const url = str(dump.meta.url);
      const now = Date.now();
      const record: DumpDraft = {
        id,
        startTime: typeof dump.meta.startTime === 'number' ? dump.meta.startTime : now,
        endTime: now,
        closeCode: dump.closeCode ?? 1005,
        frameCount: dump.frames,
        bytes: dump.frameBytes,
        user: claims.user ?? null,
        session: claims.session ?? null,
        conference: claims.conference ?? null,
        kid: decision.kid,
        origin: str(dump.meta.origin) ?? null,
        userAgent: str(dump.meta.userAgent) ?? null,
        clientProtocol: str(dump.meta.clientProtocol) ?? null,
        path: url === undefined ? this.config.uploadPath! : (url.split('?')[0] ?? '/'),
        remoteAddress: (stored.remoteAddresses as unknown[]).filter((a) => typeof a === 'string').join(', ') || null,
      };
      try {
        await this.finalization.queue.submitAndWait({ id, file: sealed, sealed: true, record, complete: true });
      } catch {
        // Shutting down: the dump is safe in the outbox and recorded at the next start.
        return fail(503, 'server shutting down; the dump was kept and will be recorded');
      }
      this.logger.log(`Upload ${id} recorded: ${dump.frames} frames`);
      return { status: 200, body: { id, frames: dump.frames } };
    };

    const outcome = await new Promise<Outcome>((resolve, reject) => {
      let file: Promise<Outcome> | undefined;
      parser.on('file', (_name: string, stream: Readable) => {
        if (file !== undefined) {
          stream.resume();
          return;
        }
        // The first file decides the answer, even before the rest of the body has arrived.
        file = consume(stream);
        file.then(resolve, reject);
      });
      parser.on('close', () => file ?? resolve(fail(400, 'no file part in the multipart body')));
      parser.on('error', () => file ?? resolve(fail(400, 'malformed multipart body')));
      req.pipe(parser);
    });
    req.unpipe(parser);
    return outcome;
  }
}
