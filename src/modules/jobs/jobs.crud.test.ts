import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { type Job, JOB_KEYS, cmd, jobsFixture } from './jobs.fixtures.ts';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('jobs', () => {
  const { ctx, operator, viewer, setup, close, post, create } = jobsFixture();
  before(setup);
  after(close);

  describe('CRUD', () => {
    test('POST /jobs creates an active job with step defaults applied', async () => {
      const name = unique('deploy');
      const res = await post({ name, description: 'deploys things', steps: [cmd('uptime'), cmd('df -h', { name: 'disk', timeout_s: 20, continue_on_error: true, retries: 2 })] });
      assert.equal(res.statusCode, 200, res.body);
      const job: Job = res.json();
      assert.deepEqual(Object.keys(job).sort(), JOB_KEYS);
      assert.ok(Number.isInteger(job.id) && job.id > 0);
      assert.equal(job.name, name);
      assert.equal(job.description, 'deploys things');
      assert.equal(job.status, 'active');
      assert.equal(job.concurrency, 50);
      assert.equal(job.allow_concurrent_runs, false);
      assert.equal(job.timeout_s, 3600);
      assert.deepEqual(job.parameters, {});
      assert.equal(job.created_by, operator.id);
      assert.match(job.created_at, ISO_UTC);
      assert.match(job.updated_at, ISO_UTC);
      assert.deepEqual(job.steps, [
        { type: 'command', command: 'uptime', name: 'step_0', timeout_s: 300, continue_on_error: false, retries: 0 },
        { type: 'command', command: 'df -h', name: 'disk', timeout_s: 20, continue_on_error: true, retries: 2 },
      ]);
    });

    test('explicit job settings are kept and returned by GET /jobs/{id}', async () => {
      const job = await create({
        name: unique('job'),
        steps: [cmd('echo {{ params.who }}', { shell: 'bash' })],
        parameters: { who: { type: 'string', required: true, default: 'world', description: 'who to greet' }, loud: { type: 'boolean', default: false, secret: true } },
        concurrency: 5,
        allow_concurrent_runs: true,
        timeout_s: 60,
        status: 'inactive',
      });
      assert.equal(job.status, 'inactive');
      assert.equal(job.concurrency, 5);
      assert.equal(job.allow_concurrent_runs, true);
      assert.equal(job.timeout_s, 60);
      const res = await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), job);
      assert.deepEqual(res.json().parameters.who, { type: 'string', required: true, default: 'world', description: 'who to greet' });
      assert.equal(res.json().steps[0].shell, 'bash');
    });

    test('GET /jobs/{id} of an unknown job is 404; a non-integer id is 400', async () => {
      assertError(await ctx.request({ method: 'GET', url: '/jobs/999999', token: viewer.token }), 404, 'not_found');
      assertError(await ctx.request({ method: 'GET', url: '/jobs/abc', token: viewer.token }), 400, 'validation_error');
    });

    test('PUT /jobs/{id} updates given fields, keeps the others, re-applies step defaults', async () => {
      const job = await create({ name: unique('job'), description: 'before', steps: [cmd('true')], concurrency: 7 });
      const newName = unique('renamed');
      const res = await ctx.request({
        method: 'PUT',
        url: `/jobs/${job.id}`,
        token: operator.token,
        payload: { name: newName, steps: [cmd('echo a'), cmd('echo b', { name: 'second' })], status: 'inactive' },
      });
      assert.equal(res.statusCode, 200, res.body);
      const updated: Job = res.json();
      assert.equal(updated.id, job.id);
      assert.equal(updated.name, newName);
      assert.equal(updated.description, 'before');
      assert.equal(updated.concurrency, 7);
      assert.equal(updated.status, 'inactive');
      assert.equal(updated.created_at, job.created_at);
      assert.ok(Date.parse(updated.updated_at) >= Date.parse(job.updated_at));
      assert.deepEqual(
        updated.steps.map((s) => [s.name, s.command, s.timeout_s, s.retries, s.continue_on_error]),
        [
          ['step_0', 'echo a', 300, 0, false],
          ['second', 'echo b', 300, 0, false],
        ],
      );
      const again = (await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token })).json();
      assert.deepEqual(again, updated);
    });

    test('PUT validates the whole job: new steps against existing parameters', async () => {
      const job = await create({ name: unique('job'), steps: [cmd('echo {{ params.x }}')], parameters: { x: { type: 'string' } } });
      const ok = await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: operator.token, payload: { steps: [cmd('echo again {{ params.x }}')] } });
      assert.equal(ok.statusCode, 200, ok.body);
      const bad = await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: operator.token, payload: { steps: [cmd('echo {{ params.y }}')] } });
      assertError(bad, 400, 'validation_error', 'steps[0].command');
      const dropParam = await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: operator.token, payload: { parameters: {} } });
      assertError(dropParam, 400, 'validation_error', 'steps[0].command');
      const still = (await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token })).json();
      assert.equal(still.steps[0].command, 'echo again {{ params.x }}');
      assert.deepEqual(still.parameters, { x: { type: 'string' } });
    });

    test('a job read with GET can be saved back unchanged with PUT', async () => {
      const job = await create({
        name: unique('job'),
        steps: [cmd('echo {{ params.x }}', { name: 'a', retries: 1 }), { type: 'http', method: 'GET', url: 'http://127.0.0.1/{{ steps.a.outputs.p }}', expect_status: [200] }],
        parameters: { x: { type: 'number', default: 2 } },
      });
      const { steps, parameters, description, concurrency, timeout_s } = job;
      const res = await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: operator.token, payload: { steps, parameters, description, concurrency, timeout_s } });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().steps, job.steps);
      assert.deepEqual(res.json().parameters, job.parameters);
    });

    test('PUT of an unknown job is 404; unknown fields are 400', async () => {
      assertError(await ctx.request({ method: 'PUT', url: '/jobs/999999', token: operator.token, payload: { description: 'x' } }), 404, 'not_found');
      const job = await create({ name: unique('job'), steps: [cmd('true')] });
      assertError(await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: operator.token, payload: { descripton: 'typo' } }), 400, 'validation_error', 'descripton');
    });

    test('DELETE /jobs/{id} removes the job; a second delete is 404', async () => {
      const job = await create({ name: unique('job'), steps: [cmd('true')] });
      const res = await ctx.request({ method: 'DELETE', url: `/jobs/${job.id}`, token: operator.token });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(typeof res.json().message, 'string');
      assertError(await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token }), 404, 'not_found');
      assertError(await ctx.request({ method: 'DELETE', url: `/jobs/${job.id}`, token: operator.token }), 404, 'not_found');
    });

    test('names are unique case-insensitively, on create and on rename (409 naming name)', async () => {
      const name = unique('Unique');
      const first = await create({ name, steps: [cmd('true')] });
      assertError(await post({ name: name.toUpperCase(), steps: [cmd('true')] }), 409, 'conflict', 'name');
      assertError(await post({ name: name.toLowerCase(), steps: [cmd('true')] }), 409, 'conflict', 'name');
      const other = await create({ name: unique('other'), steps: [cmd('true')] });
      assertError(await ctx.request({ method: 'PUT', url: `/jobs/${other.id}`, token: operator.token, payload: { name: name.toLowerCase() } }), 409, 'conflict', 'name');
      // renaming a job to a different case of its own name is fine
      const self = await ctx.request({ method: 'PUT', url: `/jobs/${first.id}`, token: operator.token, payload: { name: name.toUpperCase() } });
      assert.equal(self.statusCode, 200, self.body);
      assert.equal(self.json().name, name.toUpperCase());
    });

    test('required fields and bad job-level values are 400 naming the field', async () => {
      assertError(await post({ steps: [cmd('true')] }), 400, 'validation_error', 'name');
      assertError(await post({ name: unique('job') }), 400, 'validation_error', 'steps');
      assertError(await post({ name: unique('job'), steps: [] }), 400, 'validation_error', 'steps');
      assertError(await post({ name: '', steps: [cmd('true')] }), 400, 'validation_error', 'name');
      assertError(await post({ name: unique('job'), steps: [cmd('true')], concurrency: 0 }), 400, 'validation_error', 'concurrency');
      assertError(await post({ name: unique('job'), steps: [cmd('true')], timeout_s: 0 }), 400, 'validation_error', 'timeout_s');
      assertError(await post({ name: unique('job'), steps: [cmd('true')], status: 'paused' }), 400, 'validation_error', 'status');
      assertError(await post({ name: unique('job'), steps: [cmd('true')], colour: 'red' }), 400, 'validation_error', 'colour');
    });
  });

  describe('access', () => {
    test('viewers read but get 403 on every write; no token is 401', async () => {
      const job = await create({ name: unique('job'), steps: [cmd('true')] });
      assert.equal((await ctx.request({ method: 'GET', url: '/jobs', token: viewer.token })).statusCode, 200);
      assert.equal((await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token })).statusCode, 200);
      assertError(await post({ name: unique('job'), steps: [cmd('true')] }, viewer.token), 403, 'permission_error');
      assertError(await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: viewer.token, payload: { description: 'x' } }), 403, 'permission_error');
      assertError(await ctx.request({ method: 'DELETE', url: `/jobs/${job.id}`, token: viewer.token }), 403, 'permission_error');
      assert.equal((await ctx.request({ method: 'GET', url: `/jobs/${job.id}`, token: viewer.token })).json().description, '', 'nothing changed');
      assertError(await ctx.request({ method: 'GET', url: '/jobs' }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'POST', url: '/jobs', payload: { name: unique('job'), steps: [cmd('true')] } }), 401, 'auth_error');
    });

    test('admins write too; every write is audited', async () => {
      const job = await create({ name: unique('job'), steps: [cmd('true')] }, ctx.adminToken);
      assert.equal((await ctx.request({ method: 'PUT', url: `/jobs/${job.id}`, token: ctx.adminToken, payload: { description: 'd' } })).statusCode, 200);
      assert.equal((await ctx.request({ method: 'DELETE', url: `/jobs/${job.id}`, token: ctx.adminToken })).statusCode, 200);
      const rows = await ctx.deps.db.selectFrom('audit_log').select(['action', 'resource_id']).where('resource_type', '=', 'job').where('resource_id', '=', String(job.id)).orderBy('id').execute();
      assert.deepEqual(
        rows.map((r) => r.action),
        ['job.create', 'job.update', 'job.delete'],
      );
    });
  });
});
