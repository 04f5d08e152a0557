/**
 * Catch-up after downtime, with the clock moved instead of slept: none, latest and all after a
 * 21-minute outage under each overlap policy (the times of one catch-up are one batch: they never
 * skip each other, and run one after another unless concurrent runs are allowed); a 3-hour outage
 * of a 1-minute schedule (more than 100 missed times); and a 20-minute outage of a 1-second
 * schedule, where only the newest 1000 missed times are recorded and the rest are counted in the log.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { useLoopFixture } from './scheduler.loop.fixtures.ts';

describe('scheduler catch-up', () => {
  const f = useLoopFixture();
  const nextRun = async (id: number) => (await f.ctx.deps.scheduler.get(id)).next_run_at?.toISOString();

  /** Ticks until no fire of `id` waits any more, each after the run before has finished. */
  async function drain(id: number): Promise<void> {
    for (let i = 0; i < 200 && (await f.fires(id)).some((x) => x.outcome === 'waiting'); i += 1) {
      for (const x of await f.fires(id)) {
        if (x.run !== null) {
          assert.equal(await f.settled(x.run), 'completed');
        }
      }
      await f.tick();
    }
  }

  for (const [catchup, expected] of [
    ['none', ['10:05 missed', '10:10 missed', '10:15 missed', '10:20 missed']],
    ['latest', ['10:05 missed', '10:10 missed', '10:15 missed', '10:20 queued']],
    ['all', ['10:05 queued', '10:10 queued', '10:15 queued', '10:20 queued']],
  ] as const) {
    test(`catchup ${catchup}, overlap allow: after 21 minutes without a scheduler`, async () => {
      f.at('2026-05-01T10:01:00Z');
      const id = await f.schedule(await f.job('/ok', { allow_concurrent_runs: true }), '*/5 * * * *', { catchup, overlap: 'allow' });
      f.at('2026-05-01T10:22:30Z');
      await f.tick();
      assert.deepEqual(await f.outcomes(id), expected);
      assert.equal(await nextRun(id), '2026-05-01T10:25:00.000Z');
      f.at('2026-05-01T10:25:20Z'); // 20 s late is within the grace: it fires
      await f.tick();
      assert.equal((await f.fires(id)).at(-1)?.outcome, 'queued');
    });
  }

  for (const overlap of ['skip', 'queue', 'allow'] as const) {
    test(`catchup all, overlap ${overlap}, one run at a time: every missed time runs, one after another, oldest first`, async () => {
      f.at('2026-05-01T10:01:00Z');
      const id = await f.schedule(await f.job('/ok'), '*/5 * * * *', { catchup: 'all', overlap });
      f.at('2026-05-01T10:22:30Z');
      await f.tick();
      assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 waiting', '10:15 waiting', '10:20 waiting']);
      await drain(id);
      const done = await f.fires(id);
      assert.deepEqual(done.map((x) => `${x.at} ${x.outcome}`), ['10:05 queued', '10:10 queued', '10:15 queued', '10:20 queued']);
      const runs = done.map((x) => x.run as number);
      assert.deepEqual([...runs].sort((a, b) => a - b), runs, 'started in order');
      assert.equal((await f.ctx.deps.scheduler.get(id)).last_run_id, runs[3]);
      assert.equal(await f.settled(runs[3] as number), 'completed');
      f.at('2026-05-01T10:25:10Z');
      await f.tick();
      assert.equal((await f.fires(id)).at(-1)?.outcome, 'queued', 'the next time after the batch fires as usual');
    });
  }

  /** A 5-minute schedule whose 10:05 run is held running while the scheduler is away until 10:22:30. */
  const outageBehindHeldRun = async (options: Record<string, unknown>) => {
    const { id, first } = await f.heldFirstRun(options);
    f.at('2026-05-01T10:22:30Z');
    await f.tick();
    return { id, first };
  };

  test('catchup all, overlap skip: the batch is skipped when a run from before it is still going', async () => {
    const { id, first } = await outageBehindHeldRun({ catchup: 'all' });
    const seen = await f.fires(id);
    assert.deepEqual(seen.map((x) => `${x.at} ${x.outcome}`), ['10:05 queued', '10:10 skipped_overlap', '10:15 skipped_overlap', '10:20 skipped_overlap']);
    assert.ok(seen.slice(1).every((x) => x.error === `run ${first} of this schedule is still active (overlap skip)`));
    f.release();
    assert.equal(await f.settled(first), 'completed');
  });

  test('catchup all, overlap queue: the whole batch waits behind a run from before it, then runs in order', async () => {
    const { id } = await outageBehindHeldRun({ catchup: 'all', overlap: 'queue' });
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 waiting', '10:15 waiting', '10:20 waiting']);
    f.release();
    await drain(id);
    assert.deepEqual(await f.outcomes(id), ['10:05 queued', '10:10 queued', '10:15 queued', '10:20 queued']);
  });

  for (const [catchup, expected] of [
    ['none', { missed: ['10:01', '12:59', 179], queued: ['13:00', '13:00', 1], waiting: 0 }],
    ['latest', { missed: ['10:01', '12:59', 179], queued: ['13:00', '13:00', 1], waiting: 0 }],
    ['all', { missed: ['10:01', '11:20', 80], queued: ['11:21', '11:21', 1], waiting: 99 }],
  ] as const) {
    test(`catchup ${catchup}, overlap skip: a 1-minute schedule after 3 hours records all 180 times`, async () => {
      f.at('2026-05-01T10:00:30Z');
      const id = await f.schedule(await f.job('/ok'), '* * * * *', { catchup });
      f.at('2026-05-01T13:00:30Z'); // the newest time, 13:00, is 30 s late: within the grace, so none fires it too
      await f.tick();
      const all = await f.fires(id);
      const span = (outcome: string) => {
        const of = all.filter((x) => x.outcome === outcome);
        return [of[0]?.at, of.at(-1)?.at, of.length];
      };
      assert.equal(all.length, 180);
      assert.deepEqual(span('missed'), expected.missed);
      assert.deepEqual(span('queued'), expected.queued);
      assert.equal(all.filter((x) => x.outcome === 'waiting').length, expected.waiting);
      if (catchup === 'all') {
        assert.deepEqual([all[80]?.at, all.at(-1)?.at], ['11:21', '13:00'], 'the newest 100 fire');
      }
      await f.ctx.deps.scheduler.remove(f.actor, id); // its waiting fires go with it
    });
  }

  test('a 1-second schedule after 20 minutes: the newest 1000 missed times are recorded, the 199 older ones counted in the log', async () => {
    f.at('2026-05-01T14:00:00.500Z');
    const id = await f.schedule(await f.job('/ok'), '* * * * * *');
    f.at('2026-05-01T14:20:00.500Z');
    await f.tick();
    const all = await f.fires(id, true);
    const missed = all.filter((x) => x.outcome === 'missed');
    assert.deepEqual([missed.length, missed[0]?.at, missed.at(-1)?.at], [1000, '14:03:20', '14:19:59']);
    assert.deepEqual(all.filter((x) => x.outcome !== 'missed').map((x) => `${x.at} ${x.outcome}`), ['14:20:00 queued']);
    const line = f.ctx.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.schedule_id === id && l.not_recorded !== undefined);
    assert.deepEqual([line?.not_recorded, line?.not_recorded_at_least, line?.from, line?.to], [199, false, '2026-05-01T14:00:01.000Z', '2026-05-01T14:03:19.000Z']);
    assert.match(String(line?.msg), /^199 older missed times \(2026-05-01T14:00:01.000Z to 2026-05-01T14:03:19.000Z\) were not recorded/);
    assert.equal(f.ctx.logs.lines.filter((l) => l.includes(`"schedule_id":${id},`) && l.includes('schedule time missed')).length, 1000, 'each recorded time is logged');
    await f.ctx.deps.scheduler.update(f.actor, id, { enabled: false });
  });
});
