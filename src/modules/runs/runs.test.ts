import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';

const FINAL = ['completed', 'failed', 'canceled', 'timed_out'];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A request the local receiver saw. */
interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A local HTTP server standing in for the APIs http and webhook steps call:
 * `/text` answers a body with an OC_OUTPUT line, `/echo` answers the request body,
 * `/status/<code>` answers that status with the Authorization header it got,
 * `/hold/<key>` answers only once `release(key)` was called (`/hold/never` never does).
 */
async function startReceiver() {
  const requests: Received[] = [];
  const released = new Set<string>();
  const waiters = new Map<string, Array<() => void>>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      const [, kind, arg] = path.split('/');
      if (kind === 'text') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from the receiver\nOC_OUTPUT ver=42\n');
      } else if (kind === 'echo') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      } else if (kind === 'status') {
        res.writeHead(Number(arg), { 'content-type': 'text/plain' }).end(`status ${arg} auth=${req.headers.authorization ?? 'none'}\n`);
      } else if (kind === 'hold') {
        const key = arg ?? '';
        const answer = () => {
          if (!res.writableEnded) {
            res.writeHead(200, { 'content-type': 'text/plain' }).end(`released ${key}\n`);
          }
        };
        if (released.has(key)) {
          answer();
        } else {
          waiters.set(key, [...(waiters.get(key) ?? []), answer]);
        }
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    requests,
    /** Requests whose path starts with `prefix`. */
    seen: (prefix: string) => requests.filter((r) => r.url.startsWith(prefix)),
    release(key: string) {
      released.add(key);
      for (const answer of waiters.get(key) ?? []) {
        answer();
      }
      waiters.delete(key);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('job runs without SSH: queueing rules, http and webhook steps, conflicts', () => {
  let ctx: TestContext;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const apiToken = `tok-${randomBytes(12).toString('hex')}`;
  let tokenCredential: number;

  const createJob = async (payload: Record<string, unknown>) => {
    const res = await ctx.request({ method: 'POST', url: '/jobs', token: ctx.adminToken, payload: { name: unique('job'), ...payload } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; name: string };
  };
  const runJob = (jobId: number, payload: Record<string, unknown> = {}, token = ctx.adminToken) => ctx.request({ method: 'POST', url: `/jobs/${jobId}/run`, token, payload });
  const startRun = async (jobId: number, payload: Record<string, unknown> = {}) => {
    const res = await runJob(jobId, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().job_run_id as number;
  };
  const getRun = async (id: number) => {
    const res = await ctx.request({ method: 'GET', url: `/job-runs/${id}`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** Polls the run every 100 ms until `done` holds (default: a final status). */
  const waitForRun = async (id: number, done: (run: Record<string, unknown>) => boolean = (r) => FINAL.includes(r.status as string), timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await getRun(id);
      if (done(run)) {
        return run;
      }
      if (Date.now() > deadline) {
        assert.fail(`run ${id} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(run)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const waitFor = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        assert.fail(`timed out waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const createHttpTarget = async () => {
    const res = await ctx.request({ method: 'POST', url: '/targets', token: ctx.adminToken, payload: { name: unique('web'), host: '127.0.0.1', port: 8080, os_type: 'linux', protocol: 'http' } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; name: string };
  };

  before(async () => {
    ctx = await createTestContext({ worker: true });
    receiver = await startReceiver();
    const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('api'), type: 'api_token', token: apiToken } });
    assert.equal(res.statusCode, 200, res.body);
    tokenCredential = res.json().id;
  });
  after(async () => {
    await receiver?.close();
    await ctx?.close();
  });

  test('POST /jobs/{id}/run: unknown or missing targets are 400 naming target_ids, inactive jobs 409, unknown jobs 404', async () => {
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

  test('a job with only http steps and no targets runs its steps once with target null; templates see job, run, params and earlier steps', async () => {
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

  test('unknown group_ids are refused (400 naming group_ids), not silently ignored', async () => {
    const job = await createJob({ steps: [{ type: 'http', name: 'ping', method: 'GET', url: receiver.url('/text') }] });
    const res = await runJob(job.id, { group_ids: [999_999] });
    assert.equal(res.statusCode, 400, `an unknown group must not turn into a target-less run: ${res.statusCode} ${res.body}`);
    assert.equal(res.json().error.field, 'group_ids');
  });

  test('webhook steps sign the exact body bytes with HMAC-SHA256 of the api_token credential', async () => {
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

  test('when skips a step that renders to "", false, 0 or no, and runs it otherwise', async () => {
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
    const key = unique('hold');
    const job = await createJob({ steps: [{ type: 'http', name: 'wait', method: 'GET', url: receiver.url(`/hold/${key}?run={{ run.id }}`), timeout_s: 60 }] });
    const first = await startRun(job.id);
    await waitFor('the first run to call the receiver', () => receiver.seen(`/hold/${key}?run=${first}`).length === 1);
    assert.equal((await getRun(first)).status, 'running');

    const second = await runJob(job.id);
    assert.equal(second.statusCode, 409, second.body);
    assert.equal(second.json().error.details.running_run_id, first);

    const concurrent = await createJob({ allow_concurrent_runs: true, steps: [{ type: 'http', name: 'wait', method: 'GET', url: receiver.url(`/hold/${key}?c={{ run.id }}`), timeout_s: 60 }] });
    const a = await startRun(concurrent.id);
    const b = await startRun(concurrent.id);
    await waitFor('both concurrent runs to call the receiver', () => receiver.seen(`/hold/${key}?c=${a}`).length === 1 && receiver.seen(`/hold/${key}?c=${b}`).length === 1);

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

  test('targets are resolved from target_ids and group_ids (deduplicated) and frozen at queue time', async () => {
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
    await waitFor('both targets to call the receiver', () => receiver.seen(`/hold/${key}`).length === 2);

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

  test('GET /job-runs lists newest first with job_id and status filters and paging; GET /job-runs/{id} 404s', async () => {
    const ok = await createJob({ steps: [{ type: 'http', name: 'ok', method: 'GET', url: receiver.url('/text') }] });
    const bad = await createJob({ steps: [{ type: 'http', name: 'bad', method: 'GET', url: receiver.url('/status/500') }] });
    const ids: number[] = [];
    for (const jobId of [ok.id, ok.id, bad.id, ok.id]) {
      const id = await startRun(jobId);
      await waitForRun(id);
      ids.push(id);
    }
    const list = async (query: string) => {
      const res = await ctx.request({ method: 'GET', url: `/job-runs?${query}`, token: ctx.adminToken });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    };
    const okRuns = await list(`job_id=${ok.id}`);
    assert.equal(okRuns.total, 3);
    assert.equal(okRuns.page, 1);
    assert.equal(okRuns.limit, 20);
    assert.deepEqual(
      okRuns.runs.map((r: { id: number }) => r.id),
      [ids[3], ids[1], ids[0]],
    );
    const first = okRuns.runs[0];
    assert.equal(first.job_id, ok.id);
    assert.equal(first.status, 'completed');
    assert.equal(first.trigger, 'manual');
    assert.match(first.queued_at, ISO_UTC);

    const failed = await list(`job_id=${bad.id}&status=failed`);
    assert.deepEqual(
      failed.runs.map((r: { id: number }) => r.id),
      [ids[2]],
    );
    assert.equal((await list(`job_id=${ok.id}&status=failed`)).total, 0);
    const paged = await list(`job_id=${ok.id}&limit=1&page=2`);
    assert.equal(paged.total, 3);
    assert.deepEqual(
      paged.runs.map((r: { id: number }) => r.id),
      [ids[1]],
    );
    const all = await list('limit=200');
    assert.ok(all.total >= 4);
    const allIds = all.runs.map((r: { id: number }) => r.id);
    assert.deepEqual(
      allIds,
      [...allIds].sort((x: number, y: number) => y - x),
      'newest first',
    );

    assert.equal((await ctx.request({ method: 'GET', url: '/job-runs?limit=201', token: ctx.adminToken })).statusCode, 400);
    assert.equal((await ctx.request({ method: 'GET', url: '/job-runs?status=bogus', token: ctx.adminToken })).statusCode, 400);
    assert.equal((await ctx.request({ method: 'GET', url: '/job-runs/999999', token: ctx.adminToken })).statusCode, 404);
    assert.equal((await ctx.request({ method: 'GET', url: '/job-runs' })).statusCode, 401);
  });
});
