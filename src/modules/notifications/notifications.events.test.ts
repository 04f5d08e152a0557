/**
 * Job events end to end through the worker, for the cases the main delivery test leaves out: timed
 * out and canceled runs, a template that breaks at send time (the other destinations, and that
 * one, still get their notification), a run the recovery sweep cannot handle (the runs after it
 * are still recovered), shipped templates in notify steps, the creator and the requester both
 * notified, the default email to the account's address, and masked parameters in templates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { type HttpSink, listenHttp, startHttpSink } from '../../../test/http-sink.ts';
import { startSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';

const SECRET_PARAM = 'hunter2-must-stay-masked';

describe('job events: edge cases', () => {
  let ctx: TestContext;
  let smtp: TestSmtpServer;
  let sink: HttpSink;
  let hang: { url: string; close(): Promise<void> };
  const call = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const ok = async (method: 'POST' | 'PUT', url: string, payload: Record<string, unknown>, token = ctx.adminToken) => {
    const res = await call(method, url, payload, token);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown> & { id: number };
  };
  const runStatus = async (runId: number, until: (s: string) => boolean) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = (await call('GET', `/job-runs/${runId}`)).json().status as string;
      if (until(status) || Date.now() > deadline) {
        return status;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const start = async (jobId: number, payload: Record<string, unknown> = {}, token = ctx.adminToken) => Number((await ok('POST', `/jobs/${jobId}/run`, payload, token)).job_run_id);
  const run = async (jobId: number, payload: Record<string, unknown> = {}, token = ctx.adminToken) => {
    const id = await start(jobId, payload, token);
    return { id, status: await runStatus(id, (s) => !['queued', 'running'].includes(s)) };
  };
  const failingStep = () => [{ type: 'http', name: 'probe', method: 'GET', url: `${sink.url}/target`, expect_status: [204] }];
  const rows = (runId: number) => ctx.deps.db.selectFrom('notifications').selectAll().where('run_id', '=', runId).execute();

  before(async () => {
    ctx = await createTestContext({ worker: true, env: { OPSCONDUCTOR_NOTIFY_RETRY_BASE_S: '0.2', OPSCONDUCTOR_NOTIFY_MAX_ATTEMPTS: '3' } });
    smtp = await startSmtpServer({ users: { mailer: 'Mailer-pass-2' }, tls: 'starttls' });
    sink = await startHttpSink();
    hang = await listenHttp(() => {}); // never answers: a step that runs until stopped
    await ok('POST', '/api/notification/smtp/settings', { smtp_server: '127.0.0.1', smtp_port: smtp.port, username: 'mailer', password: 'Mailer-pass-2', from_email: 'ops@example.test', tls_verify: false });
    await ok('PUT', '/users/me/notification-preferences', { channels: { email: { enabled: false } } });
  });
  after(async () => {
    await ctx?.close();
    await smtp?.close();
    await hang?.close();
    await sink?.close();
  });

  test('a timed-out run raises job.failed (on_failure); a canceled run raises job.canceled (on_cancel)', async () => {
    const notify = { on_failure: [{ channel: 'webhook', destination: `${sink.url}/failed` }], on_cancel: [{ channel: 'webhook', destination: `${sink.url}/canceled` }] };
    const slow = await ok('POST', '/jobs', { name: unique('slow'), timeout_s: 1, steps: [{ type: 'http', name: 'wait', method: 'GET', url: `${hang.url}/x` }], notify });
    assert.equal((await run(slow.id)).status, 'timed_out');
    const [failed] = await sink.waitFor('/failed', 1, 30_000);
    assert.deepEqual([failed?.json().event, (failed?.json().run as { status: string }).status], ['job.failed', 'timed_out']);

    const cancelable = await ok('POST', '/jobs', { name: unique('cancel'), steps: [{ type: 'http', name: 'wait', method: 'GET', url: `${hang.url}/y` }], notify });
    const id = await start(cancelable.id);
    await runStatus(id, (s) => s === 'running');
    await ok('POST', `/job-runs/${id}/cancel`, {});
    assert.equal(await runStatus(id, (s) => !['queued', 'running'].includes(s)), 'canceled');
    const [canceled] = await sink.waitFor('/canceled', 1, 30_000);
    assert.deepEqual([canceled?.json().event, (canceled?.json().run as { status: string }).status], ['job.canceled', 'canceled']);
    assert.equal(sink.accepted('/failed').length, 1, 'a canceled run is not a failure');
  });

  test('a template that breaks at send time falls back to the shipped default, noted on the row; other destinations are untouched', async () => {
    // Saved before its check existed (or edited in the database): the save-time check never saw it.
    const broken = await ctx.deps.db.insertInto('notification_templates').values({ channel: 'webhook', event: 'job.failed', name: unique('broken'), subject: '', body: 'x {{ nope }}', created_at: new Date(), updated_at: new Date() }).returning('id').executeTakeFirstOrThrow();
    const job = await ok('POST', '/jobs', {
      name: unique('fallback'),
      steps: failingStep(),
      notify: { on_failure: [{ channel: 'webhook', destination: `${sink.url}/broken`, template_id: broken.id }, { channel: 'slack', destination: `${sink.url}/fine` }] },
    });
    const { id, status } = await run(job.id);
    assert.equal(status, 'failed');
    assert.equal((await sink.waitFor('/broken', 1))[0]?.json().message, `${String(job.name)} failed`);
    assert.match(String((await sink.waitFor('/fine', 1))[0]?.json().text), /failed/);
    const row = (await rows(id)).find((r) => r.channel === 'webhook');
    assert.equal(row?.status, 'sent');
    assert.match(String(row?.last_error), new RegExp(`template ${broken.id} ".*" failed to render: undefined variable: nope.*sent with the shipped default template`));
  });

  test('the recovery sweep skips a run it cannot handle and still recovers the runs after it', async () => {
    const bad = await ok('POST', '/jobs', { name: unique('corrupt'), steps: failingStep(), notify: { on_failure: [{ channel: 'webhook', destination: `${sink.url}/corrupt` }] } });
    const good = await ok('POST', '/jobs', { name: unique('later'), steps: failingStep(), notify: { on_failure: [{ channel: 'webhook', destination: `${sink.url}/later` }] } });
    const badRun = await run(bad.id);
    const goodRun = await run(good.id);
    await sink.waitFor('/later', 1);
    await ctx.deps.db.updateTable('jobs').set({ notify: JSON.stringify({ on_failure: 5 }) }).where('id', '=', bad.id).execute();
    await ctx.deps.db.deleteFrom('notifications').where('run_id', 'in', [badRun.id, goodRun.id]).execute();
    const errors: number[] = [];
    try {
      // (The sender's own sweep may get to the good run first; either way it is the same code.)
      await ctx.deps.notifications.recoverEvents(300, (runId) => errors.push(runId));
    } finally {
      await ctx.deps.db.updateTable('jobs').set({ notify: null }).where('id', '=', bad.id).execute();
    }
    assert.deepEqual(errors, [badRun.id]);
    await sink.waitFor('/later', 2);
  });

  test('a notify step with a shipped template sends with the run as it is (running)', async () => {
    const templates = (await call('GET', '/notification-templates')).json().templates as Array<{ id: number; channel: string; event: string; builtin: boolean }>;
    const shipped = templates.find((t) => t.builtin && t.channel === 'slack' && t.event === 'job.started');
    const job = await ok('POST', '/jobs', { name: unique('step-tpl'), steps: [{ type: 'notify', name: 'tell', channel: 'slack', destination: `${sink.url}/step-shipped`, template_id: shipped?.id }] });
    const { id, status } = await run(job.id);
    assert.equal(status, 'completed');
    const text = String((await sink.waitFor('/step-shipped', 1))[0]?.json().text);
    assert.match(text, new RegExp(`\\*${String(job.name)}\\* running — run ${id} \\(manual\\)`));
  });

  test('the job’s creator and the run’s requester are each notified as their own preferences say', async () => {
    const creator = await ctx.createUser('operator');
    const requester = await ctx.createUser('operator');
    await ok('PUT', '/users/me/notification-preferences', { channels: { email: { enabled: false }, slack: { enabled: true, webhook_url: `${sink.url}/creator` } }, events: { 'job.completed': true } }, creator.token);
    await ok('PUT', '/users/me/notification-preferences', { channels: { email: { enabled: false }, teams: { enabled: true, webhook_url: `${sink.url}/requester` } }, events: { 'job.completed': true } }, requester.token);
    const job = await ok('POST', '/jobs', { name: unique('shared'), steps: [{ type: 'http', name: 'p', method: 'GET', url: `${sink.url}/ok` }] }, creator.token);
    assert.equal((await run(job.id, {}, requester.token)).status, 'completed');
    assert.match(String((await sink.waitFor('/creator', 1))[0]?.json().text), /completed/);
    assert.match(String((await sink.waitFor('/requester', 1))[0]?.json().title), /completed/);
  });

  test('a user who saved no preferences gets failures by email at their account address', async () => {
    const user = await ctx.createUser('operator');
    const job = await ok('POST', '/jobs', { name: unique('mine'), steps: failingStep() }, user.token);
    const { id, status } = await run(job.id, {}, user.token);
    assert.equal(status, 'failed');
    const address = `${user.username}@example.test`;
    const deadline = Date.now() + 15_000;
    while (!smtp.messages.some((m) => m.to.includes(address)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const mail = smtp.messages.find((m) => m.to.includes(address));
    assert.match(mail?.subject ?? '', new RegExp(`failed \\(run ${id}\\)`));
  });

  test('a template printing run.parameters shows secret parameters masked', async () => {
    const template = await ok('POST', '/notification-templates', { channel: 'webhook', event: 'job.failed', name: unique('params'), body: 'token={{ run.parameters.token }} region={{ run.parameters.region }} other=[{{ run.parameters.absent }}]' });
    const job = await ok('POST', '/jobs', {
      name: unique('params'),
      parameters: { token: { type: 'string', secret: true }, region: { type: 'string' } },
      steps: failingStep(),
      notify: { on_failure: [{ channel: 'webhook', destination: `${sink.url}/params`, template_id: template.id }] },
    });
    await run(job.id, { parameters: { token: SECRET_PARAM, region: 'eu-west' } });
    const [req] = await sink.waitFor('/params', 1);
    assert.equal(req?.json().message, 'token=*** region=eu-west other=[]');
    assert.ok(!String(req?.body).includes(SECRET_PARAM));
  });
});
