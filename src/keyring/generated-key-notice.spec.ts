import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { generatedKeyNotice } from './generated-key-notice.js';

const KEY = 'generated-key-0123456789-abcdefghijklmn';
const apiKey = { id: 'default', key: Buffer.from(KEY), scopes: ['tokens', 'admin'] as const };

describe('generatedKeyNotice', () => {
  it('a terminal gets the key itself, once', () => {
    const notice = generatedKeyNotice(apiKey, '/data/keyring.json', true);
    assert.equal(notice.secret, true);
    assert.equal(notice.text.split(KEY).length - 1, 1);
    assert.match(notice.text, /It will not be shown again; it is stored in \/data\/keyring.json/);
  });

  it('anything else (a pipe, a file, a log collector) gets the file and the command, never the key', () => {
    const notice = generatedKeyNotice(apiKey, '/data/keyring.json', false);
    assert.equal(notice.secret, false);
    assert.ok(!notice.text.includes(KEY));
    assert.equal(
      notice.text,
      'API key "default" (tokens, admin) generated into /data/keyring.json; show it with: npm run keys -- api-show default --file /data/keyring.json',
    );
  });

  it('quotes a path with spaces for the shell', () => {
    assert.match(generatedKeyNotice(apiKey, "/my data/it's/keyring.json", false).text, /--file '\/my data\/it'\\''s\/keyring.json'$/);
  });
});
