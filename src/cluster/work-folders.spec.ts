import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';

import { adoptOrphans, slotDir } from './work-folders.js';

describe('cluster work folders', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const setup = (files: string[]): string => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rtcstats-slots-'));
    dir = root;
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), f);
    }
    return root;
  };
  const tree = (root: string) =>
    fs
      .readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
      .sort();

  it('names a slot folder, or the base without a cluster', () => {
    assert.equal(slotDir('/d/work', 3), '/d/work/worker-3');
    assert.equal(slotDir('/d/work', undefined), '/d/work');
  });

  it('gives slot 1 the files of a single-process run and of slots beyond the worker count; live slots keep theirs', () => {
    const dir = setup(['a.jsonl', 'worker-1/b.jsonl', 'worker-2/c.jsonl', 'worker-3/d.jsonl', 'worker-3/e.jsonl.tmp']);
    assert.equal(adoptOrphans(dir, slotDir(dir, 1), 2), 3);
    assert.deepEqual(tree(dir), ['worker-1/a.jsonl', 'worker-1/b.jsonl', 'worker-1/d.jsonl', 'worker-1/e.jsonl.tmp', 'worker-2/c.jsonl']);
    assert.equal(fs.readFileSync(path.join(dir, 'worker-1/d.jsonl'), 'utf8'), 'worker-3/d.jsonl', 'moved, not copied');
    assert.ok(!fs.existsSync(path.join(dir, 'worker-3')));
  });

  it('gives a single process everything the workers of a cluster run left', () => {
    const dir = setup(['a.jsonl', 'worker-1/b.jsonl', 'worker-2/c.jsonl']);
    assert.equal(adoptOrphans(dir, dir, undefined), 2);
    assert.deepEqual(tree(dir), ['a.jsonl', 'b.jsonl', 'c.jsonl']);
  });

  it('does nothing when the folder does not exist yet', () => {
    const dir = setup([]);
    assert.equal(adoptOrphans(path.join(dir, 'work'), path.join(dir, 'work', 'worker-1'), 2), 0);
    assert.ok(!fs.existsSync(path.join(dir, 'work')));
  });
});
