import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { REPO_ROOT, tempDir, within } from './helpers.js';

interface BenchRun {
  scenario: string;
  target: string;
  metrics: Record<string, number>;
  verify: { lostFrames: number; extraFrames: number; missingDumps: number; unmatchedDumps: number };
  info: Record<string, unknown>;
}

// `npm run bench` is not a test, but its harness must not rot: run it in a tiny configuration.
describe('bench harness (tiny configuration)', () => {
  it('runs every scenario kind against the baseline and the collector, verifies the stored dumps and reports ratios', async () => {
    const dir = tempDir('rtcstats-bench-test-');
    try {
      const json = path.join(dir, 'result.json');
      const scenarios = ['real-3x40', 'large-2x10', 'idle-10', 'oneframe-10', 'badtoken-10'];
      const args = ['bench/run.mjs', '--no-pin', '--rounds', '1', '--scenarios', scenarios.join(','), '--hold-ms', '200', '--json', json];
      const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let code: number | null;
      try {
        code = await within(exit, 'the bench run', 120_000);
      } catch (err) {
        child.kill('SIGTERM'); // the harness stops its server and removes its scratch directory
        await exit;
        throw err;
      }
      assert.equal(code, 0, `bench failed:\n${stderr}`);

      const { results } = JSON.parse(fs.readFileSync(json, 'utf8')) as { results: BenchRun[] };
      assert.deepEqual(
        results.map((r) => `${r.scenario}/${r.target}`).sort(),
        scenarios.flatMap((s) => [`${s}/baseline`, `${s}/collector`]).sort(),
      );
      for (const r of results) {
        assert.deepEqual(r.verify, { lostFrames: 0, extraFrames: 0, missingDumps: 0, unmatchedDumps: 0 }, `${r.scenario}/${r.target}`);
        // RSS per idle connection is a difference of two RSS readings: with 10 connections GC noise can make it negative.
        for (const [k, v] of Object.entries(r.metrics)) {
          assert.ok(Number.isFinite(v) && (v >= 0 || k === 'rssKiBPerIdleConnection'), `${r.scenario}/${r.target} ${k} = ${v}`);
        }
      }
      const collector = (s: string) => results.find((r) => r.scenario === s && r.target === 'collector')!;
      assert.ok(collector('real-3x40').metrics.gzipFloorUsPerFrame > 0, 'compression floor measured');
      assert.equal(collector('badtoken-10').info.notRejected, 0);
      assert.equal(collector('badtoken-10').info.storedFromRejected, 0);
      for (const k of ['cpuUsPerFrameSend', 'cpuUsPerFrameTotal', 'durableS', 'peakRssMiB']) assert.ok(k in collector('real-3x40').metrics, k);
      for (const k of ['handshakesPerSec', 'cpuUsPerHandshake', 'rssKiBPerIdleConnection', 'cpuUsPerClose']) assert.ok(k in collector('idle-10').metrics, k);
      for (const k of ['rejectionsPerSec', 'cpuUsPerRejection']) assert.ok(k in collector('badtoken-10').metrics, k);

      // The report: one row per metric and scenario, with the ratio to the baseline.
      assert.match(stdout, /\| real-3x40 \| server CPU per frame, send phase \(us\) \| [\d.]+ \[[\d.]+-[\d.]+\] \| [\d.]+ \[[\d.]+-[\d.]+\] \| [\d.]+x \|/);
      assert.match(stdout, /\| real-3x40 \| frames lost \(stored dumps read back, all rounds\) \| 0 lost, 0 extra of 120 \| 0 lost, 0 extra of 120 \|/);
      assert.match(stdout, /\| badtoken-10 \| bad tokens accepted or stored \(all rounds\) \| 0 \| 0 \|/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
