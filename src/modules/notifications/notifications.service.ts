/**
 * Notifications: every notification is a row first and a queue message in the same transaction;
 * a worker sends it (notifications.delivery.ts). Also the SMTP settings (password sealed), the
 * synchronous Slack/Teams sends, templates (checked when saved), per-user preferences, and the
 * fan-out of job events to a job's `notify` destinations and to the people who asked for them.
 */
import { createHash } from 'node:crypto';

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
import { defaultPreferences, destinationsFor, mergePreferences, type Preferences } from './notifications.preferences.ts';
import type { NotificationsRepo, NotificationWrite } from './notifications.repo.ts';
import { eventDocument, eventOfStatus, type JobNotify, loadEventContext, NOTIFY_KEY, type NotifyDestination } from './notifications.events.ts';
import type { NotificationCreateBody, PreferencesBody } from './notifications.schemas.ts';
import { createSmtpSettings } from './notifications.smtp.ts';
import { createTemplateAdmin } from './notifications.template-admin.ts';
import { JOB_EVENTS, type JobEvent } from './notifications.templates.ts';

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

/** Throws a 400 naming `field` unless `destination` suits `channel`. */
export function checkDestination(channel: Channel, destination: string, field = 'destination'): void {
  const ok = channel === 'email' ? EMAIL.test(destination) : /^https?:\/\/[^\s]+$/.test(destination);
  if (!ok) {
    throw new ValidationError(`${field}: ${channel === 'email' ? 'an email address' : 'an http(s) URL'} is expected for ${channel}`, field);
  }
}

/** Builds the notifications service. */
type LoadedEvent = NonNullable<Awaited<ReturnType<typeof loadEventContext>>>;
type EventRun = LoadedEvent['run'];
type EventContext = LoadedEvent['context'];

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
  const eventContext = (runId: number, event: JobEvent) => loadEventContext(repo, deps.publicUrl, runId, event);

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

  function render(template: string, context: Record<string, unknown>): string {
    return templates.isTemplate(template) ? templates.render(template, context) : template;
  }

  /** Where the people behind a run (its job's creator, who started it) asked to hear of `event`; email only once SMTP is set up. */
  async function preferredDestinations(run: EventRun, event: JobEvent): Promise<NotifyDestination[]> {
    const found: NotifyDestination[] = [];
    const emailReady = (await repo.smtpSettings())?.smtp_server !== undefined;
    for (const userId of new Set([run.created_by, run.requested_by].filter((u): u is number => typeof u === 'number'))) {
      const user = await repo.userEmail(userId);
      if (user?.is_active) {
        // Quiet hours as they were when the event happened (a recovered event is judged by then, not now).
        const at = (event === 'job.started' ? run.started_at : run.finished_at) ?? clock.now();
        for (const [channel, destination] of destinationsFor(await service.preferences(userId), event, at, user.email)) {
          if (channel !== 'email' || emailReady) {
            found.push({ channel, destination });
          }
        }
      }
    }
    return found;
  }

  /** One notification of a run event, rendered with the destination's template or the channel's builtin one. */
  async function eventRow(runId: number, event: JobEvent, context: EventContext, t: NotifyDestination, key: string): Promise<NotificationWrite> {
    const template = (t.template_id !== undefined ? await repo.template(t.template_id) : undefined) ?? (await repo.builtinTemplate(t.channel, event));
    const ctx = context as unknown as Record<string, unknown>;
    const subject = template ? render(template.subject, ctx) : `${context.job.name} ${context.run.status}`;
    const body = template ? render(template.body, ctx) : `${context.job.name} ${context.run.status} (run ${runId})`;
    return {
      channel: t.channel,
      destination: t.destination,
      event,
      template_id: template?.id ?? null,
      subject,
      body,
      payload: { document: t.channel === 'webhook' ? eventDocument(context, body) : {}, url: context.url, status: context.run.status },
      secret_credential_id: t.secret_credential_id ?? null,
      run_id: runId,
      dedupe_key: key,
      created_by: null,
    };
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
      const context = { event: template?.event ?? 'notification', payload: input.payload ?? {}, message: input.message ?? '', subject: input.subject ?? '' };
      let subject: string;
      let body: string;
      try {
        subject = input.subject ?? (template ? render(template.subject, context) : '');
        body = input.message ?? (template ? render(template.body, context) : '');
      } catch (e) {
        throw new ValidationError(`template_id: ${(e as Error).message}`, 'template_id');
      }
      const document = input.channel === 'webhook' ? { event: context.event, subject, message: body, payload: input.payload ?? {} } : (input.payload ?? {});
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

    // ---- job events ----
    /** Queues the notifications of `event` for run `runId`: the job's `notify` destinations and the people whose preferences ask for it. Never throws. */
    async runEvent(runId: number, event: JobEvent): Promise<number[]> {
      const found = await eventContext(runId, event);
      if (!found) {
        return [];
      }
      const { run, context } = found;
      const targets: NotifyDestination[] = [...(((run.notify ?? {}) as JobNotify)[NOTIFY_KEY[event]] ?? []), ...(await preferredDestinations(run, event))];
      const rows: NotificationWrite[] = [];
      const seen = new Set<string>();
      for (const t of targets) {
        const key = `run:${runId}:${event}:${t.channel}:${createHash('sha256').update(t.destination).digest('hex').slice(0, 24)}`;
        if (!seen.has(key)) {
          seen.add(key);
          rows.push(await eventRow(runId, event, context, t, key));
        }
      }
      return rows.length > 0 ? enqueue(rows) : [];
    },

    /** Queues the notification of a notify step in run `runId`; `context` is the step's template context, `mask` hides the run's secrets. */
    async fromStep(
      runId: number,
      step: { channel: Channel; destination: string; template_id?: number; subject?: string; message?: string; secret_credential_id?: number },
      context: Record<string, unknown>,
      mask: (text: string) => string,
    ): Promise<number> {
      await service.checkNotifyDestination(step, 'step');
      const template = step.template_id === undefined ? undefined : await repo.template(step.template_id);
      const subject = mask(step.subject ?? (template ? render(template.subject, context) : `OpsConductor run ${runId}`));
      const body = mask(step.message ?? (template ? render(template.body, context) : ''));
      const url = `${deps.publicUrl.replace(/\/$/, '')}/job-runs/${runId}`;
      const document = step.channel === 'webhook' ? { event: 'job.step', run: { id: runId }, subject, message: body, url } : {};
      const [id] = await enqueue([
        { channel: step.channel, destination: step.destination, event: 'job.step', template_id: template?.id ?? null, subject, body, payload: { document, url }, secret_credential_id: step.secret_credential_id ?? null, run_id: runId, dedupe_key: null, created_by: null },
      ]);
      return id as number;
    },

    /** Sends notification `id` if it is due (the queue handler). */
    async deliverOne(id: number, options: { staleS: number; maxAttempts: number; retryBaseS: number }): Promise<'sent' | 'retry' | 'failed' | 'skipped'> {
      const row = await repo.claim(id, clock.now(), options.staleS);
      if (!row) {
        return 'skipped';
      }
      const payload = row.payload as { document?: Record<string, unknown>; url?: string; status?: string };
      try {
        await deliver(
          { channel: row.channel as Channel, destination: row.destination, subject: row.subject, body: row.body, payload: payload.document ?? {}, url: payload.url, status: payload.status },
          { smtp: smtpOptions, secret: async () => (row.secret_credential_id ? ((await credentials.resolve(row.secret_credential_id)).token ?? undefined) : undefined) },
        );
        await repo.markSent(id, clock.now());
        return 'sent';
      } catch (e) {
        const error = (e as Error).message;
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

    /**
     * Queues again the events of runs that finished in the last `windowS` seconds: a process that
     * died between finishing a run and queuing its notifications loses nothing (the dedupe key
     * makes this a no-op for events already queued). Returns the notifications it added.
     */
    async recoverEvents(windowS: number): Promise<number> {
      let added = 0;
      for (const run of await repo.finishedSince(new Date(clock.now().getTime() - windowS * 1000), 500)) {
        const event = eventOfStatus(run.status);
        if (event) {
          added += (await service.runEvent(run.id, event)).length;
        }
      }
      return added;
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
