import type { LoggerService } from '@nestjs/common';

type Level = 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';

/**
 * Nest's logger while the app is being created: holds every line until the configured logger
 * (pino, with RTCSTATS_LOG_LEVEL and RTCSTATS_LOG_FORMAT, known only once the config module has
 * run) is attached, then replays them through it, so startup lines share its format and level.
 * When the boot fails on a bad setting, the held lines (and the stack trace Nest logs) are
 * dropped: main prints one clear line instead.
 */
export class BootLogger implements LoggerService {
  private held: Array<[Level, unknown[]]> = [];
  private target: LoggerService | undefined;

  attach(target: LoggerService): void {
    this.target = target;
    for (const [level, args] of this.held.splice(0)) this.write(level, args);
  }

  discard(): void {
    this.held = [];
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('log', [message, ...rest]);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', [message, ...rest]);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', [message, ...rest]);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', [message, ...rest]);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('verbose', [message, ...rest]);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', [message, ...rest]);
  }

  private write(level: Level, args: unknown[]): void {
    const target = this.target;
    if (target === undefined) {
      this.held.push([level, args]);
      return;
    }
    const fn = target[level] ?? target.log;
    (fn as (...a: unknown[]) => void).apply(target, args);
  }
}
