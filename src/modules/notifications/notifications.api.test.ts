/**
 * The notification service's settings and synchronous sends, against a real SMTP server
 * (smtp-server with AUTH and STARTTLS) and local HTTP receivers: SMTP settings never show the
 * password, the SMTP test reports the server's own errors, Slack/Teams sends report non-2xx,
 * templates are checked when saved, preferences are validated and kept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

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
});
