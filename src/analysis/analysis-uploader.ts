import type { FileHandle } from 'node:fs/promises';

import type { AnalysisResult } from '../metadata/metadata.store.js';

/** The reference's chunk size for the rtcstats.com upload. */
export const ANALYSIS_CHUNK_BYTES = 1024 * 1024;

/** An upload failure; `retriable` is false when sending the same again cannot succeed (4xx). */
export class AnalysisUploadError extends Error {
  override name = 'AnalysisUploadError';
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

export interface UploadOptions {
  url: string;
  token: string;
  chunkBytes?: number;
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
}

/** The service's `error` field or status line, cut short, with the token removed if echoed. */
async function describeFailure(res: Response, token: string): Promise<string> {
  let detail = '';
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body?.error === 'string') detail = `: ${body.error.slice(0, 200)}`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${res.status}${detail}`.split(token).join('[token]');
}

function retriableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * Sends one dump the way the reference server uploads to rtcstats.com: multipart POSTs of
 * 1 MiB chunks (`chunk`, `fileId`, `chunkIndex`, `totalChunks`, `fileName`), then a JSON POST
 * `{fileId, assemble: true, fileName}` whose answer carries `embedUrl` and the analysis.
 */
export async function uploadForAnalysis(file: FileHandle, fileName: string, options: UploadOptions): Promise<AnalysisResult> {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const chunkBytes = options.chunkBytes ?? ANALYSIS_CHUNK_BYTES;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const authorization = `Bearer ${options.token}`;
  const post = async (body: FormData | string, json: boolean): Promise<Response> => {
    const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])];
    try {
      return await fetchFn(options.url, {
        method: 'POST',
        headers: json ? { Authorization: authorization, 'Content-Type': 'application/json' } : { Authorization: authorization },
        body,
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new AnalysisUploadError(`request failed (${(err as Error).name}${cause ? ` ${cause}` : ''})`, true);
    }
  };

  const { size } = await file.stat();
  const totalChunks = Math.max(1, Math.ceil(size / chunkBytes));
  const fileId = `${fileName}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  for (let i = 0; i < totalChunks; i++) {
    const length = Math.min(chunkBytes, size - i * chunkBytes);
    const buffer = Buffer.alloc(Math.max(0, length));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, i * chunkBytes);
    const form = new FormData();
    form.append('chunk', new Blob([buffer.subarray(0, bytesRead)]));
    form.append('fileId', fileId);
    form.append('chunkIndex', String(i));
    form.append('totalChunks', String(totalChunks));
    form.append('fileName', fileName);
    const res = await post(form, false);
    if (!res.ok) {
      throw new AnalysisUploadError(`chunk ${i + 1}/${totalChunks} refused: ${await describeFailure(res, options.token)}`, retriableStatus(res.status));
    }
    await res.body?.cancel();
  }
  const res = await post(JSON.stringify({ fileId, assemble: true, fileName }), true);
  if (!res.ok) {
    throw new AnalysisUploadError(`assembly refused: ${await describeFailure(res, options.token)}`, retriableStatus(res.status));
  }
  let answer: unknown;
  try {
    answer = await res.json();
  } catch {
    return {};
  }
  if (answer === null || typeof answer !== 'object') return {};
  const a = answer as Record<string, unknown>;
  return {
    embedUrl: typeof a.embedUrl === 'string' ? a.embedUrl : undefined,
    rtcstatsId: typeof a.rtcstatsId === 'string' ? a.rtcstatsId : undefined,
    data: a.data !== null && typeof a.data === 'object' && !Array.isArray(a.data) ? (a.data as Record<string, unknown>) : undefined,
  };
}
