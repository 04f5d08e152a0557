/**
 * Firing, with the clock moved instead of slept: a time fires once; catch-up after downtime
 * (none, latest, all — bounded to 100) and overlap (skip, queue, allow) behave as documented; an
 * inactive job's schedule does not fire; every outcome is in GET /schedules/{id}/fires; a change to
 * the schedules wakes a sleeping loop.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import type { Actor } from '../../shared/roles.ts';

describe('scheduler loop', () => {
  let ctx: TestContext;
  let now = new Date('2026-05-01T10:01:00Z');
  let server: Server;
  let base = '';
  let holding = false;
  const held: ServerResponse[] = [];
  let actor: Actor;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hold' && holding) {
        held.push(res);
        return;
      }
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    ctx = await createTestContext({ worker: true, clock: { now: () => now } });
    actor = { id: 1, username: 'admin', role: 'admin', tokenId: 't', tokenExpiresAt: new Date(Date.now() + 3_600_000) } as Actor;
  });
  after(async () => {
    holding = false;
    held.splice(0).forEach((r) => r.end('ok'));
    await ctx?.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const release = () => {
    holding = false;
    held.splice(0).forEach((r) => r.end('ok'));
  };
  const job = async (path: string, extra: Record<string, unknown> = {}) =>
    (await ctx.deps.jobs.create(actor, { name: unique('sched'), steps: [{ type: 'webhook', name: 'call', url: `${base}${path}` }], ...extra } as never)).id;
  const schedule = async (jobId: number, cron: string, extra: Record<string, unknown> = {}) => (await ctx.deps.scheduler.create(actor, { job_id: jobId, cron, ...extra } as never)).id;
  const at = (iso: string) => (now = new Date(iso));
  const tick = async () => (await ctx.deps.schedulerLoop.tick()).fired;
  const fires = async (id: number) =>
    (await ctx.deps.scheduler.fires(id, { page: 1, limit: 200 })).rows.map((f) => ({ at: f.scheduled_for.toISOString().slice(11, 16), outcome: f.outcome, run: f.run_id })).reverse();
  const settled = async (runId: number) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const run = await ctx.deps.runs.getRun(runId);
      if (!['queued', 'running'].includes(run.status) || Date.now() > deadline) {
        return run.status;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const running = async (runId: number) => {
    const deadline = Date.now() + 10_000;
    while ((await ctx.deps.runs.getRun(runId)).status !== 'running' && held.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  test('a time fires once, when due; the run is the schedule’s; next and last run move on', async () => {
    at('2026-05-01T10:01:00Z');
    const id = await schedule(await job('/ok'), '*/5 * * * *');
    at('2026-05-01T10:04:59.900Z');
    assert.equal(await tick(), 0, 'not due yet');
    at('2026-05-01T10:05:00.200Z');
    assert.equal(await tick(), 1);
    assert.equal(await tick(), 0, 'the same time never fires twice');
    const [fire] = await fires(id);
    assert.deepEqual([fire?.at, fire?.outcome], ['10:05', 'queued']);
    const run = await ctx.deps.runs.getRun(fire?.run as number);
    assert.deepEqual([run.trigger, run.schedule_id], ['schedule', id]);
    const row = await ctx.deps.scheduler.get(id);
    assert.deepEqual([row.last_run_at?.toISOString(), row.last_run_id, row.next_run_at?.toISOString()], ['2026-05-01T10:05:00.000Z', run.id, '2026-05-01T10:10:00.000Z']);
    assert.equal(await settled(run.id), 'completed');
  });

  for (const [catchup, expected] of [
    ['none', ['10:05 missed', '10:10 missed', '10:15 missed', '10:20 missed']],
    ['latest', ['10:05 missed', '10:10 missed', '10:15 missed', '10:20 queued']],
    ['all', ['10:05 queued', '10:10 queued', '10:15 queued', '10:20 queued']],
  ] as const) {
    test(`catchup ${catchup}: after 21 minutes without a scheduler`, async () => {
      at('2026-05-01T10:01:00Z');
      const id = await schedule(await job('/ok', { allow_concurrent_runs: true }), '*/5 * * * *', { catchup, overlap: 'allow' });
      at('2026-05-01T10:22:30Z');
      await tick();
      assert.deepEqual((await fires(id)).map((f) => `${f.at} ${f.outcome}`), expected);
      assert.equal((await ctx.deps.scheduler.get(id)).next_run_at?.toISOString(), '2026-05-01T10:25:00.000Z');
      at('2026-05-01T10:25:20Z'); // 20 s late is within the grace: it fires
      await tick();
      assert.equal((await fires(id)).at(-1)?.outcome, 'queued');
    });
  }

  test('catchup all fires at most the newest 100 missed times; older ones are recorded missed', async () => {
    at('2026-05-01T10:00:30Z');
    const id = await schedule(await job('/ok', { allow_concurrent_runs: true }), '* * * * *', { catchup: 'all', overlap: 'allow' });
    at('2026-05-01T13:00:30Z');
    await tick();
    const all = await fires(id);
    const queued = all.filter((f) => f.outcome === 'queued');
    const missed = all.filter((f) => f.outcome === 'missed');
    assert.equal(queued.length, 100);
    assert.equal(queued.at(-1)?.at, '13:00');
    assert.equal(queued[0]?.at, '11:21');
    assert.ok(missed.length > 0 && missed.length <= 100);
    assert.ok(missed.every((m) => m.at < '11:21'));
    assert.equal(new Set(queued.map((q) => q.run)).size, 100, 'a run per fired time');
  });

  test('overlap skip: a time due while the previous run is active is recorded as skipped', async () => {
    at('2026-05-01T10:01:00Z');
    holding = true;
    const id = await schedule(await job('/hold'), '*/5 * * * *');
    at('2026-05-01T10:05:00Z');
    await tick();
    const first = (await fires(id))[0]?.run as number;
    await running(first);
    at('2026-05-01T10:10:00Z');
    await tick();
    release();
    assert.equal(await settled(first), 'completed');
    at('2026-05-01T10:15:00Z');
    await tick();
    assert.deepEqual((await fires(id)).map((f) => `${f.at} ${f.outcome}`), ['10:05 queued', '10:10 skipped_overlap', '10:15 queued']);
  });

  test('overlap queue: times due while a run is active wait, then run one after another', async () => {
    at('2026-05-01T10:01:00Z');
    holding = true;
    const id = await schedule(await job('/hold'), '*/5 * * * *', { overlap: 'queue' });
    at('2026-05-01T10:05:00Z');
    await tick();
    const first = (await fires(id))[0]?.run as number;
    await running(first);
    at('2026-05-01T10:10:00Z');
    await tick();
    at('2026-05-01T10:15:00Z');
    await tick();
    assert.deepEqual((await fires(id)).map((f) => `${f.at} ${f.outcome}`), ['10:05 queued', '10:10 waiting', '10:15 waiting']);
    release();
    assert.equal(await settled(first), 'completed');
    await tick();
    const second = (await fires(id))[1];
    assert.equal(second?.outcome, 'queued');
    assert.equal(await settled(second?.run as number), 'completed');
    await tick();
    assert.deepEqual((await fires(id)).map((f) => `${f.at} ${f.outcome}`), ['10:05 queued', '10:10 queued', '10:15 queued']);
  });

  test('overlap allow: a second run starts while the first is active', async () => {
    at('2026-05-01T10:01:00Z');
    holding = true;
    const id = await schedule(await job('/hold', { allow_concurrent_runs: true }), '*/5 * * * *', { overlap: 'allow' });
    at('2026-05-01T10:05:00Z');
    await tick();
    await running((await fires(id))[0]?.run as number);
    at('2026-05-01T10:10:00Z');
    await tick();
    const both = await fires(id);
    assert.deepEqual(both.map((f) => f.outcome), ['queued', 'queued']);
    release();
    for (const f of both) {
      assert.equal(await settled(f.run as number), 'completed');
    }
  });

  test('the schedule of an inactive job does not fire; the time is recorded as skipped_inactive', async () => {
    at('2026-05-01T10:01:00Z');
    const jobId = await job('/ok');
    const id = await schedule(jobId, '*/5 * * * *');
    await ctx.deps.jobs.update(actor, jobId, { status: 'inactive' } as never);
    at('2026-05-01T10:05:00Z');
    await tick();
    assert.deepEqual(await fires(id), [{ at: '10:05', outcome: 'skipped_inactive', run: null }]);
  });

  test('a sleeping loop wakes when schedules change (LISTEN/NOTIFY), not at its next poll', async () => {
    at('2026-05-01T10:01:00Z');
    const id = await schedule(await job('/ok'), '*/5 * * * *');
    const stop = await ctx.deps.schedulerLoop.start();
    try {
      at('2026-05-01T10:05:00Z'); // due now, but the loop sleeps until it is told or 30 s pass
      await ctx.deps.scheduler.update(actor, id, { name: 'renamed' });
      const deadline = Date.now() + 3_000;
      while ((await fires(id)).length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual((await fires(id)).map((f) => f.outcome), ['queued']);
    } finally {
      await stop();
    }
  });
});
