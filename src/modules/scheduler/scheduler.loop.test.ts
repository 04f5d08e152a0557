/**
 * Firing, with the clock moved instead of slept: a time fires once; overlap (skip, queue with at
 * most one waiting time, allow) behaves as documented; an inactive job's schedule does not fire; a
 * change to the schedules wakes a sleeping loop. Catch-up after downtime: scheduler.catchup.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { useLoopFixture } from './scheduler.loop.fixtures.ts';

describe('scheduler loop', () => {
  const f = useLoopFixture();

  test('a time fires once, when due; the run is the schedule’s; next and last run move on', async () => {
    f.at('2026-05-01T10:01:00Z');
    const id = await f.schedule(await f.job('/ok'), '*/5 * * * *');
    f.at('2026-05-01T10:04:59.900Z');
    assert.equal(await f.tick(), 0, 'not due yet');
    f.at('2026-05-01T10:05:00.200Z');
    assert.equal(await f.tick(), 1);
    assert.equal(await f.tick(), 0, 'the same time never fires twice');
    const [fire] = await f.fires(id);
    assert.deepEqual([fire?.at, fire?.outcome], ['10:05', 'queued']);
    const run = await f.ctx.deps.runs.getRun(fire?.run as number);
    assert.deepEqual([run.trigger, run.schedule_id], ['schedule', id]);
    const row = await f.ctx.deps.scheduler.get(id);
    assert.deepEqual([row.last_run_at?.toISOString(), row.last_run_id, row.next_run_at?.toISOString()], ['2026-05-01T10:05:00.000Z', run.id, '2026-05-01T10:10:00.000Z']);
    assert.equal(await f.settled(run.id), 'completed');
  });

  test('overlap skip: a time due while the previous run is active is recorded as skipped', async () => {
    const { id, first } = await f.heldFirstRun();
    f.at('2026-05-01T10:10:00Z');
    await f.tick();
    f.release();
    assert.equal(await f.settled(first), 'completed');
    f.at('2026-05-01T10:15:00Z');
    await f.tick();
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 skipped_overlap', '10:15 queued']);
    assert.equal((await f.fires(id))[1]?.error, `run ${first} of this schedule is still active (overlap skip)`);
  });

  test('overlap queue: one time waits behind the running run, further ones are skipped; the waiting one runs next', async () => {
    const { id, first } = await f.heldFirstRun({ overlap: 'queue' });
    for (const at of ['10:10', '10:15', '10:20']) {
      f.at(`2026-05-01T${at}:00Z`);
      await f.tick();
    }
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 waiting', '10:15 skipped_overlap', '10:20 skipped_overlap']);
    assert.equal((await f.fires(id))[2]?.error, `run ${first} of this schedule is still active and 2026-05-01T10:10:00.000Z already waits; overlap queue keeps at most one time waiting`);
    f.release();
    assert.equal(await f.settled(first), 'completed');
    f.hold(); // so that 10:10's run is still going when 10:25 is looked at, however fast the worker
    f.at('2026-05-01T10:25:00Z');
    await f.tick(); // 10:10 starts; 10:25, due now, waits behind it
    const second = (await f.fires(id))[1];
    assert.equal(second?.outcome, 'queued');
    assert.equal((await f.fires(id))[4]?.outcome, 'waiting');
    f.release();
    assert.equal(await f.settled(second?.run as number), 'completed');
    await f.tick();
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 queued', '10:15 skipped_overlap', '10:20 skipped_overlap', '10:25 queued']);
    assert.equal(await f.settled((await f.fires(id))[4]?.run as number), 'completed');
  });

  test('overlap queue: a time waiting when its schedule is disabled does not run later; it is recorded skipped_inactive', async () => {
    const { id, first } = await f.heldFirstRun({ overlap: 'queue' });
    f.at('2026-05-01T10:10:00Z');
    await f.tick();
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 waiting']);
    await f.ctx.deps.scheduler.update(f.actor, id, { enabled: false });
    f.release();
    assert.equal(await f.settled(first), 'completed');
    f.at('2026-05-01T10:11:00Z');
    await f.tick();
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 skipped_inactive']);
    assert.equal((await f.fires(id))[1]?.error, 'the schedule was disabled while this time waited');
    await f.ctx.deps.scheduler.update(f.actor, id, { enabled: true });
    await f.tick();
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 skipped_inactive'], 'enabling it again does not bring the time back');
  });

  test('overlap queue: a 1-second schedule behind a long run keeps one waiting time, not one per second', async () => {
    f.at('2026-05-01T11:00:00.500Z');
    f.hold();
    const id = await f.schedule(await f.job('/hold'), '* * * * * *', { overlap: 'queue' });
    for (let s = 1; s <= 10; s += 1) {
      f.at(`2026-05-01T11:00:${String(s).padStart(2, '0')}.100Z`);
      await f.tick();
      if (s === 1) {
        await f.running((await f.fires(id))[0]?.run as number);
      }
    }
    const seen = await f.fires(id, true);
    assert.deepEqual(
      seen.map((x) => x.outcome),
      ['queued', 'waiting', ...Array<string>(8).fill('skipped_overlap')],
    );
    f.release();
    await f.ctx.deps.scheduler.update(f.actor, id, { enabled: false });
    assert.equal(await f.settled(seen[0]?.run as number), 'completed');
  });

  test('overlap allow: a second run starts while the first is active', async () => {
    f.at('2026-05-01T10:01:00Z');
    f.hold();
    const id = await f.schedule(await f.job('/hold', { allow_concurrent_runs: true }), '*/5 * * * *', { overlap: 'allow' });
    f.at('2026-05-01T10:05:00Z');
    await f.tick();
    await f.running((await f.fires(id))[0]?.run as number);
    f.at('2026-05-01T10:10:00Z');
    await f.tick();
    const both = await f.fires(id);
    assert.deepEqual(both.map((x) => x.outcome), ['queued', 'queued']);
    f.release();
    for (const x of both) {
      assert.equal(await f.settled(x.run as number), 'completed');
    }
  });

  test('the schedule of an inactive job does not fire; the time is recorded as skipped_inactive', async () => {
    f.at('2026-05-01T10:01:00Z');
    const jobId = await f.job('/ok');
    const id = await f.schedule(jobId, '*/5 * * * *');
    await f.ctx.deps.jobs.update(f.actor, jobId, { status: 'inactive' } as never);
    f.at('2026-05-01T10:05:00Z');
    await f.tick();
    assert.deepEqual(await f.fires(id), [{ at: '10:05', outcome: 'skipped_inactive', run: null, error: `Job ${jobId} is inactive and cannot run` }]);
  });

  test('a sleeping loop wakes when schedules change (LISTEN/NOTIFY), not at its next poll', async () => {
    f.at('2026-05-01T10:01:00Z');
    const id = await f.schedule(await f.job('/ok'), '*/5 * * * *');
    const stop = await f.ctx.deps.schedulerLoop.start();
    try {
      f.at('2026-05-01T10:05:00Z'); // due now, but the loop sleeps until it is told or 30 s pass
      await f.ctx.deps.scheduler.update(f.actor, id, { name: 'renamed' });
      const deadline = Date.now() + 5_000;
      while ((await f.fires(id)).length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual((await f.fires(id)).map((x) => x.outcome), ['queued']);
    } finally {
      await stop();
    }
  });
});
