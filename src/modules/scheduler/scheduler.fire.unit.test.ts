/**
 * The pure catch-up plan and overlap rule: which times fire, which are recorded missed and how many
 * older ones are only counted, and what a due time does while the schedule has a run or a waiting
 * time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseCron } from './cron.ts';
import { overlapStart, planFires } from './scheduler.fire.ts';

const hhmmss = (d: Date | undefined) => d?.toISOString().slice(11, 19);

describe('planFires', () => {
  const everySecond = parseCron('* * * * * *', 'UTC');
  const since = new Date('2026-05-01T10:00:01Z');
  const now = new Date('2026-05-01T10:20:00.500Z'); // 1200 due times, 10:00:01 to 10:20:00

  test('all: the newest 100 fire, the 1000 before them are recorded missed, the 100 older ones counted', () => {
    const plan = planFires(everySecond, since, 'all', now);
    assert.deepEqual([plan.fire.length, hhmmss(plan.fire[0]), hhmmss(plan.fire.at(-1))], [100, '10:18:21', '10:20:00']);
    assert.deepEqual([plan.missed.length, hhmmss(plan.missed[0]), hhmmss(plan.missed.at(-1))], [1000, '10:01:41', '10:18:20']);
    assert.deepEqual([plan.unrecorded?.count, plan.unrecorded?.atLeast, hhmmss(plan.unrecorded?.first), hhmmss(plan.unrecorded?.last)], [100, false, '10:00:01', '10:01:40']);
    assert.equal(plan.nextRunAt?.toISOString(), '2026-05-01T10:20:01.000Z');
  });

  test('none, out of the grace: nothing fires, the newest 1000 are recorded, 200 counted', () => {
    const plan = planFires(everySecond, since, 'none', now, 0);
    assert.deepEqual([plan.fire.length, plan.missed.length, hhmmss(plan.missed[0]), hhmmss(plan.missed.at(-1))], [0, 1000, '10:03:21', '10:20:00']);
    assert.deepEqual([plan.unrecorded?.count, hhmmss(plan.unrecorded?.last)], [200, '10:03:20']);
  });

  test('latest fires the newest whatever its age; under the limits nothing is left unrecorded', () => {
    const fiveMinutes = parseCron('*/5 * * * *', 'UTC');
    const plan = planFires(fiveMinutes, new Date('2026-05-01T10:05:00Z'), 'latest', new Date('2026-05-01T10:22:30Z'));
    assert.deepEqual(plan.fire.map(hhmmss), ['10:20:00']);
    assert.deepEqual(plan.missed.map(hhmmss), ['10:05:00', '10:10:00', '10:15:00']);
    assert.equal(plan.unrecorded, undefined);
  });

  test('past the counting limit the log says "more than"', () => {
    const plan = planFires(everySecond, since, 'none', now, 0, { fire: 2, missed: 3, count: 50 });
    assert.deepEqual(plan.missed.map(hhmmss), ['10:19:58', '10:19:59', '10:20:00']);
    assert.deepEqual([plan.unrecorded?.count, plan.unrecorded?.atLeast, hhmmss(plan.unrecorded?.last)], [50, true, '10:19:57']);
  });
});

describe('overlapStart', () => {
  const waitingSince = new Date('2026-05-01T10:10:00Z');
  for (const [overlap, batch, active, waiting, expected] of [
    ['skip', false, undefined, undefined, 'go'],
    ['skip', true, 7, undefined, 'run 7 of this schedule is still active (overlap skip)'],
    ['skip', false, undefined, waitingSince, 'earlier times of this schedule wait to run (from 2026-05-01T10:10:00.000Z) (overlap skip)'],
    ['queue', false, 7, undefined, 'wait'],
    ['queue', false, 7, waitingSince, 'run 7 of this schedule is still active and 2026-05-01T10:10:00.000Z already waits; overlap queue keeps at most one time waiting'],
    ['queue', true, 7, waitingSince, 'wait'],
    ['allow', false, 7, undefined, 'go'],
    ['allow', true, undefined, waitingSince, 'wait'],
  ] as const) {
    test(`${overlap}, ${batch ? 'a batch' : 'one time'}, active ${active ?? 'none'}, ${waiting ? 'a time waiting' : 'none waiting'}`, () => {
      const start = overlapStart(overlap, batch, active, waiting);
      assert.equal(typeof start === 'string' ? start : start.error, expected);
    });
  }
});
