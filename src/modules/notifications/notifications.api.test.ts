/**
 * The notification service's settings and synchronous sends, against a real SMTP server
 * (smtp-server with AUTH and STARTTLS) and local HTTP receivers: SMTP settings never show the
 * password, the SMTP test reports the server's own errors, Slack/Teams sends report non-2xx,
 * templates are checked when saved, preferences are validated and kept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { sql } from 'kysely';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext } from '../../../test/app.ts';
import { type HttpSink, startHttpSink } from '../../../test/http-sink.ts';
import { startSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';

const SMTP_USER = 'mailer';
const SMTP_PASSWORD = 'smtp-Secret-9f3!';

describe('notification service: settings, tests and templates', () => {
  let ctx: TestContext;
  let smtp: TestSmtpServer;
  let sink: HttpSink;
  let operator: { token: string; id: number };
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const settings = (extra: Record<string, unknown> = {}) =>
    call('POST', '/api/notification/smtp/settings', { smtp_server: '127.0.0.1', smtp_port: smtp.port, use_tls: true, username: SMTP_USER, password: SMTP_PASSWORD, from_email: 'ops@example.test', from_name: 'Ops', tls_verify: false, ...extra });

  const until = async <T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) {
        return value;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const notification = (id: number) => until(async () => (await call('GET', `/notifications/${id}`)).json(), (n) => ['sent', 'failed'].includes(n.status));
  /** A queued row made directly (no queue message), due at `due`. */
  const queuedRow = async (path: string, due: Date) =>
    (
      await ctx.deps.db
        .insertInto('notifications')
        .values({ channel: 'webhook', destination: `${sink.url}${path}`, subject: '', body: 'x', payload: JSON.stringify({ document: {} }), status: 'queued', attempts: 0, next_attempt_at: due, created_at: new Date() })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;

  before(async () => {
    ctx = await createTestContext({ worker: true });
    smtp = await startSmtpServer({ users: { [SMTP_USER]: SMTP_PASSWORD }, tls: 'starttls' });
    sink = await startHttpSink();
    operator = await ctx.createUser('operator');
  });
  after(async () => {
    await ctx?.close();
    await smtp?.close();
    await sink?.close();
  });

  test('SMTP settings: stored by admins, read back without the password', async () => {
    const empty = (await call('GET', '/api/notification/smtp/settings')).json();
    assert.deepEqual([empty.smtp_server, empty.has_password], [null, false]);
    const unset = await call('POST', '/api/notification/smtp/test', { to_email: 'you@example.test' });
    assert.equal(unset.statusCode, 200, unset.body);
    assert.deepEqual(unset.json(), { success: false, message: 'SMTP is not configured: POST /api/notification/smtp/settings first' });
    const saved = await settings();
    assert.deepEqual(saved.json(), { message: 'SMTP settings updated successfully' });
    const got = await call('GET', '/api/notification/smtp/settings');
    assert.deepEqual(got.json(), { smtp_server: '127.0.0.1', smtp_port: smtp.port, use_tls: true, username: SMTP_USER, from_email: 'ops@example.test', from_name: 'Ops', tls_verify: false, has_password: true });
    assert.doesNotMatch(got.body, new RegExp(SMTP_PASSWORD));
    assertError(await call('POST', '/api/notification/smtp/settings', { smtp_server: 'x', smtp_port: 0 }), 400, 'validation_error', 'smtp_port');
    assertError(await call('GET', '/api/notification/smtp/settings', undefined, operator.token), 403, 'permission_error');
  });

  test('SMTP test sends for real through STARTTLS and AUTH', async () => {
    await settings();
    const res = await call('POST', '/api/notification/smtp/test', { to_email: 'you@example.test', subject: 'Tëst', body: 'hello from the test' });
    assert.deepEqual(res.json(), { success: true, message: 'Test email sent successfully' });
    const mail = smtp.messages.at(-1);
    assert.deepEqual([mail?.subject, mail?.text.trim(), mail?.to, mail?.from.address, mail?.user, mail?.secure], ['Tëst', 'hello from the test', ['you@example.test'], 'ops@example.test', SMTP_USER, true]);
  });

  test('SMTP test failures are 200 with the server’s own words, never the password', async () => {
    await settings({ password: 'wrong-Password-77' });
    const badAuth = (await call('POST', '/api/notification/smtp/test', { to_email: 'you@example.test' })).json();
    assert.equal(badAuth.success, false);
    assert.match(badAuth.message, /535/);
    assert.doesNotMatch(badAuth.message, /wrong-Password-77/);

    await settings({ tls_verify: true });
    const untrusted = (await call('POST', '/api/notification/smtp/test', { to_email: 'you@example.test' })).json();
    assert.equal(untrusted.success, false);
    assert.match(untrusted.message, /certificate|self[- ]signed/i);

    await settings({ smtp_port: 1 });
    const refused = (await call('POST', '/api/notification/smtp/test', { to_email: 'you@example.test' })).json();
    assert.equal(refused.success, false);
    assert.match(refused.message, /ECONNREFUSED/);

    assertError(await call('POST', '/api/notification/smtp/test', { to_email: 'not-an-address' }), 400, 'validation_error', 'to_email');
    await settings();
  });

  test('Slack and Teams sends post the payload as given; a non-2xx is success false with the reason', async () => {
    const ok = await call('POST', '/api/notification/webhook/slack', { webhook_url: `${sink.url}/slack`, payload: { text: 'hi' } }, operator.token);
    assert.deepEqual(ok.json(), { success: true, message: 'Slack notification sent' });
    assert.deepEqual((await sink.waitFor('/slack', 1))[0]?.json(), { text: 'hi' });
    sink.always('/teams-down', 500);
    const down = (await call('POST', '/api/notification/webhook/teams', { webhook_url: `${sink.url}/teams-down`, payload: { text: 'x' } })).json();
    assert.equal(down.success, false);
    assert.match(down.message, /HTTP 500/);
    assertError(await call('POST', '/api/notification/webhook/slack', { webhook_url: 'ftp://x', payload: {} }), 400, 'validation_error', 'webhook_url');
  });

  test('templates: shipped defaults for every channel and job event, each renders; bad Liquid is refused when saved', async () => {
    const { templates } = (await call('GET', '/notification-templates')).json() as { templates: Array<{ id: number; channel: string; event: string; builtin: boolean; subject: string; body: string }> };
    const builtin = templates.filter((t) => t.builtin);
    assert.equal(builtin.length, 16);
    for (const channel of ['email', 'slack', 'teams', 'webhook']) {
      for (const event of ['job.started', 'job.completed', 'job.failed', 'job.canceled']) {
        assert.ok(builtin.some((t) => t.channel === channel && t.event === event), `${channel} ${event}`);
      }
    }
    for (const t of builtin) {
      const res = await call('PUT', `/notification-templates/${t.id}`, { subject: t.subject, body: t.body });
      assert.equal(res.statusCode, 200, `${t.channel} ${t.event} renders: ${res.body}`);
    }
    assertError(await call('DELETE', `/notification-templates/${builtin[0]?.id}`), 409, 'invalid_state');
    assertError(await call('POST', '/notification-templates', { channel: 'email', event: 'job.failed', name: 'bad', body: '{{ run.nope }}' }), 400, 'validation_error', 'body');
    assertError(await call('POST', '/notification-templates', { channel: 'email', event: 'job.failed', name: 'bad2', subject: '{% include "x" %}', body: 'x' }), 400, 'validation_error', 'subject');
    assertError(await call('POST', '/notification-templates', { channel: 'email', event: 'x', name: 'n', body: 'x' }, operator.token), 403, 'permission_error');
    const made = await call('POST', '/notification-templates', { channel: 'slack', event: 'job.failed', name: 'Short failure', body: ':x: {{ job.name }} {{ run.status }}' });
    assert.equal(made.statusCode, 200, made.body);
    assertError(await call('POST', '/notification-templates', { channel: 'slack', event: 'job.failed', name: 'short FAILURE', body: 'x' }), 400, 'validation_error', 'name');
    assert.equal((await call('DELETE', `/notification-templates/${made.json().id}`)).statusCode, 200);
  });

  test('preferences: defaults, changes kept per channel and event, checked; admins reach anyone’s', async () => {
    const mine = (await call('GET', '/users/me/notification-preferences', undefined, operator.token)).json();
    assert.deepEqual([mine.channels.email.enabled, mine.events['job.failed'], mine.events['job.completed'], mine.quiet_hours], [true, true, false, null]);
    const changed = await call('PUT', '/users/me/notification-preferences', { channels: { slack: { enabled: true, webhook_url: `${sink.url}/mine` } }, events: { 'job.completed': true }, quiet_hours: { start: '22:00', end: '07:00', timezone: 'Europe/Paris' } }, operator.token);
    assert.equal(changed.statusCode, 200, changed.body);
    const after = (await call('GET', `/users/${operator.id}/notification-preferences`)).json();
    assert.deepEqual([after.channels.slack, after.channels.email.enabled, after.events['job.completed'], after.events['job.failed'], after.quiet_hours.timezone], [{ enabled: true, webhook_url: `${sink.url}/mine` }, true, true, true, 'Europe/Paris']);
    assertError(await call('PUT', '/users/me/notification-preferences', { quiet_hours: { start: '22:00', end: '07:00', timezone: 'Nowhere/Land' } }, operator.token), 400, 'validation_error', 'quiet_hours.timezone');
    assertError(await call('PUT', '/users/me/notification-preferences', { quiet_hours: { start: '25:00', end: '07:00', timezone: 'UTC' } }, operator.token), 400, 'validation_error');
    assertError(await call('PUT', '/users/me/notification-preferences', { channels: { slack: { enabled: true, webhook_url: 'not a url' } } }, operator.token), 400, 'validation_error');
    assertError(await call('GET', '/users/1/notification-preferences', undefined, operator.token), 403, 'permission_error');
  });

  test('preferences: an admin changes another user’s, which that user then sees; an unknown user is 404', async () => {
    const user = await ctx.createUser('viewer');
    const put = await call('PUT', `/users/${user.id}/notification-preferences`, { channels: { teams: { enabled: true, webhook_url: `${sink.url}/theirs` } }, events: { 'job.started': true } });
    assert.equal(put.statusCode, 200, put.body);
    const seen = (await call('GET', '/users/me/notification-preferences', undefined, user.token)).json();
    assert.deepEqual([seen.user_id, seen.channels.teams, seen.events['job.started'], seen.events['job.failed']], [user.id, { enabled: true, webhook_url: `${sink.url}/theirs` }, true, true]);
    assertError(await call('PUT', `/users/${user.id}/notification-preferences`, { events: { 'job.started': false } }, operator.token), 403, 'permission_error');
    assertError(await call('GET', '/users/999999/notification-preferences'), 404, 'not_found');
    assertError(await call('PUT', '/users/999999/notification-preferences', { events: { 'job.started': true } }), 404, 'not_found');
  });

  test('POST /notifications: the guide’s example (a shipped template and a payload) is queued and sent; the payload can name a run', async () => {
    await settings();
    assert.deepEqual(((await call('GET', '/notification-templates/1')).json() as { channel: string }).channel, 'email');
    const res = await call('POST', '/notifications', { channel: 'email', destination: 'guide@example.test', template_id: 1, payload: { ticket: 'T-1' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json().status, res.json().message], ['queued', 'Notification queued']);
    assert.equal((await notification(res.json().id)).status, 'sent');
    assert.ok(smtp.messages.some((m) => m.to.includes('guide@example.test')));

    const made = await call('POST', '/notification-templates', { channel: 'webhook', event: 'ticket', name: 'Ticket note', body: 'ticket {{ payload.ticket }}{{ payload.absent.deeper }} for [{{ job.name }}] [{{ run.status }}]' });
    assert.equal(made.statusCode, 200, made.body);
    const plain = await call('POST', '/notifications', { channel: 'webhook', destination: `${sink.url}/ticket`, template_id: made.json().id, payload: { ticket: 'T-9' } });
    assert.equal(plain.statusCode, 200, plain.body);
    assert.equal((await sink.waitFor('/ticket', 1))[0]?.json().message, 'ticket T-9 for [] []');

    const job = await call('POST', '/jobs', { name: 'ticket-job', steps: [{ type: 'http', name: 'p', method: 'GET', url: `${sink.url}/job-ok` }] });
    const runId = Number((await call('POST', `/jobs/${job.json().id}/run`, {})).json().job_run_id);
    await until(async () => (await call('GET', `/job-runs/${runId}`)).json().status, (status) => status === 'completed');
    const named = await call('POST', '/notifications', { channel: 'webhook', destination: `${sink.url}/ticket`, template_id: made.json().id, payload: { ticket: 'T-10', run_id: runId } });
    assert.equal(named.statusCode, 200, named.body);
    assert.equal((await sink.waitFor('/ticket', 2))[1]?.json().message, 'ticket T-10 for [ticket-job] [completed]');
    assertError(await call('POST', '/notifications', { channel: 'webhook', destination: `${sink.url}/ticket`, template_id: made.json().id, payload: { run_id: 999999 } }), 400, 'validation_error', 'payload.run_id');
  });

  test('GET /notifications: webhook URLs are masked for non-admins, whole for admins; status=pending and status=queued find queued ones', async () => {
    const viewer = await ctx.createUser('viewer');
    const hook = `${sink.url}/services/T000/B000/s3cr3t-path`;
    const id = (await call('POST', '/notifications', { channel: 'slack', destination: hook, message: 'masked' })).json().id as number;
    const masked = `${new URL(sink.url).protocol}//${new URL(sink.url).host}/…`;
    assert.equal((await call('GET', `/notifications/${id}`, undefined, viewer.token)).json().destination, masked);
    const listed = (await call('GET', '/notifications?channel=slack', undefined, viewer.token)).json().notifications as Array<{ id: number; destination: string }>;
    assert.equal(listed.find((n) => n.id === id)?.destination, masked);
    assert.ok(!JSON.stringify(listed).includes('s3cr3t-path'));
    assert.equal((await call('GET', `/notifications/${id}`)).json().destination, hook);

    const waiting = await queuedRow('/later', new Date(Date.now() + 3_600_000));
    for (const status of ['pending', 'queued']) {
      const found = (await call('GET', `/notifications?status=${status}&limit=100`)).json().notifications as Array<{ id: number; status: string }>;
      assert.ok(found.some((n) => n.id === waiting), status);
      assert.ok(found.every((n) => n.status === 'queued'), status);
    }
    assert.ok(!((await call('GET', '/notifications?status=sent&limit=100')).json().notifications as Array<{ id: number }>).some((n) => n.id === waiting));
  });

  test('a 4xx from the receiver is not retried: one attempt, failed with the reason', async () => {
    sink.always('/gone', 404);
    const id = (await call('POST', '/notifications', { channel: 'webhook', destination: `${sink.url}/gone`, message: 'x' })).json().id as number;
    const n = await notification(id);
    assert.deepEqual([n.status, n.attempts], ['failed', 1]);
    assert.match(n.last_error, /HTTP 404/);
    assert.equal(sink.requests.filter((r) => r.path === '/gone').length, 1);
  });

  test('backoff: each retry is scheduled at retry base × 2.5^(attempt − 1), on the row and in the queue', async () => {
    sink.always('/backoff', 503);
    const id = await queuedRow('/backoff', new Date());
    const options = { staleS: 120, maxAttempts: 5, retryBaseS: ctx.config.notify.retryBaseS };
    assert.equal(options.retryBaseS, 60, 'the documented default');
    const queued = async () => (await sql<{ start_after: Date }>`select start_after from pgboss.job where name = 'notification' and (data->>'id')::int = ${id} order by created_on desc limit 1`.execute(ctx.deps.db)).rows[0]?.start_after;
    for (const [attempt, delayS] of [[1, 60], [2, 150]] as const) {
      const before = Date.now();
      assert.equal(await ctx.deps.notifications.deliverOne(id, options), 'retry');
      const row = await ctx.deps.notifications.get(id);
      assert.equal(row.attempts, attempt);
      const due = row.next_attempt_at?.getTime() ?? 0;
      assert.ok(due >= before + delayS * 1000 && due <= Date.now() + delayS * 1000, `attempt ${attempt}: due in ${(due - before) / 1000} s`);
      assert.equal((await queued())?.getTime(), due, 'the queue message waits as long');
      // As if the delay had passed.
      await ctx.deps.db.updateTable('notifications').set({ next_attempt_at: new Date(Date.now() - 1000) }).where('id', '=', id).execute();
    }
    await ctx.deps.db.updateTable('notifications').set({ status: 'failed' }).where('id', '=', id).execute();
  });
});
