import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { freePort } from '../../../test/sshd.ts';
import { FINISHED, helpers, type Received, startSink } from './executor.fixtures.ts';

describe('executor without a remote host', () => {
  let ctx: TestContext;
  let viewer: { token: string };
  let operator: { token: string };
  const h = helpers(() => ctx);
  let sink: Awaited<ReturnType<typeof startSink>>;

  before(async () => {
    ctx = await createTestContext({ worker: true });
    viewer = await ctx.createUser('viewer');
    operator = await ctx.createUser('operator');
    sink = await startSink((req) => {
      if (req.url.startsWith('/text')) {
        return { status: 200, body: 'plain words', type: 'text/plain' };
      }
      if (req.url.startsWith('/fail')) {
        return { status: 503, body: '{"error":"down"}' };
      }
      return { status: 201, body: JSON.stringify({ ok: true, echoed: req.body ? JSON.parse(req.body) : null }) };
    });
  });
  after(async () => {
    await ctx?.close();
    await sink?.close();
  });

  describe('POST /execute/webhook', () => {
    test('sends method, JSON payload and headers; answers status_code, parsed response and timing', async () => {
      const res = await h.post('/execute/webhook', { url: `${sink.url}/hook?x=1`, method: 'PUT', payload: { event: 'deploy', n: 3 }, headers: { 'X-Custom': 'yes', Authorization: 'Bearer abc' } }, operator.token);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.status_code, 201);
      assert.deepEqual(body.response, { ok: true, echoed: { event: 'deploy', n: 3 } });
      assert.ok(Number.isInteger(body.response_time_ms) && body.response_time_ms >= 0);
      assert.equal(body.error, undefined);
      const hits = sink.received.filter((r) => r.url === '/hook?x=1');
      assert.equal(hits.length, 1, 'exactly one request');
      const got = hits[0] as Received;
      assert.equal(got.method, 'PUT');
      assert.equal(got.url, '/hook?x=1');
      assert.deepEqual(JSON.parse(got.body), { event: 'deploy', n: 3 });
      assert.match(String(got.headers['content-type']), /^application\/json/);
      assert.equal(got.headers['x-custom'], 'yes');
      assert.equal(got.headers.authorization, 'Bearer abc');
    });

    test('GET and DELETE webhooks work', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await h.post('/execute/webhook', { url: `${sink.url}/m-${method}`, method }, operator.token);
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().status_code, 201, `${method}: ${res.body}`);
        assert.deepEqual(
          sink.received.filter((r) => r.url === `/m-${method}`).map((r) => r.method),
          [method],
        );
      }
    });

    test('the method defaults to POST', async () => {
      const res = await h.post('/execute/webhook', { url: `${sink.url}/default`, payload: { a: 1 } }, operator.token);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().status_code, 201);
      assert.deepEqual(
        sink.received.filter((r) => r.url === '/default').map((r) => r.method),
        ['POST'],
      );
    });

    test('a non-JSON answer comes back as text; an error status is reported, not raised', async () => {
      const text = await h.post('/execute/webhook', { url: `${sink.url}/text`, method: 'POST', payload: {} }, operator.token);
      assert.equal(text.statusCode, 200, text.body);
      assert.equal(text.json().status_code, 200);
      assert.equal(text.json().response, 'plain words');
      const failing = await h.post('/execute/webhook', { url: `${sink.url}/fail`, method: 'POST', payload: {} }, operator.token);
      assert.equal(failing.statusCode, 200, failing.body);
      assert.equal(failing.json().status_code, 503);
      assert.deepEqual(failing.json().response, { error: 'down' });
    });

    test('nothing listening: 200 with status_code null and an error', async () => {
      const port = await freePort();
      const res = await h.post('/execute/webhook', { url: `http://127.0.0.1:${port}/x`, method: 'POST', payload: {} }, operator.token);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.status_code, null);
      assert.equal(typeof body.error, 'string');
      assert.match(body.error, /ECONNREFUSED|refused/i);
      assert.ok(Number.isInteger(body.response_time_ms));
    });

    test('bad bodies are 400 naming the field', async () => {
      assertError(await h.post('/execute/webhook', { url: 'ftp://127.0.0.1/x', method: 'POST' }), 400, 'validation_error', 'url');
      assertError(await h.post('/execute/webhook', { url: `${sink.url}/x`, method: 'TRACE' }), 400, 'validation_error', 'method');
      assertError(await h.post('/execute/webhook', { url: `${sink.url}/x`, payloda: {} }), 400, 'validation_error', 'payloda');
      assertError(await h.post('/execute/webhook', { method: 'POST' }), 400, 'validation_error', 'url');
    });
  });

  describe('validation before any connection', () => {
    let noCredTarget: number;
    before(async () => {
      noCredTarget = await h.target({ port: await freePort() });
    });

    test('/execute/ssh on a target with no credential and none given is 400 naming credential_id', async () => {
      assertError(await h.post('/execute/ssh', { target_id: noCredTarget, command: 'true' }, operator.token), 400, 'validation_error', 'credential_id');
    });

    test('/execute/sftp on a target with no credential and none given is 400 naming credential_id', async () => {
      assertError(await h.post('/execute/sftp', { target_id: noCredTarget, operation: 'upload', local_path: 'a.txt', remote_path: '/tmp/a.txt' }), 400, 'validation_error', 'credential_id');
    });

    test('/execute/sftp refuses local paths outside the file store (400 local_path)', async () => {
      for (const local_path of ['../outside.txt', 'a/../../outside.txt', '/etc/passwd', '..']) {
        for (const operation of ['upload', 'download']) {
          const res = await h.post('/execute/sftp', { target_id: noCredTarget, operation, local_path, remote_path: '/tmp/x' });
          assertError(res, 400, 'validation_error', 'local_path');
        }
      }
      assert.equal(existsSync(join(ctx.dataDir, 'outside.txt')), false);
    });

    test('unknown targets are refused', async () => {
      const res = await h.post('/execute/ssh', { target_id: 999999, command: 'true' });
      assert.ok([400, 404].includes(res.statusCode), res.body);
      const exec = await h.post('/execute', { target_id: 999999, steps: [{ type: 'command', command: 'true' }] });
      assert.ok([400, 404].includes(exec.statusCode), exec.body);
    });

    test('bad executor bodies are 400 naming the field', async () => {
      assertError(await h.post('/execute/ssh', { target_id: noCredTarget, command: '' }), 400, 'validation_error', 'command');
      assertError(await h.post('/execute/ssh', { target_id: noCredTarget, command: 'x', timeout_s: 0 }), 400, 'validation_error', 'timeout_s');
      assertError(await h.post('/execute/ssh', { target_id: noCredTarget, command: 'x', shell: 'bash' }), 400, 'validation_error', 'shell');
      assertError(await h.post('/execute/sftp', { target_id: noCredTarget, operation: 'move', local_path: 'a', remote_path: 'b' }), 400, 'validation_error', 'operation');
      assertError(await h.post('/execute', { target_id: noCredTarget, steps: [] }), 400, 'validation_error', 'steps');
      assertError(await h.post('/execute', { target_id: noCredTarget, steps: [{ type: 'command', command: 'ls', comand: 'ls' }] }), 400, 'validation_error', 'steps[0].comand');
      assertError(await h.post('/execute', { target_id: noCredTarget, steps: [{ type: 'shell' }] }), 400, 'validation_error', 'steps.0.type');
      assertError(await h.post('/execute', { target_id: noCredTarget, steps: [{ type: 'command', command: 'echo {{ params.x }}' }] }), 400, 'validation_error', 'steps[0].command');
      assertError(
        await h.post('/execute', { target_id: noCredTarget, steps: [{ type: 'sftp', operation: 'upload', local_path: '../x', remote_path: '/tmp/x' }] }),
        400,
        'validation_error',
        'steps[0].local_path',
      );
    });

    test('/execute/ssh on a non-SSH target reports the failure in the body', async () => {
      const cred = await h.credential({ type: 'winrm', username: 'u', password: 'winrm-pass-123' });
      const target = await h.target({ os_type: 'windows', protocol: 'winrm', port: await freePort(), credential_id: cred });
      const res = await h.post('/execute/ssh', { target_id: target, command: 'dir' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().success, false);
      assert.equal(res.json().exit_code, null);
      assert.match(res.json().error, /protocol_not_supported/);
    });
  });

  describe('/execute and /executions without a connection', () => {
    test('webhook steps run with templates rendered against the target; output and steps reported', async () => {
      const target = await h.target({ port: 22 });
      const name = (await ctx.request({ method: 'GET', url: `/targets/${target}`, token: ctx.adminToken })).json().name as string;
      const exec = await h.execute(target, [
        { type: 'webhook', name: 'first', url: `${sink.url}/adhoc`, payload: { target: '{{ target.name }}', host: '{{ target.host }}' } },
        { type: 'webhook', url: `${sink.url}/text-adhoc`, payload: { prev: '{{ steps.first.outputs.status_code }}' } },
      ]);
      assert.equal(exec.status, 'completed', JSON.stringify(exec));
      assert.match(exec.id, /^exec_[0-9]+$/);
      const received = sink.received.filter((r) => r.url === '/adhoc').at(-1) as Received;
      assert.deepEqual(JSON.parse(received.body), { target: name, host: '127.0.0.1' });
      assert.deepEqual(JSON.parse((sink.received.find((r) => r.url === '/text-adhoc') as Received).body), { prev: '201' });
      assert.equal(exec.steps.length, 2);
      assert.deepEqual(
        exec.steps.map((s) => [s.step_index, s.name, s.status]),
        [
          [0, 'first', 'succeeded'],
          [1, 'step_1', 'succeeded'],
        ],
      );
      assert.ok(exec.output.endsWith('}plain words'), exec.output);
      assert.deepEqual(JSON.parse(exec.output.slice(0, -'plain words'.length)), { ok: true, echoed: { target: name, host: '127.0.0.1' } });
    });

    test('a failing step fails the execution', async () => {
      const target = await h.target({ port: 22 });
      const exec = await h.execute(target, [
        { type: 'webhook', url: `${sink.url}/fail` },
        { type: 'webhook', url: `${sink.url}/never` },
      ]);
      assert.equal(exec.status, 'failed');
      assert.equal(exec.steps[0]?.status, 'failed');
      assert.notEqual(exec.steps[1]?.status, 'succeeded');
      assert.ok(!sink.received.some((r) => r.url === '/never'), 'a failed step stops the target');
    });

    test('viewers may poll executions; unknown and non-ad-hoc ids are 404; bad ids 400', async () => {
      const target = await h.target({ port: 22 });
      const res = await h.post('/execute', { target_id: target, steps: [{ type: 'webhook', url: `${sink.url}/v` }] }, operator.token);
      assert.equal(res.statusCode, 200, res.body);
      const exec = await h.execution(res.json().execution_id, viewer.token);
      assert.equal(exec.status, 'completed');
      assert.equal((await ctx.request({ method: 'GET', url: `/executions/${exec.id.replace('exec_', '')}`, token: viewer.token })).json().id, exec.id);

      assertError(await ctx.request({ method: 'GET', url: '/executions/exec_999999', token: viewer.token }), 404, 'not_found');
      assertError(await ctx.request({ method: 'GET', url: '/executions/exec_abc', token: viewer.token }), 400, 'validation_error');

      const job = await h.post('/jobs', { name: unique('job'), steps: [{ type: 'webhook', url: `${sink.url}/job` }] });
      assert.equal(job.statusCode, 200, job.body);
      const run = await h.post(`/jobs/${job.json().id}/run`, {});
      assert.equal(run.statusCode, 200, run.body);
      assertError(await ctx.request({ method: 'GET', url: `/executions/exec_${run.json().job_run_id}`, token: viewer.token }), 404, 'not_found');
      // let the job run finish so it does not outlive this test
      const deadline = Date.now() + 30_000;
      while (!FINISHED.has((await ctx.request({ method: 'GET', url: `/job-runs/${run.json().job_run_id}`, token: viewer.token })).json().status)) {
        assert.ok(Date.now() < deadline, 'job run finished');
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  });

  describe('access', () => {
    test('viewers get 403 on every POST executor route; no token is 401', async () => {
      const target = await h.target({ port: 22 });
      const bodies: Record<string, Record<string, unknown>> = {
        '/execute': { target_id: target, steps: [{ type: 'webhook', url: `${sink.url}/viewer` }] },
        '/execute/ssh': { target_id: target, command: 'true' },
        '/execute/sftp': { target_id: target, operation: 'upload', local_path: 'a', remote_path: '/tmp/a' },
        '/execute/webhook': { url: `${sink.url}/viewer`, method: 'POST', payload: {} },
      };
      for (const [url, payload] of Object.entries(bodies)) {
        assertError(await h.post(url, payload, viewer.token), 403, 'permission_error');
        assertError(await ctx.request({ method: 'POST', url, payload }), 401, 'auth_error');
      }
      assertError(await ctx.request({ method: 'GET', url: '/executions/exec_1' }), 401, 'auth_error');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!sink.received.some((r) => r.url === '/viewer'), 'nothing was sent on behalf of a viewer');
    });
  });
});
