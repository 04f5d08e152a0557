/**
 * GET /schedules/{id}/fires over HTTP: its shape, newest first, the outcome filter and paging, the
 * reason on skipped and failed fires; GET /schedules/{id} shows the last run after a fire; and a
 * fire that cannot start at fire time (parameters no longer valid, target deleted, no queue in the
 * process) is recorded `failed` with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { useLoopFixture } from './scheduler.loop.fixtures.ts';

interface FireBody {
  scheduled_for: string;
  fired_at: string;
  outcome: string;
  run_id: number | null;
  error: string | null;
}
interface FiresBody {
  fires: FireBody[];
  total: number;
  page: number;
  limit: number;
}

/** GET `url` as the admin of `ctx`, 200 expected. */
async function get<T>(ctx: TestContext, url: string, token = ctx.adminToken): Promise<T> {
  const res = await ctx.request({ method: 'GET', url, token });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as T;
}

describe('schedule fires over HTTP', () => {
  const f = useLoopFixture();
  const post = async (url: string, payload: Record<string, unknown>) => {
    const res = await f.ctx.request({ method: 'POST', url, token: f.ctx.adminToken, payload });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { id: number }).id;
  };

  test('fires newest first with their outcome, run and reason; filter by outcome; page; the schedule shows its last run', async () => {
    f.at('2026-05-01T10:01:00Z');
    f.hold();
    const id = await f.schedule(await f.job('/hold'), '*/5 * * * *');
    const before = await get<Record<string, unknown>>(f.ctx, `/schedules/${id}`);
    assert.deepEqual([before.last_run, before.last_run_id], [null, null]);
    f.at('2026-05-01T10:05:00.250Z');
    await f.tick();
    const first = (await f.fires(id))[0]?.run as number;
    await f.running(first);
    f.at('2026-05-01T10:10:00.250Z');
    await f.tick();
    f.release();
    assert.equal(await f.settled(first), 'completed');
    f.at('2026-05-01T10:15:00.250Z');
    await f.tick();

    const body = await get<FiresBody>(f.ctx, `/schedules/${id}/fires`);
    assert.deepEqual(Object.keys(body).sort(), ['fires', 'limit', 'page', 'total']);
    assert.equal(body.total, 3);
    const third = body.fires[0]?.run_id as number;
    assert.deepEqual(body.fires, [
      { scheduled_for: '2026-05-01T10:15:00.000Z', fired_at: '2026-05-01T10:15:00.250Z', outcome: 'queued', run_id: third, error: null },
      { scheduled_for: '2026-05-01T10:10:00.000Z', fired_at: '2026-05-01T10:10:00.250Z', outcome: 'skipped_overlap', run_id: null, error: `run ${first} of this schedule is still active (overlap skip)` },
      { scheduled_for: '2026-05-01T10:05:00.000Z', fired_at: '2026-05-01T10:05:00.250Z', outcome: 'queued', run_id: first, error: null },
    ]);
    assert.ok(third > first);

    const skipped = await get<FiresBody>(f.ctx, `/schedules/${id}/fires?outcome=skipped_overlap`);
    assert.deepEqual([skipped.total, skipped.fires.map((x) => x.scheduled_for)], [1, ['2026-05-01T10:10:00.000Z']]);
    assert.equal((await get<FiresBody>(f.ctx, `/schedules/${id}/fires?outcome=missed`)).total, 0);
    const page = await get<FiresBody>(f.ctx, `/schedules/${id}/fires?page=2&limit=1`);
    assert.deepEqual([page.page, page.limit, page.total, page.fires.map((x) => x.outcome)], [2, 1, 3, ['skipped_overlap']]);
    assertError(await f.ctx.request({ method: 'GET', url: `/schedules/${id}/fires?outcome=sometimes`, token: f.ctx.adminToken }), 400, 'validation_error');
    assertError(await f.ctx.request({ method: 'GET', url: '/schedules/999999/fires', token: f.ctx.adminToken }), 404, 'not_found');
    const viewer = await f.ctx.createUser('viewer');
    assert.equal((await get<FiresBody>(f.ctx, `/schedules/${id}/fires`, viewer.token)).total, 3);

    const schedule = await get<Record<string, unknown>>(f.ctx, `/schedules/${id}`);
    assert.deepEqual([schedule.last_run, schedule.last_run_id, schedule.next_run], ['2026-05-01T10:15:00.000Z', third, '2026-05-01T10:20:00.000Z']);
    assert.equal(await f.settled(third), 'completed');
  });

  test('parameters no longer valid for the job at fire time: the fire is failed, with the reason', async () => {
    f.at('2026-05-01T10:01:00Z');
    const jobId = await post('/jobs', { name: unique('params'), steps: [{ type: 'webhook', name: 'w', url: 'http://127.0.0.1:9/x' }], parameters: { region: { type: 'string' } } });
    const id = await post('/schedules', { job_id: jobId, cron: '*/5 * * * *', parameters: { region: 'eu' } });
    const declarations = { zone: { type: 'string', required: true } };
    const changed = await f.ctx.request({ method: 'PUT', url: `/jobs/${jobId}`, token: f.ctx.adminToken, payload: { parameters: declarations } });
    assert.equal(changed.statusCode, 400, 'the API refuses declarations the schedule does not fit');
    // As a job changed before that check existed (or by hand in the database) would be.
    await f.ctx.deps.db.updateTable('jobs').set({ parameters: JSON.stringify(declarations) }).where('id', '=', jobId).execute();
    f.at('2026-05-01T10:05:00Z');
    await f.tick();
    const [fire] = (await get<FiresBody>(f.ctx, `/schedules/${id}/fires`)).fires;
    assert.deepEqual([fire?.outcome, fire?.run_id], ['failed', null]);
    assert.equal(fire?.error, 'parameters.region is not declared by the job');
    const schedule = await get<Record<string, unknown>>(f.ctx, `/schedules/${id}`);
    assert.deepEqual([schedule.last_run, schedule.last_run_id, schedule.next_run], [null, null, '2026-05-01T10:10:00.000Z'], 'a failed fire is no run, and the schedule goes on');
  });

  test('a target deleted after the schedule was saved: the fire is failed, naming target_ids', async () => {
    f.at('2026-05-01T10:01:00Z');
    const target = await post('/targets', { name: unique('gone-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' });
    const jobId = await post('/jobs', { name: unique('cmd'), steps: [{ type: 'command', name: 'c', command: 'true' }] });
    const id = await post('/schedules', { job_id: jobId, cron: '*/5 * * * *', target_ids: [target] });
    const gone = await f.ctx.request({ method: 'DELETE', url: `/targets/${target}`, token: f.ctx.adminToken });
    assert.equal(gone.statusCode, 200, gone.body);
    f.at('2026-05-01T10:05:00Z');
    await f.tick();
    const [fire] = (await get<FiresBody>(f.ctx, `/schedules/${id}/fires?outcome=failed`)).fires;
    assert.equal(fire?.scheduled_for, '2026-05-01T10:05:00.000Z');
    assert.equal(fire?.error, `target_ids: unknown target id(s) ${target}`);
  });
});

describe('a schedule firing in a process without the background queue', () => {
  let ctx: TestContext;
  let now = new Date('2026-05-01T10:01:00Z');
  before(async () => {
    ctx = await createTestContext({ clock: { now: () => now } });
  });
  after(() => ctx?.close());

  test('the fire is failed: the queue is not running here', async () => {
    const job = await ctx.request({ method: 'POST', url: '/jobs', token: ctx.adminToken, payload: { name: unique('noq'), steps: [{ type: 'webhook', name: 'w', url: 'http://127.0.0.1:9/x' }] } });
    const made = await ctx.request({ method: 'POST', url: '/schedules', token: ctx.adminToken, payload: { job_id: job.json().id, cron: '*/5 * * * *' } });
    assert.equal(made.statusCode, 200, made.body);
    now = new Date('2026-05-01T10:05:00Z');
    await ctx.deps.schedulerLoop.tick();
    const body = await get<FiresBody>(ctx, `/schedules/${made.json().id}/fires`);
    assert.deepEqual(
      body.fires.map((x) => [x.outcome, x.error]),
      [['failed', 'The background queue is not running in this process']],
    );
  });
});
