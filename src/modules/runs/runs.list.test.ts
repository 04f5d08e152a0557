import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ISO_UTC, runsEnv } from './runs.fixtures.ts';

describe('job runs without SSH: listing runs', () => {
  const env = runsEnv();
  const { createJob, startRun, waitForRun } = env;

  test('GET /job-runs lists newest first with job_id and status filters and paging; GET /job-runs/{id} 404s', async () => {
    const { ctx, receiver } = env;
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
