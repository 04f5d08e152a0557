import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';

import { ISO_UTC, runsEnv } from './runs.fixtures.ts';

describe('job runs without SSH: http and webhook steps', () => {
  const env = runsEnv();
  const { runJob, createJob, startRun, waitForRun, apiToken } = env;

  test('a job with only http steps and no targets runs its steps once with target null; templates see job, run, params and earlier steps', async () => {
    const { ctx, receiver } = env;
    const job = await createJob({
      parameters: { who: { type: 'string', default: 'ops' } },
      steps: [
        { type: 'http', name: 'fetch', method: 'GET', url: receiver.url('/text') },
        {
          type: 'http',
          name: 'report',
          method: 'POST',
          url: receiver.url('/echo/report?run={{ run.id }}'),
          body: 'ver={{ steps.fetch.outputs.ver }} code={{ steps.fetch.exit_code }} first={{ steps[0].stdout | split: "\n" | first }} job={{ job.name }}#{{ job.id }} run={{ run.id }}/{{ run.trigger }} who={{ params.who }}',
        },
      ],
    });
    const res = await runJob(job.id);
    assert.equal(res.statusCode, 200, res.body);
    const queued = res.json();
    assert.ok(Number.isInteger(queued.job_run_id));
    assert.equal(queued.status, 'queued');
    assert.equal(typeof queued.message, 'string');

    const run = await waitForRun(queued.job_run_id);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.id, queued.job_run_id);
    assert.equal(run.job_id, job.id);
    assert.equal(run.trigger, 'manual');
    assert.deepEqual(run.summary, { succeeded: 1, failed: 0, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0 });
    const targets = run.targets as Array<Record<string, unknown>>;
    assert.equal(targets.length, 1);
    assert.equal(targets[0]?.target_id, null);
    assert.equal(targets[0]?.status, 'succeeded');
    const steps = run.steps as Array<Record<string, unknown>>;
    assert.deepEqual(
      steps.map((s) => [s.step_index, s.name, s.target_id, s.status, s.exit_code]),
      [
        [0, 'fetch', null, 'succeeded', 0],
        [1, 'report', null, 'succeeded', 0],
      ],
    );
    assert.equal(steps[0]?.stdout, 'hello from the receiver\nOC_OUTPUT ver=42\n');
    assert.deepEqual(steps[0]?.outputs, { ver: '42', status_code: '200' });
    for (const s of steps) {
      assert.match(String(s.started_at), ISO_UTC);
      assert.match(String(s.finished_at), ISO_UTC);
      assert.ok(Number.isInteger(s.duration_ms) && (s.duration_ms as number) >= 0);
      assert.equal(s.truncated, false);
      assert.equal(s.error, null);
    }
    for (const field of ['queued_at', 'started_at', 'finished_at']) {
      assert.match(String(run[field]), ISO_UTC, field);
    }
    assert.ok(Date.parse(String(run.queued_at)) <= Date.parse(String(run.started_at)));
    assert.ok(Date.parse(String(run.started_at)) <= Date.parse(String(run.finished_at)));

    const [report] = receiver.seen(`/echo/report?run=${run.id}`);
    assert.ok(report, 'the url template was rendered with the run id');
    assert.equal(report.body.toString(), `ver=42 code=0 first=hello from the receiver job=${job.name}#${job.id} run=${run.id}/manual who=ops`);

    const full = await ctx.request({ method: 'GET', url: `/job-runs/${run.id}/output?step_index=0&offset=0`, token: ctx.adminToken });
    assert.equal(full.statusCode, 200, full.body);
    assert.equal(full.json().data, steps[0]?.stdout);
    assert.equal(full.json().next_offset, String(steps[0]?.stdout).length);
    assert.equal(full.json().target_id, null);
    assert.equal(full.json().complete, true);
    const tail = (await ctx.request({ method: 'GET', url: `/job-runs/${run.id}/output?step_index=0&offset=6`, token: ctx.adminToken })).json();
    assert.equal(tail.data, 'from the receiver\nOC_OUTPUT ver=42\n');
    assert.equal(tail.offset, 6);
    assert.equal(tail.next_offset, full.json().next_offset);
    const none = await ctx.request({ method: 'GET', url: `/job-runs/${run.id}/output?step_index=7`, token: ctx.adminToken });
    assert.equal(none.statusCode, 404);
  });

  test('http steps: expect_status, bearer auth from an api_token credential, a failed step stops the target unless continue_on_error', async () => {
    const { receiver, tokenCredential } = env;
    const job = await createJob({
      steps: [
        { type: 'http', name: 'created', method: 'GET', url: receiver.url('/status/201?s=created'), expect_status: [201], credential_id: tokenCredential },
        { type: 'http', name: 'tolerated', method: 'GET', url: receiver.url('/status/503?s=tolerated'), continue_on_error: true },
        { type: 'http', name: 'plain_ok', method: 'GET', url: receiver.url('/status/200?s=plain_ok') },
        { type: 'http', name: 'unexpected', method: 'GET', url: receiver.url('/status/201?s=unexpected'), expect_status: [200, 204] },
        { type: 'http', name: 'never', method: 'GET', url: receiver.url('/status/200?s=never') },
      ],
    });
    const run = await waitForRun(await startRun(job.id));
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.equal((run.summary as Record<string, number>).failed, 1);
    assert.equal((run.summary as Record<string, number>).succeeded, 0);
    const steps = run.steps as Array<Record<string, unknown>>;
    assert.deepEqual(
      steps.map((s) => [s.name, s.status, s.exit_code]),
      [
        ['created', 'succeeded', 0],
        ['tolerated', 'failed', 1],
        ['plain_ok', 'succeeded', 0],
        ['unexpected', 'failed', 1],
        ['never', 'skipped', null],
      ],
    );
    assert.equal((steps[0]?.outputs as Record<string, string>).status_code, '201');
    assert.match(String(steps[3]?.error), /201/);
    assert.equal(receiver.seen('/status/200?s=never').length, 0, 'the step after the failure never ran');

    const [created] = receiver.seen('/status/201?s=created');
    assert.equal(created?.headers.authorization, `Bearer ${apiToken}`, 'the credential authenticated the request');
    assert.equal(receiver.seen('/status/503?s=tolerated')[0]?.headers.authorization, undefined, 'steps without a credential send none');
  });

  test('the credential an http step authenticates with is masked in that step\'s stored output, output events and logs', async () => {
    const { ctx, receiver, tokenCredential } = env;
    const job = await createJob({
      steps: [
        { type: 'http', name: 'echo_auth', method: 'GET', url: receiver.url('/status/200?s=mask'), credential_id: tokenCredential },
        { type: 'http', name: 'again', method: 'GET', url: receiver.url('/status/200?s=mask2'), credential_id: tokenCredential },
      ],
    });
    const runId = await startRun(job.id);
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(receiver.seen('/status/200?s=mask')[0]?.headers.authorization, `Bearer ${apiToken}`);
    const steps = run.steps as Array<{ stdout: string }>;
    const tail = (await ctx.request({ method: 'GET', url: `/job-runs/${runId}/output?step_index=0`, token: ctx.adminToken })).json();
    assert.deepEqual(
      { step0: steps[0]?.stdout, step1: steps[1]?.stdout, tail0: tail.data },
      { step0: 'status 200 auth=Bearer ***\n', step1: 'status 200 auth=Bearer ***\n', tail0: 'status 200 auth=Bearer ***\n' },
      'the token is masked in every stored and streamed copy',
    );
    assert.ok(!ctx.logs.text().includes(apiToken), 'the token never reaches the logs');
  });

  test('webhook steps sign the exact body bytes with HMAC-SHA256 of the api_token credential', async () => {
    const { receiver, tokenCredential } = env;
    const job = await createJob({
      parameters: { env: { type: 'string', default: 'prod' } },
      steps: [
        {
          type: 'webhook',
          name: 'signed',
          url: receiver.url('/hook/signed'),
          headers: { 'X-Custom': 'yes' },
          payload: { env: '{{ params.env }}', run: '{{ run.id }}', note: 'ünïcödé ✓', nested: { list: [1, 'two'] } },
          secret_credential_id: tokenCredential,
        },
        { type: 'webhook', name: 'unsigned', url: receiver.url('/hook/unsigned'), payload: { job: '{{ job.name }}' } },
      ],
    });
    const run = await waitForRun(await startRun(job.id));
    assert.equal(run.status, 'completed', JSON.stringify(run));

    const [signed] = receiver.seen('/hook/signed');
    assert.ok(signed);
    assert.equal(signed.method, 'POST');
    assert.match(String(signed.headers['content-type']), /application\/json/);
    assert.equal(signed.headers['x-custom'], 'yes');
    const expected = `sha256=${createHmac('sha256', apiToken).update(signed.body).digest('hex')}`;
    assert.equal(signed.headers['x-opsconductor-signature'], expected, 'the signature is the HMAC of the bytes received');
    assert.deepEqual(JSON.parse(signed.body.toString('utf8')), { env: 'prod', run: String(run.id), note: 'ünïcödé ✓', nested: { list: [1, 'two'] } });

    const [unsigned] = receiver.seen('/hook/unsigned');
    assert.equal(unsigned?.headers['x-opsconductor-signature'], undefined, 'no secret, no signature');
    assert.deepEqual(JSON.parse(String(unsigned?.body)), { job: job.name });
  });
});
