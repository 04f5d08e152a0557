import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { freePort, SSH_TEST_USER, sshdSkip } from '../../../test/sshd.ts';
import { sshRunsEnv, stepOf, targetStatus } from './runs.fixtures.ts';

describe('job runs over SSH: command and sftp steps on several servers, failures, unreachable targets, retries', { skip: sshdSkip() }, () => {
  const env = sshRunsEnv({ servers: 3 });
  const { api, createCredential, createJob, startRun, waitForRun, createTarget, credentials } = env;

  test('done when: command, sftp upload from the file store, command reading the upload, on 3 sshd targets', async () => {
    const { ctx, sshds } = env;
    const fileName = `payload/${unique('data')}.txt`;
    const content = `payload line 1 ${randomBytes(4).toString('hex')}\npayload line 2\n`;
    const put = await ctx.request({ method: 'PUT', url: `/files/${fileName}`, token: ctx.adminToken, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(content) });
    assert.equal(put.statusCode, 200, put.body);

    const targets = [];
    for (const server of sshds) {
      const key = await createCredential({ type: 'ssh', username: SSH_TEST_USER, private_key: server.clientKey });
      targets.push(await createTarget({ port: server.port, credential: key }));
    }
    const remote = '/tmp/oc-run-{{ run.id }}-{{ target.port }}.txt';
    const job = await createJob({
      steps: [
        { type: 'command', name: 'prepare', command: 'echo "hello from {{ target.name }}"; echo "OC_OUTPUT port={{ target.port }}"; echo warn >&2' },
        { type: 'sftp', name: 'upload', operation: 'upload', local_path: fileName, remote_path: remote },
        { type: 'command', name: 'verify', command: `cat ${remote} && echo "prepared on {{ steps.prepare.outputs.port }}" && rm ${remote}` },
      ],
    });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.summary, { succeeded: 3, failed: 0, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0 });
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.equal(run.steps.length, 9);
    for (const target of targets) {
      const prepare = stepOf(run, target.id, 0);
      assert.equal(prepare.status, 'succeeded');
      assert.equal(prepare.exit_code, 0);
      assert.equal(prepare.stdout, `hello from ${target.name}\nOC_OUTPUT port=${target.port}\n`);
      assert.equal(prepare.stderr, 'warn\n');
      assert.deepEqual(prepare.outputs, { port: String(target.port) });
      const upload = stepOf(run, target.id, 1);
      assert.equal(upload.status, 'succeeded', upload.error ?? '');
      assert.equal(upload.exit_code, 0);
      assert.match(upload.stdout, new RegExp(`^uploaded ${Buffer.byteLength(content)} bytes`));
      const verify = stepOf(run, target.id, 2);
      assert.equal(verify.status, 'succeeded', verify.stderr);
      assert.equal(verify.exit_code, 0);
      assert.equal(verify.stdout, `${content}prepared on ${target.port}\n`);
      assert.ok(!existsSync(`/tmp/oc-run-${runId}-${target.port}.txt`), 'the verify step removed the upload');
      for (const step of [prepare, upload, verify]) {
        assert.ok(step.started_at && step.finished_at && step.duration_ms !== null);
      }
      assert.ok(Date.parse(String(prepare.finished_at)) <= Date.parse(String(upload.started_at)), 'steps of a target run in order');
      assert.ok(Date.parse(String(upload.finished_at)) <= Date.parse(String(verify.started_at)));
    }
  });

  test('node-first: a failed step stops only its target; unreachable (closed port, wrong password) is its own status; retry only_failed', async () => {
    const good = await createTarget();
    const bad = await createTarget();
    const closed = await createTarget({ port: await freePort() });
    const wrongPassword = await createTarget({ credential: credentials.wrong });
    const job = await createJob({
      allow_concurrent_runs: true,
      steps: [
        { type: 'command', name: 'check', command: `test "{{ target.id }}" != "${bad.id}" || { echo "bad target" >&2; exit 3; }` },
        { type: 'command', name: 'soft', command: 'echo soft; exit 5', continue_on_error: true },
        { type: 'command', name: 'last', command: 'echo "last on {{ target.name }} after {{ steps.soft.exit_code }}"' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [good.id, bad.id, closed.id, wrongPassword.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.equal(run.summary.succeeded, 1);
    assert.equal(run.summary.failed, 1);
    assert.equal(run.summary.unreachable, 2);

    assert.equal(targetStatus(run, good.id), 'succeeded');
    assert.deepEqual(
      [0, 1, 2].map((i) => [stepOf(run, good.id, i).status, stepOf(run, good.id, i).exit_code]),
      [
        ['succeeded', 0],
        ['failed', 5],
        ['succeeded', 0],
      ],
      'continue_on_error lets the target go on after a failed step',
    );
    assert.equal(stepOf(run, good.id, 2).stdout, `last on ${good.name} after 5\n`);

    assert.equal(targetStatus(run, bad.id), 'failed');
    const badCheck = stepOf(run, bad.id, 0);
    assert.equal(badCheck.status, 'failed');
    assert.equal(badCheck.exit_code, 3);
    assert.equal(badCheck.stderr, 'bad target\n');
    assert.deepEqual(
      [1, 2].map((i) => stepOf(run, bad.id, i).status),
      ['skipped', 'skipped'],
      'a failed step stops its target',
    );

    for (const target of [closed, wrongPassword]) {
      assert.equal(targetStatus(run, target.id), 'unreachable');
      assert.notEqual(stepOf(run, target.id, 0).status, 'succeeded');
      assert.deepEqual(
        [1, 2].map((i) => stepOf(run, target.id, i).status),
        ['skipped', 'skipped'],
      );
    }
    assert.match(String(run.targets.find((t) => t.target_id === closed.id)?.error), /offline|ECONNREFUSED/);
    assert.match(String(run.targets.find((t) => t.target_id === wrongPassword.id)?.error), /auth/);

    const retried = await api('POST', `/job-runs/${runId}/retry`, { only_failed: true });
    assert.equal(retried.statusCode, 200, retried.body);
    assert.equal(retried.json().status, 'queued');
    const retry = await waitForRun(retried.json().job_run_id);
    assert.equal(retry.trigger, 'retry');
    assert.equal(retry.retry_of, runId);
    assert.deepEqual(
      retry.target_ids,
      [bad.id, closed.id, wrongPassword.id].sort((a, b) => a - b),
      'only the targets that did not succeed are retried',
    );
    assert.deepEqual(
      retry.targets.map((t) => t.target_id),
      [bad.id, closed.id, wrongPassword.id].sort((a, b) => a - b),
    );
    assert.equal(retry.summary.failed, 1);
    assert.equal(retry.summary.unreachable, 2);

    const all = await api('POST', `/job-runs/${runId}/retry`, { only_failed: false });
    assert.equal(all.statusCode, 200, all.body);
    const full = await waitForRun(all.json().job_run_id);
    assert.equal(full.targets.length, 4, 'only_failed: false retries every target');
  });

  test('retries re-run a failed step until it succeeds', async () => {
    const target = await createTarget();
    const counter = `/tmp/oc-retries-${unique()}`;
    const job = await createJob({
      steps: [
        { type: 'command', name: 'flaky', command: `echo try >> ${counter}; test "$(wc -l < ${counter})" -ge 3`, retries: 3 },
        { type: 'command', name: 'count', command: `wc -l < ${counter}; rm -f ${counter}` },
      ],
    });
    const run = await waitForRun(await startRun(job.id, { target_ids: [target.id] }));
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).status, 'succeeded');
    assert.equal(stepOf(run, target.id, 1).stdout.trim(), '3', 'two failed attempts, then success; no further attempts');
  });
});
