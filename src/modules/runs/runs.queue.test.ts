import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { runsEnv, waitUntil } from './runs.fixtures.ts';

describe('job runs without SSH: queueing rules, parameters, target resolution', () => {
  const env = runsEnv();
  const { api, runJob, createJob, startRun, waitForRun } = env;
  const createHttpTarget = async () => {
    const res = await api('POST', '/targets', { name: unique('web'), host: '127.0.0.1', port: 8080, os_type: 'linux', protocol: 'http' });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; name: string };
  };

  test('POST /jobs/{id}/run: unknown or missing targets are 400 naming target_ids, inactive jobs 409, unknown jobs 404', async () => {
    const { ctx, receiver } = env;
    const commandJob = await createJob({ steps: [{ type: 'command', name: 'hello', command: 'echo hi' }] });
    const noTargets = await runJob(commandJob.id);
    assert.equal(noTargets.statusCode, 400, noTargets.body);
    assert.equal(noTargets.json().error.code, 'validation_error');
    assert.equal(noTargets.json().error.field, 'target_ids');
    const emptyLists = await runJob(commandJob.id, { target_ids: [], group_ids: [] });
    assert.equal(emptyLists.statusCode, 400);
    assert.equal(emptyLists.json().error.field, 'target_ids');

    const known = await createHttpTarget();
    const unknown = await runJob(commandJob.id, { target_ids: [known.id, 999_999] });
    assert.equal(unknown.statusCode, 400, unknown.body);
    assert.equal(unknown.json().error.field, 'target_ids');
    assert.match(unknown.json().error.message, /999999/);

    const typo = await runJob(commandJob.id, { target_id: [known.id] });
    assert.equal(typo.statusCode, 400, 'unknown body fields are refused');
    assert.equal((await runJob(999_999, {})).statusCode, 404);

    const viewer = await ctx.createUser('viewer');
    assert.equal((await runJob(commandJob.id, { target_ids: [known.id] }, viewer.token)).statusCode, 403, 'viewers cannot run jobs');

    const inactive = await createJob({ status: 'inactive', steps: [{ type: 'http', method: 'GET', url: receiver.url('/text') }] });
    const refused = await runJob(inactive.id);
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(refused.json().error.code, 'invalid_state');

    const listed = await ctx.request({ method: 'GET', url: `/job-runs?job_id=${commandJob.id}`, token: ctx.adminToken });
    assert.equal(listed.json().total, 0, 'refused requests queue nothing');
    assert.equal((await ctx.request({ method: 'GET', url: `/job-runs?job_id=${inactive.id}`, token: ctx.adminToken })).json().total, 0);
  });

  test('parameters: missing, mistyped and undeclared values are 400 naming parameters.<name>; defaults merged; secrets masked', async () => {
    const { ctx, receiver } = env;
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
    const job = await createJob({
      parameters: {
        service: { type: 'string', required: true },
        count: { type: 'number', default: 3 },
        verbose: { type: 'boolean', default: false },
        api_key: { type: 'string', secret: true, required: true },
      },
      steps: [{ type: 'http', name: 'call', method: 'POST', url: receiver.url('/echo/params'), body: 'svc={{ params.service }} n={{ params.count }} v={{ params.verbose }} key={{ params.api_key }}' }],
    });
    const missing = await runJob(job.id, { parameters: { api_key: secret } });
    assert.equal(missing.statusCode, 400, missing.body);
    assert.equal(missing.json().error.field, 'parameters.service');
    const mistyped = await runJob(job.id, { parameters: { service: 'web', api_key: secret, count: '3' } });
    assert.equal(mistyped.statusCode, 400, mistyped.body);
    assert.equal(mistyped.json().error.field, 'parameters.count');
    const wrongBool = await runJob(job.id, { parameters: { service: 'web', api_key: secret, verbose: 'yes' } });
    assert.equal(wrongBool.json().error.field, 'parameters.verbose');
    const undeclared = await runJob(job.id, { parameters: { service: 'web', api_key: secret, colour: 'red' } });
    assert.equal(undeclared.statusCode, 400, undeclared.body);
    assert.equal(undeclared.json().error.field, 'parameters.colour');
    for (const res of [missing, mistyped, wrongBool, undeclared]) {
      assert.ok(!res.body.includes(secret), 'a refused request does not echo the secret');
    }

    const runId = await startRun(job.id, { parameters: { service: 'web', api_key: secret } });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.parameters, { service: 'web', count: 3, verbose: false, api_key: '***' });
    const [request] = receiver.seen('/echo/params');
    assert.equal(request?.body.toString(), `svc=web n=3 v=false key=${secret}`, 'the step saw the real secret and the defaults');
    const step = (run.steps as Array<{ stdout: string }>)[0];
    assert.equal(step?.stdout, 'svc=web n=3 v=false key=***', 'the echoed secret is masked in stored stdout');

    const listed = await ctx.request({ method: 'GET', url: `/job-runs?job_id=${job.id}`, token: ctx.adminToken });
    assert.deepEqual(listed.json().runs[0].parameters.api_key, '***');
    const output = await ctx.request({ method: 'GET', url: `/job-runs/${runId}/output?step_index=0`, token: ctx.adminToken });
    assert.ok(!output.body.includes(secret), 'the output tail masks the secret');
    assert.match(output.json().data, /key=\*\*\*/);
    assert.ok(!ctx.logs.text().includes(secret), 'the secret never reaches the logs');
  });

  test('unknown group_ids are refused (400 naming group_ids), not silently ignored', async () => {
    const { receiver } = env;
    const job = await createJob({ steps: [{ type: 'http', name: 'ping', method: 'GET', url: receiver.url('/text') }] });
    const res = await runJob(job.id, { group_ids: [999_999] });
    assert.equal(res.statusCode, 400, `an unknown group must not turn into a target-less run: ${res.statusCode} ${res.body}`);
    assert.equal(res.json().error.field, 'group_ids');
  });

  test('targets are resolved from target_ids and group_ids (deduplicated) and frozen at queue time', async () => {
    const { ctx, receiver } = env;
    const key = unique('freeze');
    const [t1, t2, t3] = [await createHttpTarget(), await createHttpTarget(), await createHttpTarget()];
    const group = await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: unique('grp') } });
    assert.equal(group.statusCode, 200, group.body);
    const groupId = group.json().id as number;
    for (const t of [t1, t2]) {
      const added = await ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${t?.id}`, token: ctx.adminToken });
      assert.equal(added.statusCode, 200, added.body);
    }
    const job = await createJob({ steps: [{ type: 'http', name: 'per_target', method: 'GET', url: receiver.url(`/hold/${key}?t={{ target.name }}&id={{ target.id }}`), timeout_s: 60 }] });
    const runId = await startRun(job.id, { target_ids: [t1?.id], group_ids: [groupId] });
    await waitUntil('both targets to call the receiver', () => receiver.seen(`/hold/${key}`).length === 2);

    const added = await ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${t3?.id}`, token: ctx.adminToken });
    assert.equal(added.statusCode, 200, added.body);
    receiver.release(key);
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const expected = [t1, t2].map((t) => t?.id).sort((x, y) => (x ?? 0) - (y ?? 0));
    assert.deepEqual(run.target_ids, expected);
    assert.deepEqual(
      (run.targets as Array<Record<string, unknown>>).map((t) => [t.target_id, t.name, t.status]),
      [t1, t2].map((t) => [t?.id, t?.name, 'succeeded']),
    );
    assert.deepEqual((run.summary as Record<string, number>).succeeded, 2);
    assert.deepEqual(
      receiver
        .seen(`/hold/${key}`)
        .map((r) => r.url)
        .sort(),
      [t1, t2].map((t) => `/hold/${key}?t=${t?.name}&id=${t?.id}`).sort(),
      'each frozen target ran the step once with its own target context; the later member did not',
    );
    assert.deepEqual(
      (run.steps as Array<Record<string, unknown>>).map((s) => s.target_id),
      [t1?.id, t2?.id],
    );
  });
});
