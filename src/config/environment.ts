import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';

import type { EnvReader } from './app-config.js';

/**
 * Environment for command-line tools: process.env over an optional .env in the working
 * directory, the same precedence the server's ConfigModule uses.
 */
export function cliEnvironment(cwd = process.cwd()): EnvReader {
  const file = path.join(cwd, '.env');
  const fromFile = fs.existsSync(file) ? util.parseEnv(fs.readFileSync(file, 'utf8')) : {};
  return (name) => process.env[name] ?? fromFile[name];
}
