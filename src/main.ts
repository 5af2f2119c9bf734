import 'reflect-metadata';

import type { AddressInfo } from 'node:net';

import { ConsoleLogger, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';

import { AppModule } from './app.module.js';
import { setupApp } from './app.setup.js';
import { runClusterPrimaryIfConfigured } from './cluster/cluster-primary.js';
import type { AppConfig } from './config/app-config.js';
import { APP_CONFIG } from './config/app-config.token.js';
import { generatedKeyNotice } from './keyring/generated-key-notice.js';
import { KeyringService } from './keyring/keyring.service.js';
import { BootLogger } from './logging/boot-logger.js';
import { DrainState } from './lifecycle/drain-state.js';

const isConfigError = (err: unknown): err is Error =>
  err instanceof Error && (err.name === 'ConfigError' || err.name === 'KeyringError');

async function bootstrap(): Promise<void> {
  // RTCSTATS_WORKERS > 1: this process only supervises workers, which run the rest of this function.
  if (await runClusterPrimaryIfConfigured()) return;
  // Nest's own lines are held until the configured logger (JSON or pretty, RTCSTATS_LOG_LEVEL) is
  // installed; a bad setting never gets that far and is printed as one clear line, not a stack trace.
  const boot = new BootLogger();
  const app = await NestFactory.create(AppModule, { abortOnError: false, logger: boot }).catch((err: unknown) => {
    if (isConfigError(err)) {
      boot.discard();
      process.stderr.write(`Invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    boot.attach(new ConsoleLogger());
    throw err;
  });
  const config = app.get<AppConfig>(APP_CONFIG);
  const logger = app.get(PinoLogger);
  boot.attach(logger);
  app.useLogger(logger);
  setupApp(app);
  // Not Nest's shutdown hooks: they re-raise the signal after closing, and a drain must end with 0.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      new Logger('Main').warn(`${signal} received again: already draining (RTCSTATS_SHUTDOWN_TIMEOUT bounds it)`);
      return;
    }
    stopping = true;
    app.get(DrainState).start();
    new Logger('Main').log(`${signal} received: draining (new connections get 503)`);
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`Shutdown failed: ${err instanceof Error ? err.stack : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Without a host Node listens on every interface, IPv6 and IPv4, falling back to IPv4 alone.
  const listening = config.host === undefined ? app.listen(config.port) : app.listen(config.port, config.host);
  await listening.catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES' && err.code !== 'EADDRNOTAVAIL') throw err;
    process.stderr.write(
      `Cannot listen on ${config.host ?? 'all interfaces'} port ${config.port}: ${err.code} ` +
        `(is another collector running? set RTCSTATS_PORT or RTCSTATS_HOST)\n`,
    );
    await app.close();
    process.exit(1);
  });

  const log = new Logger('Main');
  const shown = config.host === undefined || config.host === '::' || config.host === '0.0.0.0' ? 'localhost' : config.host;
  // The bound port, not the setting: RTCSTATS_PORT=0 picks a free one.
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const url = `ws://${shown}:${port}/`;
  log.log(`rtcstats collector listening on ${url} (health: http://${shown}:${port}/healthcheck)`);
  log.log(`Dumps: ${config.dataDir}/dumps, metadata: ${config.dataDir}/rtcstats.sqlite, pending: ${config.dataDir}/work and ${config.dataDir}/outbox`);
  if (config.auth === 'disabled') {
    log.warn('RTCSTATS_AUTH=disabled: every connection is accepted without a token');
  } else {
    const keyring = app.get(KeyringService);
    log.log(`Clients connect to ${url}?rtcstats-token=<JWT>; get one with: npm run token -- --user alice --url ${url}`);
    if (keyring.file !== undefined) log.log(`Signing keys are in ${keyring.file}`);
    const apiKey = keyring.generated ? keyring.get()?.apiKeys[0] : undefined;
    if (apiKey !== undefined) {
      const notice = generatedKeyNotice(apiKey, keyring.file!, process.stdout.isTTY === true);
      // A notice holding the key goes straight to the terminal, never through the logger.
      if (notice.secret) process.stdout.write(`\n${notice.text}\n\n`);
      else log.log(notice.text);
    }
  }
}

void bootstrap();
