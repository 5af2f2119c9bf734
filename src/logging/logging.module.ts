import type { IncomingMessage } from 'node:http';

import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { type Level, type LoggerOptions, stdTimeFunctions } from 'pino';

import type { AppConfig, LogLevel } from '../config/app-config.js';
import { APP_CONFIG } from '../config/app-config.token.js';
import { messageFields, redactText, redactUrl } from './log-redaction.js';

const PINO_LEVEL: Record<LogLevel, Level> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

/** Pretty lines for a person at a terminal (or RTCSTATS_LOG_FORMAT=pretty), JSON lines for log pipelines. */
export function prettyLogs(config: AppConfig): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === undefined && process.stdout.isTTY === true);
}

/** Level, format and time of every log line, for the app's logger and the cluster primary's. */
export function basePinoOptions(config: AppConfig): LoggerOptions {
  return {
    level: PINO_LEVEL[config.logLevel],
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: stdTimeFunctions.isoTime,
    transport: prettyLogs(config) ? { target: 'pino-pretty', options: { colorize: process.stdout.isTTY === true, singleLine: true } } : undefined,
  };
}

const QUIET_ROUTES = new Set(['/healthcheck', '/readyz', '/metrics']);

/**
 * JSON logs through pino (nestjs-pino), for Nest's own lines too (main.ts installs it as the app
 * logger). The logger itself redacts: Authorization headers and cookies by path, token query
 * values and JWT-shaped strings in every message and URL. Lines naming a dump carry `dumpId`.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        pinoHttp: {
          ...basePinoOptions(config),
          redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'], censor: '[redacted]' },
          serializers: {
            req: (req: { method?: string; url?: string; headers?: Record<string, unknown> }) => ({
              method: req.method,
              url: redactUrl(req.url),
              headers: req.headers,
            }),
          },
          hooks: {
            logMethod(args: unknown[], method: (...a: unknown[]) => void) {
              for (let i = 0; i < args.length; i++) {
                const a = args[i];
                if (typeof a === 'string') args[i] = redactText(a);
                else if (a instanceof Error) {
                  a.message = redactText(a.message);
                  if (a.stack !== undefined) a.stack = redactText(a.stack);
                }
              }
              const message = args.find((a): a is string => typeof a === 'string');
              const fields = message === undefined ? undefined : messageFields(message);
              if (fields !== undefined && typeof args[0] === 'object' && args[0] !== null) Object.assign(args[0], fields);
              method.apply(this, args);
            },
          },
          // Access lines at debug (5xx at warn); probes and scrapes not at all.
          autoLogging: { ignore: (req: IncomingMessage) => QUIET_ROUTES.has((req.url ?? '').split('?')[0]) },
          customLogLevel: (_req: IncomingMessage, res: { statusCode: number }, err?: Error) =>
            err !== undefined || res.statusCode >= 500 ? 'warn' : 'debug',
          quietReqLogger: true,
        },
      }),
    }),
  ],
})
export class LoggingModule {}
