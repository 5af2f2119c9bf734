import fs from 'node:fs';
import { Transform } from 'node:stream';
import zlib from 'node:zlib';

import { HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

import type { S3Config } from '../config/app-config.js';
import type { DumpStore } from './dump-store.js';

/** S3 errors for a missing object: HEAD answers 404 without a body, so only the status is known. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

/**
 * Finished dumps as objects `<prefix><id>.gz` (the gzip of the dump) in an S3-compatible bucket,
 * the layout the reference server writes and its feature extractor reads. Returns the object URL
 * as the SDK's upload reports it; that is what goes into `blob_url`.
 *
 * Idempotent per dump id: a HEAD before the upload finds an object an earlier attempt already
 * wrote (its answer may have been lost), and the upload is skipped. A HEAD after the upload
 * confirms the object and its size before the caller may delete the local copy.
 */
export class S3DumpStore implements DumpStore {
  readonly backend = 's3';
  private readonly client: S3Client;

  constructor(
    private readonly config: S3Config,
    private readonly gzipLevel = 1,
    /** Extra client settings (tests pass credentials; production uses the AWS provider chain). */
    clientConfig: S3ClientConfig = {},
  ) {
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      ...clientConfig,
    });
  }

  /** Fails fast at boot when no region can be found (setting, AWS_REGION or profile). */
  async checkConfig(): Promise<void> {
    try {
      await this.client.config.region();
    } catch {
      throw new Error('S3 storage needs a region: set RTCSTATS_S3_REGION (or AWS_REGION)');
    }
  }

  /**
   * Readiness: a HEAD on a key no dump has (404 or 200 both mean the bucket answers with our
   * credentials; the store already needs ListBucket for 404s). Writes nothing, so a probe every
   * few seconds leaves no objects and costs one request.
   */
  async ping(): Promise<void> {
    await this.head(`${this.config.prefix}.readiness-probe`);
  }

  key(id: string): string {
    return `${this.config.prefix}${id}.gz`;
  }

  async store(id: string, file: string): Promise<string> {
    const Key = this.key(id);
    const existing = await this.head(Key);
    if (existing !== undefined) return this.objectUrl(Key);

    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        done(null, chunk);
      },
    });
    const source = fs.createReadStream(file);
    const gzip = zlib.createGzip({ level: this.gzipLevel });
    // Errors of the file and gzip streams must reject the upload, not crash the process.
    const body = source.pipe(gzip).pipe(counter);
    const failed = new Promise<never>((_, reject) => {
      source.once('error', reject);
      gzip.once('error', reject);
    });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.config.bucket, Key, Body: body, ContentType: 'application/gzip' },
      // A failed multipart upload is aborted, so no parts linger in the bucket.
      leavePartsOnError: false,
    });
    let location: string | undefined;
    try {
      location = (await Promise.race([upload.done(), failed])).Location;
    } catch (err) {
      source.destroy();
      await upload.abort().catch(() => undefined);
      throw err;
    }
    const stored = await this.head(Key);
    if (stored === undefined || stored !== size) {
      throw new Error(`S3 object ${Key} not confirmed after upload (size ${stored ?? 'missing'}, expected ${size})`);
    }
    return location ?? this.objectUrl(Key);
  }

  /** The object's size, or undefined when it does not exist. */
  private async head(Key: string): Promise<number | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key }));
      return res.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The URL the SDK's upload reports for a single-part upload, for an object found by HEAD. */
  private async objectUrl(Key: string): Promise<string> {
    const endpoint = this.config.endpoint
      ? new URL(this.config.endpoint)
      : new URL(`https://s3.${await this.client.config.region()}.amazonaws.com`);
    const key = Key.split('/').map(encodeURIComponent).join('/');
    const bucket = encodeURIComponent(this.config.bucket);
    const base = `${endpoint.protocol}//${endpoint.host}`;
    if (this.config.forcePathStyle) return `${base}/${bucket}/${key}`;
    return `${endpoint.protocol}//${bucket}.${endpoint.host}/${key}`;
  }

  close(): void {
    this.client.destroy();
  }
}
