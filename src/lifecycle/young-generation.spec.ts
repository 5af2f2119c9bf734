import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { growthSetByOperator } from './young-generation.js';

describe('growthSetByOperator', () => {
  it('sees the flag in node arguments or NODE_OPTIONS, in either spelling', () => {
    assert.equal(growthSetByOperator(['--semi-space-growth-factor=4'], undefined), true);
    assert.equal(growthSetByOperator(['--semi-space-growth-factor', '4'], undefined), true);
    assert.equal(growthSetByOperator([], '--max-old-space-size=512 --semi_space_growth_factor=3'), true);
  });

  it('is false for other V8 flags, none at all, or a lookalike', () => {
    assert.equal(growthSetByOperator([], undefined), false);
    assert.equal(growthSetByOperator(['--max-semi-space-size=4', '--import', 'x.mjs'], ''), false);
    assert.equal(growthSetByOperator([], '--semi-space-growth-factors=2'), false);
  });
});
