/** Job events: which status raises which event, where a job's `notify` sends it, and what templates and webhooks see of the run. */
import type { Channel } from './notifications.channels.ts';
import type { NotificationsRepo } from './notifications.repo.ts';
import { type JobEvent, type NotificationContext, type RunView, SUMMARY_KEYS } from './notifications.templates.ts';

/** A job's `notify` setting. */
export interface JobNotify {
  on_start?: NotifyDestination[];
  on_success?: NotifyDestination[];
  on_failure?: NotifyDestination[];
  on_cancel?: NotifyDestination[];
}
/** One destination of a job's `notify`. */
export interface NotifyDestination {
  channel: Channel;
  destination: string;
  template_id?: number;
  secret_credential_id?: number;
}

/** The context of a run's notification: job, run and url always filled. */
export type EventContext = NotificationContext & { job: { id: number | null; name: string }; run: RunView; url: string };

/** The `notify` key of each event. */
export const NOTIFY_KEY: Record<JobEvent, keyof JobNotify> = { 'job.started': 'on_start', 'job.completed': 'on_success', 'job.failed': 'on_failure', 'job.canceled': 'on_cancel' };

/** The job event a final run status raises. */
export function eventOfStatus(status: string): JobEvent | undefined {
  return status === 'completed' ? 'job.completed' : status === 'failed' || status === 'timed_out' ? 'job.failed' : status === 'canceled' ? 'job.canceled' : undefined;
}

/** The webhook document of a job event (the run's details, masked parameters only). */
export const eventDocument = (ctx: EventContext, message: string) => ({
  event: ctx.event,
  job: ctx.job,
  run: { id: ctx.run.id, status: ctx.run.status, trigger: ctx.run.trigger, started_at: ctx.run.started_at, finished_at: ctx.run.finished_at, duration_ms: ctx.run.duration_ms, summary: ctx.run.summary },
  url: ctx.url,
  message,
});

/** The run behind an event (or notify step) and the template context it gives; undefined when the run is gone. */
export async function loadEventContext(repo: NotificationsRepo, publicUrl: string, runId: number, event: string) {
  const run = await repo.runForEvent(runId);
  if (!run) {
    return undefined;
  }
  const url = `${publicUrl.replace(/\/$/, '')}/job-runs/${run.id}`;
  const context: EventContext = {
    event,
    job: { id: run.job_id, name: run.job_name },
    run: {
      id: run.id,
      status: run.status,
      trigger: run.trigger,
      started_at: run.started_at?.toISOString() ?? null,
      finished_at: run.finished_at?.toISOString() ?? null,
      duration_ms: run.started_at && run.finished_at ? run.finished_at.getTime() - run.started_at.getTime() : null,
      // Every counter present, so a template reading one works while the run is still going.
      summary: { ...Object.fromEntries(SUMMARY_KEYS.map((k) => [k, 0])), ...run.summary },
      parameters: run.parameters as Record<string, unknown>,
      url,
    },
    target: null,
    message: null,
    subject: null,
    payload: {},
    url,
  };
  return { run, context };
}
