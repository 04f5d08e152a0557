/**
 * Notifications: every notification is a row first and a queue message in the same transaction;
 * a worker sends it (notifications.delivery.ts). Also the SMTP settings (password sealed), the
 * synchronous Slack/Teams sends, templates (checked when saved), per-user preferences, and the
 * fan-out of job events to a job's `notify` destinations and to the people who asked for them.
 */
import type { Db, NotificationTemplateRow, Queryable } from '../../db/schema.ts';
import { NotFoundError, ServiceCommunicationError, ValidationError } from '../../errors.ts';
import type { SecretSettings } from '../../secrets/secret-settings.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import { QUEUES, type Queue, queueDb } from '../../worker/queue.ts';
import type { AuditService } from '../audit/index.ts';
import type { CredentialsService } from '../credentials/index.ts';
import { checkTimezone } from '../scheduler/index.ts';
import { type Channel, DeliveryError, deliver, postJson } from './notifications.channels.ts';
import { loadEventContext } from './notifications.events.ts';
import { createJobEvents } from './notifications.job-events.ts';
import { defaultPreferences, mergePreferences, type Preferences } from './notifications.preferences.ts';
import type { NotificationsRepo, NotificationWrite } from './notifications.repo.ts';
import type { NotificationCreateBody, PreferencesBody } from './notifications.schemas.ts';
import { createSmtpSettings } from './notifications.smtp.ts';
import { createTemplateAdmin } from './notifications.template-admin.ts';
import { contextOf, JOB_EVENTS, type NotificationContext, renderText } from './notifications.templates.ts';

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

/** Throws a 400 naming `field` unless `destination` suits `channel`. */
export function checkDestination(channel: Channel, destination: string, field = 'destination'): void {
  const ok = channel === 'email' ? EMAIL.test(destination) : /^https?:\/\/[^\s]+$/.test(destination);
  if (!ok) {
    throw new ValidationError(`${field}: ${channel === 'email' ? 'an email address' : 'an http(s) URL'} is expected for ${channel}`, field);
  }
}

/** Builds the notifications service. */
export function createNotificationsService(deps: {
  db: Db;
  repo: NotificationsRepo;
  queue: Queue | undefined;
  templates: TemplateEngine;
  secretSettings: SecretSettings;
  credentials: CredentialsService;
  audit: AuditService;
  clock: Clock;
  publicUrl: string;
}) {
  const { db, repo, queue, templates, credentials, audit, clock } = deps;
  const smtp = createSmtpSettings(deps);
  const smtpOptions = smtp.options;

  async function checkSecretCredential(id: number | undefined, field: string): Promise<void> {
    if (id !== undefined && (await credentials.typeOf(id, field)) !== 'api_token') {
      throw new ValidationError(`${field}: webhooks are signed with an api_token credential`, field);
    }
  }

  async function templateRow(id: number, field = 'template_id'): Promise<NotificationTemplateRow> {
    const row = await repo.template(id);
    if (!row) {
      throw new ValidationError(`${field}: template ${id} does not exist`, field);
    }
    return row;
  }

  /** Inserts rows and their queue messages in one transaction; returns the rows inserted (duplicates by dedupe key are skipped). */
  async function enqueue(rows: NotificationWrite[], q?: Queryable): Promise<number[]> {
    if (!queue) {
      throw new ServiceCommunicationError('queue', 'The background queue is not running in this process');
    }
    const run = async (tx: Queryable) => {
      const now = clock.now();
      const ids: number[] = [];
      for (const row of rows) {
        const inserted = await repo.insert(tx, row, now);
        if (inserted) {
          ids.push(inserted.id);
        }
      }
      if (ids.length > 0) {
        await queue.insert(
          ids.map((id) => ({ name: QUEUES.notification, data: { id } })),
          { db: queueDb(tx) },
        );
      }
      return ids;
    };
    return q ? run(q) : db.transaction().execute(run);
  }

  /** What a POST /notifications template sees: the run or job its payload names (`run_id`, `job_id`), else none. */
  async function requestContext(input: NotificationCreateBody, event: string): Promise<Record<string, unknown>> {
    const parts: Partial<NotificationContext> & { event: string } = { event, message: input.message ?? null, subject: input.subject ?? null, payload: input.payload ?? {} };
    const { run_id: runId, job_id: jobId } = input.payload ?? {};
    if (runId !== undefined) {
      const found = Number.isInteger(runId) ? await loadEventContext(repo, deps.publicUrl, runId as number, event) : undefined;
      if (!found) {
        throw new ValidationError(`payload.run_id: run ${String(runId)} does not exist`, 'payload.run_id');
      }
      Object.assign(parts, { job: found.context.job, run: found.context.run, url: found.context.url });
    } else if (jobId !== undefined) {
      const job = Number.isInteger(jobId) ? await repo.jobName(jobId as number) : undefined;
      if (!job) {
        throw new ValidationError(`payload.job_id: job ${String(jobId)} does not exist`, 'payload.job_id');
      }
      parts.job = job;
    }
    return contextOf(parts);
  }

  /** Checks a POST /notifications body; its template, when it names one. */
  async function checkCreate(input: NotificationCreateBody): Promise<NotificationTemplateRow | undefined> {
    checkDestination(input.channel, input.destination);
    await checkSecretCredential(input.secret_credential_id, 'secret_credential_id');
    if (input.secret_credential_id !== undefined && input.channel !== 'webhook') {
      throw new ValidationError('secret_credential_id: only webhooks are signed', 'secret_credential_id');
    }
    const template = input.template_id === undefined ? undefined : await templateRow(input.template_id);
    if (template && template.channel !== input.channel) {
      throw new ValidationError(`template_id: template ${template.id} is for ${template.channel}, not ${input.channel}`, 'template_id');
    }
    if (!template && input.message === undefined && input.payload === undefined) {
      throw new ValidationError('message: give a message, a template_id or a payload', 'message');
    }
    return template;
  }

  const service = {
    smtpOptions,
    smtpSettings: smtp.get,
    saveSmtpSettings: smtp.save,
    testSmtp: smtp.test,

    /** Checks one destination of a job's `notify` or a notify step; throws a 400 naming `field`.*. */
    async checkNotifyDestination(d: { channel: string; destination: string; template_id?: number; secret_credential_id?: number }, field: string): Promise<void> {
      const channel = d.channel as Channel;
      checkDestination(channel, d.destination, `${field}.destination`);
      if (d.template_id !== undefined) {
        const template = await templateRow(d.template_id, `${field}.template_id`);
        if (template.channel !== channel) {
          throw new ValidationError(`${field}.template_id: template ${template.id} is for ${template.channel}, not ${channel}`, `${field}.template_id`);
        }
      }
      if (d.secret_credential_id !== undefined) {
        if (channel !== 'webhook') {
          throw new ValidationError(`${field}.secret_credential_id: only webhooks are signed`, `${field}.secret_credential_id`);
        }
        await checkSecretCredential(d.secret_credential_id, `${field}.secret_credential_id`);
      }
    },

    /** Slack or Teams now: the payload as given. */
    async sendChatNow(actor: Actor, kind: 'slack' | 'teams', url: string, payload: Record<string, unknown>): Promise<{ success: boolean; message: string }> {
      const name = kind === 'slack' ? 'Slack' : 'Teams';
      try {
        await postJson(url, JSON.stringify(payload));
        await audit.record(actor, `notification.${kind}`, { type: 'url', id: new URL(url).host }, { success: true });
        return { success: true, message: `${name} notification sent` };
      } catch (e) {
        if (e instanceof DeliveryError) {
          await audit.record(actor, `notification.${kind}`, { type: 'url', id: new URL(url).host }, { success: false });
          return { success: false, message: `${name} notification failed: ${e.message}` };
        }
        throw e;
      }
    },

    /** Queues one notification (POST /notifications). */
    async create(actor: Actor, input: NotificationCreateBody): Promise<number> {
      const template = await checkCreate(input);
      const event = template?.event ?? 'notification';
      const context = template ? await requestContext(input, event) : {};
      let subject: string;
      let body: string;
      try {
        subject = input.subject ?? (template ? renderText(templates, template.subject, context) : '');
        body = input.message ?? (template ? renderText(templates, template.body, context) : '');
      } catch (e) {
        throw new ValidationError(`template_id: ${(e as Error).message}`, 'template_id');
      }
      const document = input.channel === 'webhook' ? { event, subject, message: body, payload: input.payload ?? {} } : (input.payload ?? {});
      const [id] = await enqueue([
        {
          channel: input.channel,
          destination: input.destination,
          event: template?.event ?? null,
          template_id: template?.id ?? null,
          subject,
          body,
          payload: { document },
          secret_credential_id: input.secret_credential_id ?? null,
          run_id: null,
          dedupe_key: null,
          created_by: actor.id,
        },
      ]);
      await audit.record(actor, 'notification.create', { type: 'notification', id: id as number }, { channel: input.channel });
      return id as number;
    },

    async get(id: number) {
      const row = await repo.find(id);
      if (!row) {
        throw new NotFoundError(`Notification ${id} not found`);
      }
      return row;
    },
    list: (q: { page: number; limit: number; status?: string; channel?: string }) =>
      repo.list({ status: q.status === 'pending' ? 'queued' : q.status, channel: q.channel, offset: (q.page - 1) * q.limit, limit: q.limit }),

    // ---- templates ----
    ...createTemplateAdmin(deps),

    // ---- preferences ----
    async preferences(userId: number): Promise<Preferences> {
      const saved = await repo.preferences(userId);
      return saved ? mergePreferences(saved as unknown as Partial<Preferences>) : defaultPreferences();
    },
    /** A user's preferences for the API: 404 for a user that does not exist. */
    async userPreferences(userId: number): Promise<Preferences> {
      if (!(await repo.userEmail(userId))) {
        throw new NotFoundError(`User ${userId} not found`);
      }
      return service.preferences(userId);
    },
    async savePreferences(actor: Actor, userId: number, input: PreferencesBody): Promise<Preferences> {
      if (!(await repo.userEmail(userId))) {
        throw new NotFoundError(`User ${userId} not found`);
      }
      if (input.quiet_hours) {
        checkTimezone(input.quiet_hours.timezone, 'quiet_hours.timezone');
      }
      const merged = mergePreferences(await service.preferences(userId), input as Partial<Preferences>);
      await repo.savePreferences(userId, merged as never, clock.now());
      await audit.record(actor, 'notification.preferences', { type: 'user', id: userId }, { fields: Object.keys(input) });
      return merged;
    },

    // ---- job events and notify steps ----
    ...createJobEvents({
      repo, templates, clock, publicUrl: deps.publicUrl, enqueue, preferences: (userId): Promise<Preferences> => service.preferences(userId),
      checkNotifyDestination: (d, field): Promise<void> => service.checkNotifyDestination(d, field),
    }),

    /** Sends notification `id` if it is due (the queue handler). */
    async deliverOne(id: number, options: { staleS: number; maxAttempts: number; retryBaseS: number }): Promise<'sent' | 'retry' | 'failed' | 'skipped'> {
      const row = await repo.claim(id, clock.now(), options.staleS);
      if (!row) {
        return 'skipped';
      }
      const payload = row.payload as { document?: Record<string, unknown>; url?: string; status?: string; template_error?: string };
      // A template that failed when the row was made stays on record whatever delivery does.
      const note = payload.template_error;
      const withNote = (error: string) => (note ? `${error} (also: ${note})` : error);
      try {
        await deliver(
          { channel: row.channel as Channel, destination: row.destination, subject: row.subject, body: row.body, payload: payload.document ?? {}, url: payload.url, status: payload.status },
          { smtp: smtpOptions, secret: async () => (row.secret_credential_id ? ((await credentials.resolve(row.secret_credential_id)).token ?? undefined) : undefined) },
        );
        await repo.markSent(id, clock.now(), note ?? null);
        return 'sent';
      } catch (e) {
        const error = withNote((e as Error).message);
        if ((e instanceof DeliveryError && e.permanent) || row.attempts >= options.maxAttempts) {
          await repo.markFailed(id, error);
          return 'failed';
        }
        const at = new Date(clock.now().getTime() + options.retryBaseS * 1000 * 2.5 ** (row.attempts - 1));
        await repo.markRetry(id, error, at);
        await queue?.send(QUEUES.notification, { id }, { startAfter: at });
        return 'retry';
      }
    },

    /** Re-queues notifications whose message was lost or whose sender died mid-send. */
    async sweep(options: { graceS: number; staleS: number }): Promise<number> {
      const ids = await repo.overdue(clock.now(), options.graceS, options.staleS);
      if (ids.length > 0) {
        await queue?.insert(ids.map((id) => ({ name: QUEUES.notification, data: { id } })));
      }
      return ids.length;
    },

    /** The events a job's `notify` may name. */
    events: JOB_EVENTS,
  };
  return service;
}

/** The notifications service. */
export type NotificationsService = ReturnType<typeof createNotificationsService>;
