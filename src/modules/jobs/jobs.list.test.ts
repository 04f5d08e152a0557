import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { type Job, JOB_KEYS, cmd, jobsFixture } from './jobs.fixtures.ts';

describe('jobs', () => {
  const { ctx, operator, viewer, setup, close, create } = jobsFixture();
  before(setup);
  after(close);

  describe('list', () => {
    let ids: number[] = [];
    const tag = unique('lst');

    before(async () => {
      ids = [];
      // created in order a, b, c; b is inactive and created by the admin; c mentions the tag only in its description
      ids.push((await create({ name: `${tag}-alpha`, steps: [cmd('true')] })).id);
      ids.push((await create({ name: `${tag}-beta`, steps: [cmd('true')], status: 'inactive' }, ctx.adminToken)).id);
      ids.push((await create({ name: unique('gamma'), description: `about ${tag.toUpperCase()} things`, steps: [cmd('true')] })).id);
    });

    test('GET /jobs returns {jobs,total,page,limit}, newest first', async () => {
      const res = await ctx.request({ method: 'GET', url: '/jobs', token: viewer.token });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['jobs', 'limit', 'page', 'total']);
      assert.equal(body.page, 1);
      assert.equal(body.limit, 20);
      assert.ok(body.total >= 3);
      const listed = (body.jobs as Job[]).map((j) => j.id);
      assert.deepEqual(
        listed.filter((id) => ids.includes(id)),
        [...ids].reverse(),
      );
      const sorted = [...listed].sort((a, b) => b - a);
      assert.deepEqual(listed, sorted);
      assert.deepEqual(Object.keys(body.jobs[0]).sort(), JOB_KEYS);
    });

    test('search matches name or description case-insensitively', async () => {
      const res = await ctx.request({ method: 'GET', url: `/jobs?search=${tag.toUpperCase()}`, token: viewer.token });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().total, 3);
      assert.deepEqual(
        (res.json().jobs as Job[]).map((j) => j.id),
        [...ids].reverse(),
      );
      const none = await ctx.request({ method: 'GET', url: `/jobs?search=${unique('nothing')}`, token: viewer.token });
      assert.equal(none.json().total, 0);
      assert.deepEqual(none.json().jobs, []);
    });

    test('search treats % and _ literally', async () => {
      const res = await ctx.request({ method: 'GET', url: `/jobs?search=${encodeURIComponent(`${tag}%`)}`, token: viewer.token });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().total, 0);
      const underscore = await ctx.request({ method: 'GET', url: `/jobs?search=${encodeURIComponent(`${tag}_alpha`)}`, token: viewer.token });
      assert.equal(underscore.json().total, 0, 'an underscore does not match the "-"');
    });

    test('status and created_by filters', async () => {
      const inactive = await ctx.request({ method: 'GET', url: `/jobs?status=inactive&search=${tag}`, token: viewer.token });
      assert.deepEqual(
        (inactive.json().jobs as Job[]).map((j) => j.id),
        [ids[1]],
      );
      const active = await ctx.request({ method: 'GET', url: `/jobs?status=active&search=${tag}`, token: viewer.token });
      assert.deepEqual(
        (active.json().jobs as Job[]).map((j) => j.id),
        [ids[2], ids[0]],
      );
      const byOperator = await ctx.request({ method: 'GET', url: `/jobs?created_by=${operator.id}&search=${tag}`, token: viewer.token });
      assert.equal(byOperator.json().total, 2);
      assert.ok((byOperator.json().jobs as Job[]).every((j) => j.created_by === operator.id));
      const byViewer = await ctx.request({ method: 'GET', url: `/jobs?created_by=${viewer.id}`, token: viewer.token });
      assert.equal(byViewer.json().total, 0);
      assertError(await ctx.request({ method: 'GET', url: '/jobs?status=paused', token: viewer.token }), 400, 'validation_error', 'status');
    });

    test('paging: page/limit slice the list, total counts everything matching', async () => {
      const p1 = (await ctx.request({ method: 'GET', url: `/jobs?search=${tag}&limit=2&page=1`, token: viewer.token })).json();
      const p2 = (await ctx.request({ method: 'GET', url: `/jobs?search=${tag}&limit=2&page=2`, token: viewer.token })).json();
      assert.equal(p1.total, 3);
      assert.equal(p2.total, 3);
      assert.equal(p1.page, 1);
      assert.equal(p2.page, 2);
      assert.equal(p1.limit, 2);
      assert.deepEqual(
        [...p1.jobs, ...p2.jobs].map((j: Job) => j.id),
        [...ids].reverse(),
      );
      assertError(await ctx.request({ method: 'GET', url: '/jobs?limit=201', token: viewer.token }), 400, 'validation_error', 'limit');
      assertError(await ctx.request({ method: 'GET', url: '/jobs?page=0', token: viewer.token }), 400, 'validation_error', 'page');
    });
  });
});
