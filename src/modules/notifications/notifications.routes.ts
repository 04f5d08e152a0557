/** Routes of the notification service (guide: Notification Service, port 3009). */
import type { NotificationRow, NotificationTemplateRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { type Actor, hasRole } from '../../shared/roles.ts';
import type { Channel } from './notifications.channels.ts';
import {
  ChatWebhookBody,
  NotificationCreateBody,
  NotificationListQuery,
  NotificationListResponse,
  NotificationResponse,
  PreferencesBody,
  PreferencesResponse,
  QueuedResponse,
  SmtpSettingsBody,
  SmtpSettingsResponse,
  SmtpTestBody,
  SuccessResponse,
  TemplateCreateBody,
  TemplateListResponse,
  TemplateResponse,
  TemplateUpdateBody,
} from './notifications.schemas.ts';
import type { NotificationsService } from './notifications.service.ts';

type Status = 'queued' | 'sending' | 'sent' | 'failed';

/**
 * A destination as a non-admin sees it: a webhook URL is a bearer secret (whoever has a Slack or
 * Teams incoming-webhook URL can post to the channel), so only its scheme and host are shown.
 * Email addresses are not credentials and are shown whole.
 */
export function maskDestination(destination: string): string {
  if (!/^https?:\/\//i.test(destination)) {
    return destination;
  }
  try {
    const url = new URL(destination);
    return `${url.protocol}//${url.host}/…`;
  } catch {
    return '…';
  }
}

const toNotification = (row: NotificationRow, actor: Actor) => ({
  id: row.id,
  channel: row.channel as Channel,
  destination: hasRole(actor.role, 'admin') ? row.destination : maskDestination(row.destination),
  event: row.event,
  template_id: row.template_id,
  subject: row.subject,
  run_id: row.run_id,
  status: row.status as Status,
  attempts: row.attempts,
  last_error: row.last_error,
  created_at: iso(row.created_at),
  sent_at: iso(row.sent_at),
});

const toTemplate = (row: NotificationTemplateRow) => ({ ...row, channel: row.channel as Channel, created_at: iso(row.created_at), updated_at: iso(row.updated_at) });

/** Registers the notification routes on `app`. */
export function notificationsRoutes(app: App, { notifications }: { notifications: NotificationsService }): void {
  const tags = ['notifications'];

  app.get('/api/notification/smtp/settings', {
    config: { access: 'admin' },
    schema: { tags, summary: 'SMTP settings (never the password)', response: { 200: SmtpSettingsResponse } },
    handler: () => notifications.smtpSettings(),
  });
  app.post('/api/notification/smtp/settings', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Store SMTP settings (the password sealed)', body: SmtpSettingsBody, response: { 200: MessageResponse } },
    handler: async (request) => {
      await notifications.saveSmtpSettings(actorOf(request), request.body);
      return { message: 'SMTP settings updated successfully' };
    },
  });
  app.post('/api/notification/smtp/test', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Send a test email now; the SMTP server’s own error on failure', body: SmtpTestBody, response: { 200: SuccessResponse } },
    handler: (request) => notifications.testSmtp(actorOf(request), request.body),
  });
  for (const kind of ['slack', 'teams'] as const) {
    app.post(`/api/notification/webhook/${kind}`, {
      config: { access: 'operator' },
      schema: { tags, summary: `Post a payload to a ${kind === 'slack' ? 'Slack' : 'Teams'} incoming webhook now`, body: ChatWebhookBody, response: { 200: SuccessResponse } },
      handler: (request) => notifications.sendChatNow(actorOf(request), kind, request.body.webhook_url, request.body.payload),
    });
  }

  app.get('/notifications', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List notifications, newest first', querystring: NotificationListQuery, response: { 200: NotificationListResponse } },
    handler: async (request) => {
      const { status, channel, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await notifications.list({ ...page, status, channel });
      return { notifications: rows.map((row) => toNotification(row, actorOf(request))), total, ...page };
    },
  });
  app.post('/notifications', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Queue a notification', body: NotificationCreateBody, response: { 200: QueuedResponse } },
    handler: async (request) => ({ id: await notifications.create(actorOf(request), request.body), status: 'queued' as const, message: 'Notification queued' }),
  });
  app.get('/notifications/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'A notification and its delivery state', params: IdParams, response: { 200: NotificationResponse } },
    handler: async (request) => toNotification(await notifications.get(request.params.id), actorOf(request)),
  });

  app.get('/notification-templates', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List templates (the shipped defaults included)', response: { 200: TemplateListResponse } },
    handler: async () => {
      const rows = await notifications.templates();
      return { templates: rows.map(toTemplate), total: rows.length };
    },
  });
  app.get('/notification-templates/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a template', params: IdParams, response: { 200: TemplateResponse } },
    handler: async (request) => toTemplate(await notifications.template(request.params.id)),
  });
  app.post('/notification-templates', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Create a template (LiquidJS; rendering errors are reported now)', body: TemplateCreateBody, response: { 200: TemplateResponse } },
    handler: async (request) => toTemplate(await notifications.createTemplate(actorOf(request), request.body)),
  });
  app.put('/notification-templates/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Update a template', params: IdParams, body: TemplateUpdateBody, response: { 200: TemplateResponse } },
    handler: async (request) => toTemplate(await notifications.updateTemplate(actorOf(request), request.params.id, request.body)),
  });
  app.delete('/notification-templates/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Delete a template (shipped defaults can only be edited)', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await notifications.deleteTemplate(actorOf(request), request.params.id);
      return { message: 'Template deleted successfully' };
    },
  });

  app.get('/users/me/notification-preferences', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'My notification preferences', response: { 200: PreferencesResponse } },
    handler: async (request) => ({ user_id: actorOf(request).id, ...(await notifications.preferences(actorOf(request).id)) }),
  });
  app.put('/users/me/notification-preferences', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Change my notification preferences', body: PreferencesBody, response: { 200: PreferencesResponse } },
    handler: async (request) => ({ user_id: actorOf(request).id, ...(await notifications.savePreferences(actorOf(request), actorOf(request).id, request.body)) }),
  });
  app.get('/users/:id/notification-preferences', {
    config: { access: 'admin' },
    schema: { tags, summary: 'A user’s notification preferences', params: IdParams, response: { 200: PreferencesResponse } },
    handler: async (request) => ({ user_id: request.params.id, ...(await notifications.userPreferences(request.params.id)) }),
  });
  app.put('/users/:id/notification-preferences', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Change a user’s notification preferences', params: IdParams, body: PreferencesBody, response: { 200: PreferencesResponse } },
    handler: async (request) => ({ user_id: request.params.id, ...(await notifications.savePreferences(actorOf(request), request.params.id, request.body)) }),
  });
}
