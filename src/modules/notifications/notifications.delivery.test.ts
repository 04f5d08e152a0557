/**
 * Delivery and job events, end to end through the worker: a failed job sends one email (real
 * SMTP), one Slack and one Teams message and one signed webhook, each with the run's details and
 * no secret; retries with backoff until delivered or failed; notifications whose message was lost
 * or whose sender died mid-send are sent by the sweep; notify steps; preferences and quiet hours.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { type HttpSink, startHttpSink } from '../../../test/http-sink.ts';
import { startSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { startNotificationSender } from './notifications.delivery.ts';

const SIGNING_KEY = 'webhook-signing-key-123';
const SECRET_PARAM = 'p4ssw0rd-never-in-notifications';

describe('notification delivery and job events', () => {
  let ctx: TestContext;
  let smtp: TestSmtpServer;
  let sink: HttpSink;
  let signingCredential: number;
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const ok = async (method: 'POST' | 'PUT', url: string, payload: Record<string, unknown>, token = ctx.adminToken) => {
    const res = await call(method, url, payload, token);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown> & { id: number };
  };
  const notification = async (id: number, until: string[] = ['sent', 'failed'], timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = (await call('GET', `/notifications/${id}`)).json();
      if (until.includes(n.status) || Date.now() > deadline) {
        return n as { status: string; attempts: number; last_error: string | null; sent_at: string | null };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const finished = async (runId: number) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const run = (await call('GET', `/job-runs/${runId}`)).json();
      if (!['queued', 'running'].includes(run.status) || Date.now() > deadline) {
        return run as { id: number; status: string };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const runJob = async (jobId: number, payload: Record<string, unknown> = {}, token = ctx.adminToken) => finished(Number((await ok('POST', `/jobs/${jobId}/run`, payload, token)).job_run_id));

  before(async () => {
    ctx = await createTestContext({ worker: true, env: { OPSCONDUCTOR_NOTIFY_RETRY_BASE_S: '0.2', OPSCONDUCTOR_NOTIFY_MAX_ATTEMPTS: '3', OPSCONDUCTOR_PUBLIC_URL: 'https://ops.example.test' } });
    smtp = await startSmtpServer({ users: { mailer: 'Mailer-pass-1' }, tls: 'starttls' });
    sink = await startHttpSink();
    await ok('POST', '/api/notification/smtp/settings', { smtp_server: '127.0.0.1', smtp_port: smtp.port, username: 'mailer', password: 'Mailer-pass-1', from_email: 'ops@example.test', tls_verify: false });
    signingCredential = (await ok('POST', '/credentials', { name: unique('sign'), type: 'api_token', token: SIGNING_KEY })).id;
    // The admin creates the jobs below; keep their own (default) preferences out of the counts.
    await ok('PUT', '/users/me/notification-preferences', { channels: { email: { enabled: false } } });
  });
  after(async () => {
    await ctx?.close();
    await smtp?.close();
    await sink?.close();
  });

  test('a failed job sends one email, one Slack, one Teams message and one signed webhook with the run’s details', async () => {
    const job = await ok('POST', '/jobs', {
      name: unique('failing'),
      parameters: { token: { type: 'string', secret: true } },
      steps: [{ type: 'http', name: 'probe', method: 'GET', url: `${sink.url}/job-target`, expect_status: [204] }],
      notify: {
        on_failure: [
          { channel: 'email', destination: 'oncall@example.test' },
          { channel: 'slack', destination: `${sink.url}/slack` },
          { channel: 'teams', destination: `${sink.url}/teams` },
          { channel: 'webhook', destination: `${sink.url}/hook`, secret_credential_id: signingCredential },
        ],
      },
    });
    const run = await runJob(job.id, { parameters: { token: SECRET_PARAM } });
    assert.equal(run.status, 'failed');
    const [slack] = await sink.waitFor('/slack', 1);
    const [teams] = await sink.waitFor('/teams', 1);
    const [hook] = await sink.waitFor('/hook', 1);
    const deadline = Date.now() + 10_000;
    while (!smtp.messages.some((m) => m.to.includes('oncall@example.test')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const mails = smtp.messages.filter((m) => m.to.includes('oncall@example.test'));
    assert.equal(mails.length, 1);
    assert.match(mails[0]?.subject ?? '', new RegExp(`${job.name} failed \\(run ${run.id}\\)`));
    assert.match(mails[0]?.text ?? '', /1 failed/);
    assert.match(mails[0]?.html ?? '', new RegExp(`href="https://ops.example.test/job-runs/${run.id}"`));

    const slackBody = slack?.json() as { text: string; blocks: Array<{ type: string }> };
    assert.match(slackBody.text, new RegExp(`${job.name}.*failed`));
    assert.deepEqual(slackBody.blocks.map((b) => b.type), ['header', 'section', 'actions']);
    const teamsBody = teams?.json() as Record<string, unknown>;
    assert.deepEqual([teamsBody['@type'], teamsBody['@context'], teamsBody.themeColor], ['MessageCard', 'https://schema.org/extensions', 'E01E5A']);
    assert.match(String(teamsBody.title), /failed/);

    const signature = createHmac('sha256', SIGNING_KEY).update(hook?.body ?? '').digest('hex');
    assert.equal(hook?.headers['x-opsconductor-signature'], `sha256=${signature}`);
    const doc = hook?.json() as { event: string; job: { id: number; name: string }; run: Record<string, unknown>; url: string };
    assert.equal(doc.event, 'job.failed');
    assert.deepEqual(doc.job, { id: job.id, name: job.name });
    assert.deepEqual(Object.keys(doc.run).sort(), ['duration_ms', 'finished_at', 'id', 'started_at', 'status', 'summary', 'trigger']);
    assert.deepEqual([doc.run.id, doc.run.status, doc.run.trigger, (doc.run.summary as Record<string, number>).failed], [run.id, 'failed', 'manual', 1]);
    assert.equal(doc.url, `https://ops.example.test/job-runs/${run.id}`);

    for (const text of [slack?.body, teams?.body, hook?.body, mails[0]?.raw].map(String)) {
      assert.ok(!text.includes(SECRET_PARAM), 'no secret parameter in any notification');
    }
    const listed = (await call('GET', '/notifications?status=sent&channel=webhook')).json();
    assert.ok(listed.notifications.some((n: { run_id: number; event: string }) => n.run_id === run.id && n.event === 'job.failed'));
  });

  test('job.started and job.completed go to on_start and on_success; a completed run sends nothing to on_failure', async () => {
    const job = await ok('POST', '/jobs', {
      name: unique('fine'),
      steps: [{ type: 'http', name: 'probe', method: 'GET', url: `${sink.url}/job-ok` }],
      notify: { on_start: [{ channel: 'webhook', destination: `${sink.url}/started` }], on_success: [{ channel: 'webhook', destination: `${sink.url}/done` }], on_failure: [{ channel: 'webhook', destination: `${sink.url}/never` }] },
    });
    const run = await runJob(job.id);
    assert.equal(run.status, 'completed');
    assert.equal((await sink.waitFor('/started', 1))[0]?.json().event, 'job.started');
    assert.equal((await sink.waitFor('/done', 1))[0]?.json().event, 'job.completed');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sink.accepted('/never').length, 0);
    assert.equal(sink.accepted('/started').length, 1, 'started once, though the run has one target per worker claim');
  });

  test('failures retry with backoff until delivered; past the attempt limit the notification is failed with the last error', async () => {
    sink.failNext('/flaky', 2);
    const flaky = await ok('POST', '/notifications', { channel: 'webhook', destination: `${sink.url}/flaky`, message: 'try again' });
    assert.deepEqual([flaky.status, flaky.message], ['queued', 'Notification queued']);
    const sent = await notification(flaky.id);
    assert.deepEqual([sent.status, sent.attempts, sent.last_error], ['sent', 3, null]);
    const tries = sink.requests.filter((r) => r.path === '/flaky');
    assert.equal(tries.length, 3);

    sink.always('/down', 500);
    const down = await ok('POST', '/notifications', { channel: 'slack', destination: `${sink.url}/down`, message: 'never arrives' });
    const failed = await notification(down.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.attempts, 3);
    assert.match(String(failed.last_error), /HTTP 500/);
  });

  test('a lost queue message and a sender that died mid-send are recovered by the sweep (at least once)', async () => {
    const { deps } = ctx;
    const now = new Date();
    const old = new Date(now.getTime() - 10 * 60_000);
    const insert = async (status: string) =>
      (
        await deps.db
          .insertInto('notifications')
          .values({ channel: 'webhook', destination: `${sink.url}/recovered`, subject: '', body: status, payload: JSON.stringify({ document: { status } }), status, attempts: status === 'sending' ? 1 : 0, next_attempt_at: old, sending_since: status === 'sending' ? old : null, created_at: old })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    const lost = await insert('queued'); // its queue message never existed
    const crashed = await insert('sending'); // the process sending it died before recording
    await deps.notifications.sweep({ graceS: 60, staleS: 120 }); // (the sender's own sweep runs every 30 s)
    const bodies = (await sink.waitFor('/recovered', 2)).map((r) => r.json().status).sort();
    assert.deepEqual(bodies, ['queued', 'sending']);
    assert.equal((await notification(lost)).status, 'sent');
    assert.deepEqual([(await notification(crashed)).status, (await notification(crashed)).attempts], ['sent', 2]);
  });

  test('a run whose notifications were never queued (its process died) gets them from the sweep, once', async () => {
    const job = await ok('POST', '/jobs', {
      name: unique('lost-event'),
      steps: [{ type: 'http', name: 'probe', method: 'GET', url: `${sink.url}/job-target`, expect_status: [204] }],
      notify: { on_failure: [{ channel: 'webhook', destination: `${sink.url}/recovered-event` }] },
    });
    const run = await runJob(job.id);
    await sink.waitFor('/recovered-event', 1);
    // As if the process had died before queuing: the notification never existed.
    await ctx.deps.db.deleteFrom('notifications').where('run_id', '=', run.id).execute();
    assert.equal(await ctx.deps.notifications.recoverEvents(300), 1);
    await sink.waitFor('/recovered-event', 2);
    assert.equal(await ctx.deps.notifications.recoverEvents(300), 0, 'already queued: nothing added');
  });

  test('a lost job.started is recovered by the sweep too, once', async () => {
    const job = await ok('POST', '/jobs', {
      name: unique('lost-start'),
      steps: [{ type: 'http', name: 'probe', method: 'GET', url: `${sink.url}/job-target`, expect_status: [200, 204, 404] }],
      notify: { on_start: [{ channel: 'webhook', destination: `${sink.url}/recovered-start` }] },
    });
    const run = await runJob(job.id);
    await sink.waitFor('/recovered-start', 1);
    await ctx.deps.db.deleteFrom('notifications').where('run_id', '=', run.id).execute();
    assert.equal(await ctx.deps.notifications.recoverEvents(300), 1);
    const [, again] = await sink.waitFor('/recovered-start', 2);
    assert.equal(again?.json().event, 'job.started');
    assert.equal(await ctx.deps.notifications.recoverEvents(300), 0, 'already queued: nothing added');
  });

  test('notify steps send during the run with the run’s context, secrets masked', async () => {
    const job = await ok('POST', '/jobs', {
      name: unique('stepper'),
      parameters: { token: { type: 'string', secret: true }, region: { type: 'string' } },
      steps: [{ type: 'notify', name: 'tell', channel: 'webhook', destination: `${sink.url}/step`, message: 'deploying {{ params.region }} with {{ params.token }} in run {{ run.id }}' }],
    });
    const run = await runJob(job.id, { parameters: { token: SECRET_PARAM, region: 'eu-west' } });
    assert.equal(run.status, 'completed');
    const [req] = await sink.waitFor('/step', 1);
    const doc = req?.json() as { event: string; message: string };
    assert.equal(doc.event, 'job.step');
    assert.equal(doc.message, `deploying eu-west with *** in run ${run.id}`);
    const bad = await call('POST', '/jobs', { name: unique('bad'), steps: [{ type: 'notify', channel: 'email', destination: 'not-an-address' }] });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal(bad.json().error.field, 'steps[0].destination');
  });

  test('preferences: the requester gets the events they enabled on their channels; quiet hours hold back all but failures', async () => {
    const user = await ctx.createUser('operator');
    const hhmm = (d: Date) => d.toISOString().slice(11, 16);
    const now = Date.now();
    await ok('PUT', '/users/me/notification-preferences', { channels: { email: { enabled: false }, slack: { enabled: true, webhook_url: `${sink.url}/prefs` } }, events: { 'job.completed': true, 'job.failed': true } }, user.token);
    const good = await ok('POST', '/jobs', { name: unique('pref-ok'), steps: [{ type: 'http', name: 'p', method: 'GET', url: `${sink.url}/job-ok` }] }, user.token);
    const bad = await ok('POST', '/jobs', { name: unique('pref-bad'), steps: [{ type: 'http', name: 'p', method: 'GET', url: `${sink.url}/job-ok`, expect_status: [418] }] }, user.token);
    await runJob(good.id, {}, user.token);
    assert.match((await sink.waitFor('/prefs', 1))[0]?.json().text as string, /completed/);

    await ok('PUT', '/users/me/notification-preferences', { quiet_hours: { start: hhmm(new Date(now - 3_600_000)), end: hhmm(new Date(now + 3_600_000)), timezone: 'UTC' } }, user.token);
    await runJob(good.id, {}, user.token);
    await runJob(bad.id, {}, user.token);
    const texts = (await sink.waitFor('/prefs', 2)).map((r) => String(r.json().text));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sink.accepted('/prefs').length, 2, 'the completed run in quiet hours sent nothing');
    assert.match(texts[1] ?? '', /failed/);
  });
});

describe('notifications queued while no worker runs', () => {
  test('wait in the queue and are all sent once a worker starts', async () => {
    const ctx = await createTestContext({ queue: true });
    const sink = await startHttpSink();
    try {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await ctx.request({ method: 'POST', url: '/notifications', token: ctx.adminToken, payload: { channel: 'webhook', destination: `${sink.url}/later`, message: `n${i}` } });
        assert.equal(res.statusCode, 200, res.body);
        ids.push(res.json().id as number);
      }
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(sink.requests.length, 0, 'nothing is sent without a worker');
      const stop = await startNotificationSender({ queue: ctx.deps.queue as NonNullable<typeof ctx.deps.queue>, notifications: ctx.deps.notifications, logger: ctx.deps.logger, options: ctx.config.notify });
      try {
        const got = await sink.waitFor('/later', 5);
        assert.deepEqual(got.map((r) => r.json().message).sort(), ['n0', 'n1', 'n2', 'n3', 'n4']);
        for (const id of ids) {
          assert.equal((await ctx.deps.notifications.get(id)).status, 'sent');
        }
      } finally {
        await stop();
      }
    } finally {
      await ctx.close();
      await sink.close();
    }
  });
});
