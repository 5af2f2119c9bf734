import type { DumpDraft } from '../finalization/dump-file.js';
import type { FinalizeJob } from '../finalization/finalize-queue.js';
import type { ConnectionInfo } from './connection-info.js';
import type { SessionResult } from './dump-session.js';

/** The metadata record of a connection, before it has counts and a location. */
export function connectionDraft(info: ConnectionInfo): Omit<DumpDraft, 'endTime' | 'closeCode' | 'frameCount' | 'bytes'> {
  return {
    id: info.id,
    startTime: info.startTime,
    user: info.claims.user ?? null,
    session: info.claims.session ?? null,
    conference: info.claims.conference ?? null,
    kid: info.kid,
    origin: info.origin ?? null,
    userAgent: info.userAgent ?? null,
    clientProtocol: info.clientProtocol ?? null,
    path: info.path,
    remoteAddress: info.remoteAddresses.join(', ') || null,
  };
}

/**
 * What the finalization queue gets from a finished WebSocket session: nothing when no frame came;
 * the complete live file when it ended normally; when writing failed (disk full), the file as far
 * as it got, to be cut at its last whole frame and sealed with the session's close line.
 */
export function sessionJob(result: SessionResult): FinalizeJob | undefined {
  if (!result.stored && result.error === undefined) return undefined;
  const record: DumpDraft = {
    ...connectionDraft(result.info),
    endTime: result.endTime,
    closeCode: result.closeCode,
    frameCount: result.frameCount,
    bytes: result.bytes,
    ...result.extra,
  };
  if (result.error === undefined && result.stored) {
    return { id: result.info.id, file: result.file, sealed: false, record, complete: true };
  }
  return {
    id: result.info.id,
    file: result.file,
    sealed: false,
    record,
    close: { code: result.closeCode, reason: 'cannot record session', endTime: result.endTime, lastFrameAt: result.lastFrameAt },
  };
}
