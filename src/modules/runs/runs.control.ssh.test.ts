import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { sshdSkip } from '../../../test/sshd.ts';
import { testUserProcesses } from '../../../test/sshd.ts';
import { FINAL, sshRunsEnv, stepOf, type StepView, targetStatus, waitUntil } from './runs.fixtures.ts';

/** Highest number of [started_at, finished_at) intervals open at the same instant. */
function maxOverlap(steps: StepView[]): number {
  const edges = steps.flatMap((s) => [
    { at: Date.parse(String(s.started_at)), delta: 1 },
    { at: Date.parse(String(s.finished_at)), delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let max = 0;
  for (const edge of edges) {
    open += edge.delta;
    max = Math.max(max, open);
  }
  return max;
}

describe('job runs over SSH: step and job timeouts, cancel, concurrency', { skip: sshdSkip() }, () => {
  const env = sshRunsEnv();
  const { api, getRun, createJob, startRun, waitForRun, createTarget, uniqueSleep } = env;

  test('a step past its timeout_s is timed_out and its remote process is killed', async () => {
    const target = await createTarget();
    const sleep = uniqueSleep();
    const job = await createJob({
      steps: [
        { type: 'command', name: 'slow', command: `echo started; ${sleep}`, timeout_s: 2 },
        { type: 'command', name: 'after', command: 'echo after' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    await waitUntil(`${sleep} to run on the sshd host`, () => testUserProcesses(sleep).length > 0);
    const run = await waitForRun(runId);
    const slow = stepOf(run, target.id, 0);
    assert.equal(slow.status, 'timed_out', JSON.stringify(slow));
    assert.equal(slow.stdout, 'started\n');
    assert.ok((slow.duration_ms ?? 0) >= 1900 && (slow.duration_ms ?? 0) < 10_000, `duration ${slow.duration_ms}`);
    assert.equal(stepOf(run, target.id, 1).status, 'skipped');
    assert.equal(targetStatus(run, target.id), 'timed_out');
    assert.equal(run.summary.timed_out, 1);
    assert.equal(run.summary.failed, 0, 'a timeout is not a failure');
    assert.notEqual(run.status, 'completed');
    await waitUntil(`${sleep} to be gone from the sshd host`, () => testUserProcesses(sleep).length === 0, 3000);
  });

  test('the job timeout_s ends the whole run as timed_out and kills what is running', async () => {
    const targets = [await createTarget(), await createTarget()];
    const sleep = uniqueSleep();
    const job = await createJob({ timeout_s: 2, concurrency: 1, steps: [{ type: 'command', name: 'slow', command: sleep, timeout_s: 600 }] });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    await waitUntil(`${sleep} to run on the sshd host`, () => testUserProcesses(sleep).length > 0);
    const running = await getRun(runId);
    const firstId = running.targets.find((t) => t.status === 'running')?.target_id;
    const second = running.targets.find((t) => t.status === 'pending');
    assert.ok(firstId && second, `one target running, one pending under concurrency 1: ${JSON.stringify(running.targets)}`);
    const secondId = second.target_id as number;
    const run = await waitForRun(runId, (r) => FINAL.includes(r.status) || stepOf(r, secondId, 0).started_at !== null);
    const deadline = Date.parse(String(run.started_at)) + 2000;
    const late = stepOf(run, secondId, 0).started_at;
    assert.equal(late, null, `the target still pending at the run deadline (${new Date(deadline).toISOString()}) must not start; its step started at ${late}`);
    assert.equal(run.status, 'timed_out', JSON.stringify(run));
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['timed_out', 'timed_out'],
    );
    assert.equal(stepOf(run, firstId, 0).status, 'timed_out');
    assert.ok(run.steps.every((s) => s.status !== 'failed'));
    await waitUntil(`${sleep} to be gone from the sshd host`, () => testUserProcesses(sleep).length === 0, 3000);
  });

  test('cancel kills the running step, cancels pending targets; canceling a finished run is 409', async () => {
    const targets = [await createTarget(), await createTarget(), await createTarget()];
    const sleep = uniqueSleep();
    const job = await createJob({
      concurrency: 1,
      steps: [
        { type: 'command', name: 'slow', command: `echo begin; ${sleep}`, timeout_s: 600 },
        { type: 'command', name: 'after', command: 'echo after' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    await waitUntil(`${sleep} to run on the sshd host`, () => testUserProcesses(sleep).length > 0);
    const running = await getRun(runId);
    assert.equal(running.status, 'running');
    const active = running.targets.find((t) => t.status === 'running');
    assert.ok(active, 'one target is running');
    assert.equal(running.targets.filter((t) => t.status === 'pending').length, 2, 'concurrency 1 keeps the others pending');

    const canceled = await api('POST', `/job-runs/${runId}/cancel`);
    assert.equal(canceled.statusCode, 200, canceled.body);
    const run = await waitForRun(runId);
    assert.equal(run.status, 'canceled', JSON.stringify(run));
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['canceled', 'canceled', 'canceled'],
    );
    assert.equal(run.summary.canceled, 3);
    const killed = stepOf(run, active.target_id as number, 0);
    assert.equal(killed.status, 'canceled', 'the running step is canceled, not failed');
    assert.equal(killed.stdout, 'begin\n');
    assert.equal(stepOf(run, active.target_id as number, 1).status, 'skipped');
    for (const t of targets.filter((x) => x.id !== active.target_id)) {
      assert.equal(stepOf(run, t.id, 0).started_at, null, 'pending targets never started');
      assert.notEqual(stepOf(run, t.id, 0).status, 'succeeded');
    }
    await waitUntil(`${sleep} to be gone from the sshd host`, () => testUserProcesses(sleep).length === 0, 3000);

    const again = await api('POST', `/job-runs/${runId}/cancel`);
    assert.equal(again.statusCode, 409, again.body);
  });

  test('concurrency caps the targets in flight: 5 targets, concurrency 2, never more than 2 steps at once', async () => {
    const targets = [];
    for (let i = 0; i < 5; i++) {
      targets.push(await createTarget());
    }
    const job = await createJob({ concurrency: 2, steps: [{ type: 'command', name: 'nap', command: 'sleep 1' }] });
    const run = await waitForRun(await startRun(job.id, { target_ids: targets.map((t) => t.id) }), undefined, 30_000);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.steps.length, 5);
    const overlap = maxOverlap(run.steps);
    assert.ok(overlap <= 2, `at most 2 targets in flight, saw ${overlap}`);
    assert.equal(overlap, 2, 'the run used its 2 slots');
  });
});
