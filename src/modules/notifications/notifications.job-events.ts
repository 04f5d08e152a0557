/**
 * Job events and notify steps as notifications: the fan-out of a run's event to its job's `notify`
 * destinations and to the people whose preferences ask for it, and a notify step's own message.
 * Each destination renders on its own: a template that fails then falls back to the channel's
 * shipped default (and the failure is kept on the row), so one bad template never costs the other
 * destinations — or that one — their notification.
 */
import { createHash } from 'node:crypto';

import type { NotificationTemplateRow, Queryable } from '../../db/schema.ts';
import type { Clock } from '../../shared/clock.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import type { Channel } from './notifications.channels.ts';
import { type EventContext, eventDocument, eventOfStatus, type JobNotify, loadEventContext, NOTIFY_KEY, type NotifyDestination } from './notifications.events.ts';
import { destinationsFor, type Preferences } from './notifications.preferences.ts';
import type { NotificationsRepo, NotificationWrite } from './notifications.repo.ts';
import { contextOf, type JobEvent, renderText } from './notifications.templates.ts';

type EventRun = NonNullable<Awaited<ReturnType<NotificationsRepo['runForEvent']>>>;

/** A notify step as the worker hands it over (already rendered against the step's context). */
export interface NotifyStep {
  channel: Channel;
  destination: string;
  template_id?: number;
  subject?: string;
  message?: string;
  secret_credential_id?: number;
}

/** What rendering one destination gave: the template used and, when the chosen one failed, why. */
interface Rendered {
  template: NotificationTemplateRow | undefined;
  subject: string;
  body: string;
  templateError: string | undefined;
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';

/** Builds the job-event half of the notifications service. */
export function createJobEvents(deps: {
  repo: NotificationsRepo;
  templates: TemplateEngine;
  clock: Clock;
  publicUrl: string;
  enqueue: (rows: NotificationWrite[], q?: Queryable) => Promise<number[]>;
  preferences: (userId: number) => Promise<Preferences>;
  checkNotifyDestination: (d: NotifyStep, field: string) => Promise<void>;
}) {
  const { repo, templates, clock, publicUrl, enqueue } = deps;

  /** Where the people behind a run (its job's creator, who started it) asked to hear of `event`; email only once SMTP is set up. */
  async function preferredDestinations(run: EventRun, event: JobEvent): Promise<NotifyDestination[]> {
    const found: NotifyDestination[] = [];
    const emailReady = (await repo.smtpSettings())?.smtp_server !== undefined;
    for (const userId of new Set([run.created_by, run.requested_by].filter((u): u is number => typeof u === 'number'))) {
      const user = await repo.userEmail(userId);
      if (user?.is_active) {
        // Quiet hours as they were when the event happened (a recovered event is judged by then, not now).
        const at = (event === 'job.started' ? run.started_at : run.finished_at) ?? clock.now();
        for (const [channel, destination] of destinationsFor(await deps.preferences(userId), event, at, user.email)) {
          if (channel !== 'email' || emailReady) {
            found.push({ channel, destination });
          }
        }
      }
    }
    return found;
  }

  /** The destination's template, else the channel's shipped default, else a plain line; each failure noted. */
  async function renderFor(t: NotifyDestination, event: JobEvent, context: EventContext): Promise<Rendered> {
    const ctx = contextOf(context);
    const failures: string[] = [];
    // The shipped default is read only when the destination's own template is missing or fails.
    const candidates = [() => (t.template_id !== undefined ? repo.template(t.template_id) : undefined), () => repo.builtinTemplate(t.channel, event)];
    const tried = new Set<number>();
    for (const load of candidates) {
      const template = await load();
      if (template && !tried.has(template.id)) {
        tried.add(template.id);
        try {
          return { template, subject: renderText(templates, template.subject, ctx), body: renderText(templates, template.body, ctx), templateError: note(failures) };
        } catch (e) {
          failures.push(`template ${template.id} "${template.name}" failed to render: ${firstLine(e)}`);
        }
      }
    }
    const line = `${context.job.name} ${context.run.status}`;
    return { template: undefined, subject: line, body: `${line} (run ${context.run.id})`, templateError: note(failures, 'a plain line') };
  }

  function note(failures: string[], fallback = 'the shipped default template'): string | undefined {
    return failures.length === 0 ? undefined : `${failures.join('; ')}; sent with ${fallback}`;
  }

  /** One notification of a run event. */
  async function eventRow(runId: number, event: JobEvent, context: EventContext, t: NotifyDestination, key: string): Promise<NotificationWrite> {
    const { template, subject, body, templateError } = await renderFor(t, event, context);
    return {
      channel: t.channel,
      destination: t.destination,
      event,
      template_id: template?.id ?? null,
      subject,
      body,
      payload: { document: t.channel === 'webhook' ? eventDocument(context, body) : {}, url: context.url, status: context.run.status, ...(templateError ? { template_error: templateError } : {}) },
      secret_credential_id: t.secret_credential_id ?? null,
      run_id: runId,
      dedupe_key: key,
      created_by: null,
      last_error: templateError ?? null,
    };
  }

  const events = {
    /** Queues the notifications of `event` for run `runId`: the job's `notify` destinations and the people whose preferences ask for it. */
    async runEvent(runId: number, event: JobEvent): Promise<number[]> {
      const found = await loadEventContext(repo, publicUrl, runId, event);
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

    /**
     * Queues the notification of a notify step in run `runId`. A template renders with the run as it
     * is now (status `running`, no finish yet) and the step's target; `mask` hides the run's secrets.
     * A template that fails fails the step, where the run shows why.
     */
    async fromStep(runId: number, step: NotifyStep, stepContext: { target?: unknown }, mask: (text: string) => string): Promise<number> {
      await deps.checkNotifyDestination(step, 'step');
      const found = await loadEventContext(repo, publicUrl, runId, 'job.step');
      const template = step.template_id === undefined ? undefined : await repo.template(step.template_id);
      const ctx = contextOf({ ...found?.context, event: 'job.step', target: (stepContext.target as Record<string, unknown> | null | undefined) ?? null, message: step.message ?? null, subject: step.subject ?? null });
      const subject = mask(step.subject ?? (template ? renderText(templates, template.subject, ctx) : `OpsConductor run ${runId}`));
      const body = mask(step.message ?? (template ? renderText(templates, template.body, ctx) : ''));
      const url = found?.context.url ?? `${publicUrl.replace(/\/$/, '')}/job-runs/${runId}`;
      const document = step.channel === 'webhook' ? { event: 'job.step', run: { id: runId }, subject, message: body, url } : {};
      const [id] = await enqueue([
        { channel: step.channel, destination: step.destination, event: 'job.step', template_id: template?.id ?? null, subject, body, payload: { document, url, status: found?.context.run.status }, secret_credential_id: step.secret_credential_id ?? null, run_id: runId, dedupe_key: null, created_by: null },
      ]);
      return id as number;
    },

    /**
     * Queues again the events of runs that started or finished in the last `windowS` seconds: a
     * process that died between starting or finishing a run and queuing its notifications loses
     * nothing (`job.started` may then arrive after the run's end; the dedupe key
     * makes this a no-op for events already queued). A run that cannot be handled is reported to
     * `onError` and skipped, so it never holds back the runs after it. Returns the notifications added.
     */
    async recoverEvents(windowS: number, onError: (runId: number, err: unknown) => void = () => {}): Promise<number> {
      const since = new Date(clock.now().getTime() - windowS * 1000);
      const lost: Array<[number, JobEvent | undefined]> = [
        ...(await repo.startedSince(since, 500)).map((run): [number, JobEvent] => [run.id, 'job.started']),
        ...(await repo.finishedSince(since, 500)).map((run): [number, JobEvent | undefined] => [run.id, eventOfStatus(run.status)]),
      ];
      let added = 0;
      for (const [runId, event] of lost) {
        try {
          added += event ? (await events.runEvent(runId, event)).length : 0;
        } catch (e) {
          onError(runId, e);
        }
      }
      return added;
    },
  };
  return events;
}
