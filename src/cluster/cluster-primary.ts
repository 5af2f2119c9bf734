import cluster from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';

import { type AppConfig, parseConfig } from '../config/app-config.js';
import { ensureWritableDir } from '../config/data-dir.js';
import { loadEnvironment } from '../config/environment.js';
import { basePinoOptions } from '../logging/logging.module.js';
import { removeStalePartials } from '../storage/local-dump.store.js';
import { serveClusterMetrics } from './cluster-metrics.js';
import { ClusterSupervisor, type SupervisorLog } from './cluster-supervisor.js';
import { adoptOrphans, slotDir } from './work-folders.js';

/**
 * What a single process does to its data directory at start and workers must not (each starts
 * while others already write there): done once, here, before any worker is forked.
 */
function prepareDataDir(config: AppConfig, logger: SupervisorLog): void {
  // Dumps of slots this run will not have (and of an earlier single-process run) go to slot 1.
  for (const base of ['work', 'outbox'].map((name) => path.join(config.dataDir, name))) {
    const moved = adoptOrphans(base, slotDir(base, 1), config.workers);
    if (moved > 0) logger.warn(`${moved} file(s) of an earlier run moved from ${base} to worker 1, which recovers them`);
  }
  if (config.s3 === undefined) removeStalePartials(path.join(config.dataDir, 'dumps'));
  // Analysis uploads of an earlier run are not resumed (their state is unknown); each worker spools in its own slot.
  fs.rmSync(path.join(config.dataDir, 'analysis'), { recursive: true, force: true });
  // Spare files of worker slots this run will not have (each worker empties its own at start).
  fs.rmSync(path.join(config.dataDir, 'spare'), { recursive: true, force: true });
}

/**
 * Runs this process as the cluster primary when RTCSTATS_WORKERS asks for more than one process;
 * resolves false when it should boot the collector itself (a single process, or a worker).
 */
export async function runClusterPrimaryIfConfigured(): Promise<boolean> {
  // A worker whose primary dies exits at once (Node's cluster does that on the lost IPC channel),
  // so a restarted primary's workers never recover a folder that an orphan still finalizes.
  if (cluster.isWorker) return false;
  let config: AppConfig;
  try {
    config = parseConfig(await loadEnvironment());
    if (config.workers === 1) return false;
    ensureWritableDir(config.dataDir, 'RTCSTATS_DATA_DIR');
  } catch (err) {
    // The collector's own boot reports a bad setting in its usual words.
    if ((err as Error).name === 'ConfigError') return false;
    throw err;
  }
  // The same line format and level as the workers' logs, so one pipeline reads both.
  const pinoLogger = pino(basePinoOptions(config));
  const logger: SupervisorLog = {
    log: (m) => pinoLogger.info({ context: 'Cluster' }, m),
    warn: (m) => pinoLogger.warn({ context: 'Cluster' }, m),
    error: (m) => pinoLogger.error({ context: 'Cluster' }, m),
  };
  prepareDataDir(config, logger);
  logger.log(`Primary (pid ${process.pid}) starting ${config.workers} workers`);
  const supervisor = new ClusterSupervisor(config.workers, logger);
  serveClusterMetrics();
  process.on('SIGTERM', () => supervisor.stop('SIGTERM'));
  process.on('SIGINT', () => supervisor.stop('SIGINT'));
  process.on('SIGHUP', () => supervisor.forward('SIGHUP'));
  const code = await supervisor.run();
  logger.log(code === 0 ? 'All workers drained' : 'Stopped');
  pinoLogger.flush(() => process.exit(code));
  return true;
}

