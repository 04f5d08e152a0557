/**
 * The scheduler API: guide shapes, checks on save (cron, Quartz refused with advice, zone, job,
 * parameters, targets), previews across daylight-saving changes in New York and London at fixed
 * dates, manual triggers, and schedules going away with their job.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';

describe('scheduler API', () => {
  let ctx: TestContext;
  const now = new Date('2026-03-07T12:00:00Z');
  let webhookJob: number;
  let commandJob: number;
  let viewer: { token: string };
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const created = async (url: string, payload: Record<string, unknown>) => {
    const res = await call('POST', url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown> & { id: number };
  };

  before(async () => {
    ctx = await createTestContext({ worker: true, clock: { now: () => now } });
    viewer = await ctx.createUser('viewer');
    webhookJob = (
      await created('/jobs', {
        name: unique('hook'),
        steps: [{ type: 'webhook', name: 'ping', url: 'http://127.0.0.1:9/never', payload: { x: '{{ params.region }}' } }],
        parameters: { region: { type: 'string', required: true }, token: { type: 'string', secret: true } },
      })
    ).id;
    commandJob = (await created('/jobs', { name: unique('cmd'), steps: [{ type: 'command', name: 'c', command: 'true' }] })).id;
  });
  after(() => ctx?.close());

  test('create, get, list, update, delete in the guide’s shapes', async () => {
    const made = await created('/schedules', { job_id: webhookJob, cron: '0 2 * * *', timezone: 'UTC', enabled: true, parameters: { region: 'eu', token: 's3cret-value' } });
    assert.equal(made.job_id, webhookJob);
    assert.equal(made.cron, '0 2 * * *');
    assert.equal(made.next_run, '2026-03-08T02:00:00.000Z');
    assert.deepEqual(made.parameters, { region: 'eu', token: '***' });
    assert.equal(made.overlap, 'skip');
    assert.equal(made.catchup, 'none');
    assert.match(String(made.description), /02:00/);

    const got = (await call('GET', `/schedules/${made.id}`)).json();
    assert.deepEqual([got.last_run, got.last_run_id, got.enabled], [null, null, true]);
    assert.doesNotMatch(JSON.stringify(got), /s3cret-value/);

    const listed = (await call('GET', `/schedules?job_id=${webhookJob}&enabled=true`)).json();
    assert.ok(listed.schedules.some((s: { id: number }) => s.id === made.id));
    assert.equal(typeof listed.total, 'number');
    assert.equal((await call('GET', `/schedules?job_id=${webhookJob}&enabled=false`)).json().schedules.length, 0);

    const moved = (await call('PUT', `/schedules/${made.id}`, { cron: '0 3 * * *', enabled: false })).json();
    assert.deepEqual([moved.cron, moved.enabled, moved.next_run], ['0 3 * * *', false, null]);
    const enabled = (await call('PUT', `/schedules/${made.id}`, { enabled: true, timezone: 'Europe/London' })).json();
    assert.equal(enabled.next_run, '2026-03-08T03:00:00.000Z');
    assert.deepEqual(enabled.parameters, { region: 'eu', token: '***' }, 'parameters kept when not given');

    const gone = await call('DELETE', `/schedules/${made.id}`);
    assert.deepEqual(gone.json(), { message: 'Schedule deleted successfully' });
    assertError(await call('GET', `/schedules/${made.id}`), 404, 'not_found');
  });

  test('bad input is a 400 naming the field, with what to write instead', async () => {
    const bad = (payload: Record<string, unknown>) => call('POST', '/schedules', { job_id: webhookJob, parameters: { region: 'eu' }, cron: '0 2 * * *', ...payload });
    const quartz = await bad({ cron: '0 0 12 ? * MON' });
    assertError(quartz, 400, 'validation_error', 'cron');
    assert.match(quartz.json().error.message, /Quartz.*"0 12 \* \* MON"/);
    const year = await bad({ cron: '0 0 12 * * ? 2027' });
    assertError(year, 400, 'validation_error', 'cron');
    assert.match(year.json().error.message, /Quartz/);
    const yearOnly = await bad({ cron: '0 0 12 * * * 2027' }); // seven fields, no "?"
    assertError(yearOnly, 400, 'validation_error', 'cron');
    assert.match(yearOnly.json().error.message, /a year field is Quartz syntax.*e\.g\. "0 12 \* \* \*".*cannot be limited to a year/);
    assertError(await bad({ cron: '61 * * * *' }), 400, 'validation_error', 'cron');
    assertError(await bad({ cron: '* * *' }), 400, 'validation_error', 'cron');
    assertError(await bad({ cron: '0 0 30 2 *' }), 400, 'validation_error', 'cron');
    assertError(await bad({ cron: '@reboot' }), 400, 'validation_error', 'cron');
    const zone = await bad({ timezone: 'Mars/Olympus' });
    assertError(zone, 400, 'validation_error', 'timezone');
    assert.match(zone.json().error.message, /IANA.*America\/New_York/);
    const est = await bad({ timezone: 'EST' }); // an abbreviation: Intl takes it, as America/Panama
    assertError(est, 400, 'validation_error', 'timezone');
    assert.match(est.json().error.message, /America\/Panama.*"America\/New_York" \(follows daylight saving\)/);
    assertError(await bad({ timezone: 'utc' }), 400, 'validation_error', 'timezone');
    assertError(await bad({ job_id: 999999 }), 400, 'validation_error', 'job_id');
    assertError(await bad({ parameters: {} }), 400, 'validation_error', 'parameters.region');
    assertError(await bad({ parameters: { region: 'eu', nope: 1 } }), 400, 'validation_error', 'parameters.nope');
    assertError(await bad({ parameters: { region: 5 } }), 400, 'validation_error', 'parameters.region');
    assertError(await bad({ target_ids: [999999] }), 400, 'validation_error', 'target_ids');
    assertError(await bad({ overlap: 'sometimes' }), 400, 'validation_error');
    assertError(await call('POST', '/schedules', { job_id: commandJob, cron: '0 2 * * *' }), 400, 'validation_error', 'target_ids');
    assertError(await call('POST', '/schedules/preview', { cron: '* * * * *', count: 0 }), 400, 'validation_error');
  });

  test('viewers read but do not write', async () => {
    assert.equal((await call('GET', '/schedules', undefined, viewer.token)).statusCode, 200);
    assertError(await call('POST', '/schedules', { job_id: webhookJob, cron: '@daily', parameters: { region: 'eu' } }, viewer.token), 403, 'permission_error');
  });

  describe('previews across daylight-saving changes', () => {
    const preview = async (cron: string, timezone: string, at: string, count = 3) => {
      const res = await call('POST', '/schedules/preview', { cron, timezone, count, from: at });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { description: string; next_runs: Array<{ utc: string; local: string }> };
    };

    test('America/New_York: 02:30 does not exist on 8 March 2026 (fires at 03:00); 01:30 on 1 November fires once', async () => {
      const spring = await preview('30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z');
      assert.deepEqual(spring.next_runs, [
        { utc: '2026-03-08T07:00:00.000Z', local: '2026-03-08T03:00:00-04:00' },
        { utc: '2026-03-09T06:30:00.000Z', local: '2026-03-09T02:30:00-04:00' },
        { utc: '2026-03-10T06:30:00.000Z', local: '2026-03-10T02:30:00-04:00' },
      ]);
      const fall = await preview('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', 2);
      assert.deepEqual(fall.next_runs, [
        { utc: '2026-11-01T05:30:00.000Z', local: '2026-11-01T01:30:00-04:00' },
        { utc: '2026-11-02T06:30:00.000Z', local: '2026-11-02T01:30:00-05:00' },
      ]);
      // An interval runs by elapsed time: the repeated hour is run through twice.
      const every = await preview('0 * * * *', 'America/New_York', '2026-11-01T04:30:00Z', 3);
      assert.deepEqual(every.next_runs.map((r) => r.local), ['2026-11-01T01:00:00-04:00', '2026-11-01T01:00:00-05:00', '2026-11-01T02:00:00-05:00']);
    });

    test('Europe/London: 01:30 on 29 March 2026 fires at 02:00 BST; 01:00 on 25 October fires once', async () => {
      const spring = await preview('30 1 * * *', 'Europe/London', '2026-03-28T12:00:00Z', 2);
      assert.deepEqual(spring.next_runs, [
        { utc: '2026-03-29T01:00:00.000Z', local: '2026-03-29T02:00:00+01:00' },
        { utc: '2026-03-30T00:30:00.000Z', local: '2026-03-30T01:30:00+01:00' },
      ]);
      const fall = await preview('0 1 * * *', 'Europe/London', '2026-10-24T12:00:00Z', 2);
      assert.deepEqual(fall.next_runs, [
        { utc: '2026-10-25T00:00:00.000Z', local: '2026-10-25T01:00:00+01:00' },
        { utc: '2026-10-26T01:00:00.000Z', local: '2026-10-26T01:00:00+00:00' },
      ]);
    });

    test('seconds, nicknames and a schedule’s own preview; descriptions in words', async () => {
      const seconds = await preview('*/15 * * * * *', 'UTC', '2026-01-01T00:00:00Z', 2);
      assert.deepEqual(seconds.next_runs.map((r) => r.utc), ['2026-01-01T00:00:15.000Z', '2026-01-01T00:00:30.000Z']);
      assert.match(seconds.description, /15 seconds/);
      const weekly = await preview('@weekly', 'UTC', '2026-01-01T00:00:00Z', 1);
      assert.equal(weekly.next_runs[0]?.utc, '2026-01-04T00:00:00.000Z');
      const made = await created('/schedules', { job_id: webhookJob, cron: '0 9 * * 1-5', timezone: 'Asia/Tokyo', parameters: { region: 'ap' } });
      const own = (await call('GET', `/schedules/${made.id}/preview?count=2&from=2026-01-01T00:00:00Z`)).json();
      assert.deepEqual(own.next_runs.map((r: { local: string }) => r.local), ['2026-01-02T09:00:00+09:00', '2026-01-05T09:00:00+09:00']);
      assert.equal(own.timezone, 'Asia/Tokyo');
    });
  });

  test('trigger queues a run of the job with the schedule’s parameters; deleting the job deletes its schedules', async () => {
    const job = await created('/jobs', { name: unique('trig'), steps: [{ type: 'webhook', name: 'w', url: 'http://127.0.0.1:9/x' }], parameters: { p: { type: 'string' } } });
    const made = await created('/schedules', { job_id: job.id, cron: '@hourly', parameters: { p: 'v' } });
    const fired = await call('POST', `/schedules/${made.id}/trigger`);
    assert.equal(fired.statusCode, 200, fired.body);
    assert.equal(fired.json().message, 'Job triggered successfully');
    const run = (await call('GET', `/job-runs/${fired.json().job_run_id}`)).json();
    assert.deepEqual([run.job_id, run.schedule_id, run.trigger, run.parameters], [job.id, made.id, 'manual', { p: 'v' }]);
    assert.equal((await call('DELETE', `/jobs/${job.id}`)).statusCode, 200);
    assertError(await call('GET', `/schedules/${made.id}`), 404, 'not_found');
  });

  test('a job cannot take parameter declarations its schedules would no longer run with (400 naming parameters and the schedule)', async () => {
    const job = await created('/jobs', { name: unique('decl'), steps: [{ type: 'webhook', name: 'w', url: 'http://127.0.0.1:9/x' }], parameters: { region: { type: 'string' } } });
    const made = await created('/schedules', { job_id: job.id, cron: '@daily', parameters: { region: 'eu' } });
    const dropped = await call('PUT', `/jobs/${job.id}`, { parameters: {} });
    assertError(dropped, 400, 'validation_error', 'parameters');
    assert.match(dropped.json().error.message, new RegExp(`schedule ${made.id}: .*region`));
    assertError(await call('PUT', `/jobs/${job.id}`, { parameters: { region: { type: 'string' }, tier: { type: 'string', required: true } } }), 400, 'validation_error', 'parameters');
    assert.deepEqual((await call('GET', `/jobs/${job.id}`)).json().parameters, { region: { type: 'string' } }, 'the refused updates changed nothing');
    const widened = await call('PUT', `/jobs/${job.id}`, { parameters: { region: { type: 'string' }, tier: { type: 'string', default: 'gold' } } });
    assert.equal(widened.statusCode, 200, widened.body);
  });
});
