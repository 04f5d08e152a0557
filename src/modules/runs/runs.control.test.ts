import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { runsEnv, waitUntil } from './runs.fixtures.ts';

describe('job runs without SSH: when conditions, step timeouts, one active run per job, cancel and retry', () => {
  const env = runsEnv();
  const { runJob, getRun, createJob, startRun, waitForRun } = env;

  test('when skips a step that renders to "", false, 0 or no, and runs it otherwise', async () => {
    const { receiver } = env;
    const tag = unique('w');
    const job = await createJob({
      parameters: { flag: { type: 'boolean', default: false }, mode: { type: 'string', default: 'full' } },
      steps: [
        { type: 'http', name: 'base', method: 'GET', url: receiver.url(`/w/${tag}/base`) },
        { type: 'http', name: 'empty', method: 'GET', url: receiver.url(`/w/${tag}/empty`), when: '' },
        { type: 'http', name: 'false_literal', method: 'GET', url: receiver.url(`/w/${tag}/false`), when: 'false' },
        { type: 'http', name: 'zero', method: 'GET', url: receiver.url(`/w/${tag}/zero`), when: '0' },
        { type: 'http', name: 'no', method: 'GET', url: receiver.url(`/w/${tag}/no`), when: 'no' },
        { type: 'http', name: 'flag', method: 'GET', url: receiver.url(`/w/${tag}/flag`), when: '{{ params.flag }}' },
        { type: 'http', name: 'mode', method: 'GET', url: receiver.url(`/w/${tag}/mode`), when: '{% if params.mode == "full" %}yes{% endif %}' },
        { type: 'http', name: 'exit_zero', method: 'GET', url: receiver.url(`/w/${tag}/exit`), when: '{{ steps.base.exit_code }}' },
        { type: 'http', name: 'output', method: 'GET', url: receiver.url(`/w/${tag}/output`), when: '{{ steps.base.outputs.status_code }}' },
      ],
    });
    const run = await waitForRun(await startRun(job.id));
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(
      (run.steps as Array<Record<string, unknown>>).map((s) => [s.name, s.status]),
      [
        ['base', 'succeeded'],
        ['empty', 'skipped'],
        ['false_literal', 'skipped'],
        ['zero', 'skipped'],
        ['no', 'skipped'],
        ['flag', 'skipped'],
        ['mode', 'succeeded'],
        ['exit_zero', 'skipped'],
        ['output', 'succeeded'],
      ],
    );
    assert.deepEqual(
      receiver.seen(`/w/${tag}/`).map((r) => r.url),
      [`/w/${tag}/base`, `/w/${tag}/mode`, `/w/${tag}/output`],
      'only the steps whose condition held were sent',
    );

    const flagged = await waitForRun(await startRun(job.id, { parameters: { flag: true, mode: 'quick' } }));
    assert.equal(flagged.status, 'completed', JSON.stringify(flagged));
    assert.deepEqual(
      (flagged.steps as Array<Record<string, unknown>>).filter((s) => ['flag', 'mode'].includes(s.name as string)).map((s) => [s.name, s.status]),
      [
        ['flag', 'succeeded'],
        ['mode', 'skipped'],
      ],
    );
  });

  test('an http step that outlives its timeout_s is timed_out, never failed', async () => {
    const { receiver } = env;
    const job = await createJob({
      steps: [
        { type: 'http', name: 'slow', method: 'GET', url: receiver.url('/hold/never'), timeout_s: 1 },
        { type: 'http', name: 'later', method: 'GET', url: receiver.url('/text') },
      ],
    });
    const started = Date.now();
    const run = await waitForRun(await startRun(job.id));
    assert.ok(Date.now() - started < 8000);
    const steps = run.steps as Array<Record<string, unknown>>;
    assert.deepEqual(
      steps.map((s) => [s.name, s.status]),
      [
        ['slow', 'timed_out'],
        ['later', 'skipped'],
      ],
    );
    assert.equal((run.targets as Array<Record<string, unknown>>)[0]?.status, 'timed_out');
    assert.equal((run.summary as Record<string, number>).timed_out, 1);
    assert.equal((run.summary as Record<string, number>).failed, 0);
    assert.notEqual(run.status, 'completed');
  });

  test('one active run per job (409 naming running_run_id) unless allow_concurrent_runs; cancel; retry', async () => {
    const { ctx, receiver } = env;
    const key = unique('hold');
    const job = await createJob({ steps: [{ type: 'http', name: 'wait', method: 'GET', url: receiver.url(`/hold/${key}?run={{ run.id }}`), timeout_s: 60 }] });
    const first = await startRun(job.id);
    await waitUntil('the first run to call the receiver', () => receiver.seen(`/hold/${key}?run=${first}`).length === 1);
    assert.equal((await getRun(first)).status, 'running');

    const second = await runJob(job.id);
    assert.equal(second.statusCode, 409, second.body);
    assert.equal(second.json().error.details.running_run_id, first);

    const concurrent = await createJob({ allow_concurrent_runs: true, steps: [{ type: 'http', name: 'wait', method: 'GET', url: receiver.url(`/hold/${key}?c={{ run.id }}`), timeout_s: 60 }] });
    const a = await startRun(concurrent.id);
    const b = await startRun(concurrent.id);
    await waitUntil('both concurrent runs to call the receiver', () => receiver.seen(`/hold/${key}?c=${a}`).length === 1 && receiver.seen(`/hold/${key}?c=${b}`).length === 1);

    const canceled = await ctx.request({ method: 'POST', url: `/job-runs/${first}/cancel`, token: ctx.adminToken });
    assert.equal(canceled.statusCode, 200, canceled.body);
    const run = await waitForRun(first);
    assert.equal(run.status, 'canceled');
    assert.equal((run.targets as Array<Record<string, unknown>>)[0]?.status, 'canceled');
    assert.equal((run.steps as Array<Record<string, unknown>>)[0]?.status, 'canceled', 'a canceled step is canceled, not failed');
    assert.equal((run.summary as Record<string, number>).canceled, 1);
    const again = await ctx.request({ method: 'POST', url: `/job-runs/${first}/cancel`, token: ctx.adminToken });
    assert.equal(again.statusCode, 409, 'a finished run cannot be canceled');

    receiver.release(key);
    assert.equal((await waitForRun(a)).status, 'completed');
    assert.equal((await waitForRun(b)).status, 'completed');
    const completedCancel = await ctx.request({ method: 'POST', url: `/job-runs/${a}/cancel`, token: ctx.adminToken });
    assert.equal(completedCancel.statusCode, 409);

    const retried = await ctx.request({ method: 'POST', url: `/job-runs/${first}/retry`, token: ctx.adminToken, payload: { only_failed: true } });
    assert.equal(retried.statusCode, 200, retried.body);
    assert.equal(retried.json().status, 'queued');
    const retry = await waitForRun(retried.json().job_run_id);
    assert.equal(retry.status, 'completed');
    assert.equal(retry.trigger, 'retry');
    assert.equal(retry.retry_of, first);
    assert.equal(retry.job_id, job.id);

    const nothingLeft = await ctx.request({ method: 'POST', url: `/job-runs/${a}/retry`, token: ctx.adminToken, payload: { only_failed: true } });
    assert.equal(nothingLeft.statusCode, 409, 'a run where every target succeeded has nothing to retry');
    assert.equal((await ctx.request({ method: 'POST', url: '/job-runs/999999/cancel', token: ctx.adminToken })).statusCode, 404);
  });
});
