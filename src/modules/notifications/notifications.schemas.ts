/** Request and response schemas of the notification service (guide: Notification Service, port 3009). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';
import { CHANNELS } from './notifications.channels.ts';
import { JOB_EVENTS } from './notifications.templates.ts';

export const STATUSES = ['queued', 'sending', 'sent', 'failed'] as const;
const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });
const Email = Type.String({ format: 'email', maxLength: 254 });
const HttpUrl = Type.String({ pattern: '^https?://', maxLength: 2048, description: 'http(s) URL' });
const Host = Type.String({ minLength: 1, maxLength: 253 });

export const SmtpSettingsBody = Type.Object(
  {
    smtp_server: Host,
    smtp_port: Type.Integer({ minimum: 1, maximum: 65535 }),
    use_tls: Type.Optional(Type.Boolean({ description: 'STARTTLS (required), or implicit TLS on port 465; default true' })),
    username: Type.Optional(Type.Union([Type.String({ maxLength: 254 }), Type.Null()])),
    password: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Null()], { description: 'Write-only; null clears it, absent keeps it' })),
    from_email: Type.Optional(Email),
    from_name: Type.Optional(Type.String({ maxLength: 100 })),
    tls_verify: Type.Optional(Type.Boolean({ description: 'Validate the server certificate (default true)' })),
  },
  { additionalProperties: false },
);
export type SmtpSettingsBody = Static<typeof SmtpSettingsBody>;

export const SmtpSettingsResponse = Type.Object({
  smtp_server: Type.Union([Type.String(), Type.Null()]),
  smtp_port: Type.Union([Type.Integer(), Type.Null()]),
  use_tls: Type.Boolean(),
  username: Type.Union([Type.String(), Type.Null()]),
  from_email: Type.Union([Type.String(), Type.Null()]),
  from_name: Type.Union([Type.String(), Type.Null()]),
  tls_verify: Type.Boolean(),
  has_password: Type.Boolean(),
});

export const SmtpTestBody = Type.Object(
  { to_email: Email, subject: Type.Optional(Type.String({ maxLength: 500 })), body: Type.Optional(Type.String({ maxLength: 100_000 })) },
  { additionalProperties: false },
);
export type SmtpTestBody = Static<typeof SmtpTestBody>;

export const SuccessResponse = Type.Object({ success: Type.Boolean(), message: Type.String() });

export const NotificationCreateBody = Type.Object(
  {
    channel: StringEnum(CHANNELS),
    destination: Type.String({ minLength: 1, maxLength: 2048, description: 'Email address, or the webhook URL for slack, teams and webhook' }),
    template_id: Type.Optional(Id),
    subject: Type.Optional(Type.String({ maxLength: 500 })),
    message: Type.Optional(Type.String({ maxLength: 100_000 })),
    payload: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Template context (payload.*, absent keys blank; run_id or job_id fill run and job); sent as the body of a webhook, merged into Slack/Teams messages' })),
    secret_credential_id: Type.Optional(Id),
  },
  { additionalProperties: false },
);
export type NotificationCreateBody = Static<typeof NotificationCreateBody>;

export const NotificationListQuery = Type.Object(
  { ...PageQuery, status: Type.Optional(StringEnum([...STATUSES, 'pending'] as const, { description: 'pending means queued' })), channel: Type.Optional(StringEnum(CHANNELS)) },
  { additionalProperties: false },
);
export type NotificationListQuery = Static<typeof NotificationListQuery>;

export const NotificationResponse = Type.Object({
  id: Type.Integer(),
  channel: StringEnum(CHANNELS),
  destination: Type.String({ description: 'Whole for admins; a URL is shown to others as scheme://host/… (webhook URLs are secrets)' }),
  event: Type.Union([Type.String(), Type.Null()]),
  template_id: Type.Union([Type.Integer(), Type.Null()]),
  subject: Type.String(),
  run_id: Type.Union([Type.Integer(), Type.Null()]),
  status: StringEnum(STATUSES),
  attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp(),
  sent_at: NullableTimestamp(),
});
export const NotificationListResponse = Type.Object({ notifications: Type.Array(NotificationResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });
export const QueuedResponse = Type.Object({ id: Type.Integer(), status: Type.Literal('queued'), message: Type.String() });

export const ChatWebhookBody = Type.Object({ webhook_url: HttpUrl, payload: Type.Record(Type.String(), Type.Unknown()) }, { additionalProperties: false });
export type ChatWebhookBody = Static<typeof ChatWebhookBody>;

const TemplateEvent = Type.String({ pattern: '^[a-z][a-z0-9_.-]{0,63}$', description: 'job.started, job.completed, job.failed, job.canceled, or a name of your own' });
export const TemplateCreateBody = Type.Object(
  { channel: StringEnum(CHANNELS), event: TemplateEvent, name: Type.String({ minLength: 1, maxLength: 100 }), subject: Type.Optional(Type.String({ maxLength: 1000 })), body: Type.String({ minLength: 1, maxLength: 100_000 }) },
  { additionalProperties: false },
);
export type TemplateCreateBody = Static<typeof TemplateCreateBody>;
export const TemplateUpdateBody = Type.Partial(TemplateCreateBody, { additionalProperties: false });
export type TemplateUpdateBody = Static<typeof TemplateUpdateBody>;
export const TemplateResponse = Type.Object({
  id: Type.Integer(),
  channel: StringEnum(CHANNELS),
  event: Type.String(),
  name: Type.String(),
  subject: Type.String(),
  body: Type.String(),
  builtin: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});
export const TemplateListResponse = Type.Object({ templates: Type.Array(TemplateResponse), total: Type.Integer() });

const ChannelPreference = (address: string, schema: typeof Email | typeof HttpUrl) =>
  Type.Object({ enabled: Type.Boolean(), [address]: Type.Optional(Type.Union([schema, Type.Null()])) }, { additionalProperties: false });
const HHMM = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, 24-hour' });
export const PreferencesBody = Type.Object(
  {
    channels: Type.Optional(
      Type.Object(
        {
          email: Type.Optional(ChannelPreference('address', Email)),
          slack: Type.Optional(ChannelPreference('webhook_url', HttpUrl)),
          teams: Type.Optional(ChannelPreference('webhook_url', HttpUrl)),
          webhook: Type.Optional(ChannelPreference('url', HttpUrl)),
        },
        { additionalProperties: false },
      ),
    ),
    events: Type.Optional(Type.Object(Object.fromEntries(JOB_EVENTS.map((e) => [e, Type.Optional(Type.Boolean())])), { additionalProperties: false })),
    quiet_hours: Type.Optional(
      Type.Union([Type.Object({ start: HHMM, end: HHMM, timezone: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }), Type.Null()], {
        description: 'During quiet hours only job.failed is sent',
      }),
    ),
  },
  { additionalProperties: false },
);
export type PreferencesBody = Static<typeof PreferencesBody>;
export const PreferencesResponse = Type.Object({
  user_id: Type.Integer(),
  channels: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())),
  events: Type.Record(Type.String(), Type.Boolean()),
  quiet_hours: Type.Union([Type.Object({ start: Type.String(), end: Type.String(), timezone: Type.String() }), Type.Null()]),
});
