import { parseArgs } from 'node:util';

import { ConfigError, parseConfig, parseDurationSeconds } from '../config/app-config.js';
import { loadEnvironment } from '../config/environment.js';
import { TOKEN_PARAM } from '../common/protocol.constants.js';
import { KeyringError } from '../keyring/keyring.js';
import { loadKeyring } from '../keyring/keyring-source.js';
import { generateAuthToken } from '../tokens/generate-auth-token.js';

const USAGE = `usage: npm run token -- [--user U] [--session S] [--conference C] [--lifetime 600|6h] [--url ws://host:8080/path]
Prints a client token signed with the current key of the collector's keyring (same configuration as the server).
With --url, prints the WebSocket URL with the token in ?${TOKEN_PARAM}=.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        user: { type: 'string' },
        session: { type: 'string' },
        conference: { type: 'string' },
        lifetime: { type: 'string', default: '6h' },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const config = parseConfig(await loadEnvironment());
    const lifetime = parseDurationSeconds(args.lifetime!);
    if (lifetime === undefined || lifetime < 60 || lifetime > config.jwt.maxLifetimeSec) {
      throw new ConfigError(`--lifetime must be between 60s and ${config.jwt.maxLifetimeSec}s (got "${args.lifetime}")`);
    }
    const { keyring } = loadKeyring(config, { generate: false });
    const current = keyring?.current;
    if (current === undefined) {
      throw new KeyringError(
        `no current signing key: set RTCSTATS_JWT_SECRET or RTCSTATS_KEYRING_FILE, or start the server once so it generates ${config.dataDir}/keyring.json`,
      );
    }
    const token = generateAuthToken(
      { user: args.user, session: args.session, conference: args.conference },
      current.key,
      lifetime,
      { kid: current.kid, issuer: config.jwt.issuer, audience: config.jwt.audience },
    );
    if (args.url === undefined) {
      process.stdout.write(`${token}\n`);
    } else {
      const url = new URL(args.url);
      url.searchParams.set(TOKEN_PARAM, token);
      process.stdout.write(`${url.toString()}\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`token: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
