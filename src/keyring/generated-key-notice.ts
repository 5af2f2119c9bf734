import type { ApiKey } from './keyring.js';

/** What to tell the operator about the API key generated on first start. */
export interface GeneratedKeyNotice {
  readonly text: string;
  /** True when `text` holds the key: write it straight to the terminal, never to a log. */
  readonly secret: boolean;
}

/** A path as one shell word, quoted only when it needs to be. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The key itself only when stdout is a terminal (a person is reading it once). Anywhere else
 * (a container's log pipeline, a file, systemd's journal) it would be kept and shipped, so the
 * notice names the file and the command that shows the key instead.
 */
export function generatedKeyNotice(apiKey: Pick<ApiKey, 'id' | 'key' | 'scopes'>, file: string, stdoutIsTty: boolean): GeneratedKeyNotice {
  const name = `API key "${apiKey.id}" (${apiKey.scopes.join(', ')})`;
  if (stdoutIsTty) {
    return {
      secret: true,
      text: `${name}: ${apiKey.key.toString('utf8')}\nIt will not be shown again; it is stored in ${file} ("apiKeys").`,
    };
  }
  return {
    secret: false,
    text: `${name} generated into ${file}; show it with: npm run keys -- api-show ${shellWord(apiKey.id)} --file ${shellWord(file)}`,
  };
}
