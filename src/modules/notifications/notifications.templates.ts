/**
 * Notification templates: the one context every template renders with, and checking a template
 * when it is saved. The shipped defaults (one per channel and job event, editable) are rows of
 * migration 0008.
 *
 * Every use — a job event, a notify step, POST /notifications — renders with the same shape
 * ({@link NotificationContext}). A part a use cannot fill is `null` (no run behind a plain
 * POST /notifications, no target outside notify steps), and the strict engine reads through
 * `null` as blank, so a template accepted when saved does not fail for a part its use lacks.
 * `payload` and `run.parameters` differ per call and per job, so lookups into them are lenient
 * everywhere: an absent key is blank. Any other unknown name stays an error, reported at save time.
 */
import { ValidationError } from '../../errors.ts';
import type { TemplateEngine } from '../../shared/templating.ts';

/** Job events that notify. */
export const JOB_EVENTS = ['job.started', 'job.completed', 'job.failed', 'job.canceled'] as const;
export type JobEvent = (typeof JOB_EVENTS)[number];

/** The counters of `run.summary`; all present (0 until counted) so templates can read any of them. */
export const SUMMARY_KEYS = ['succeeded', 'failed', 'unreachable', 'timed_out', 'canceled', 'skipped'] as const;

/** What templates see of a run; `finished_at` and `duration_ms` are null until it finishes. */
export interface RunView {
  id: number;
  status: string;
  trigger: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  summary: Record<string, number>;
  /** As stored with the run: secret parameters are `***`. */
  parameters: Record<string, unknown>;
  url: string;
}

/** The context of every notification template (see the file comment for what is null when). */
export interface NotificationContext {
  /** job.started|completed|failed|canceled, job.step (notify steps), or the template's event / `notification` (POST). */
  event: string;
  job: { id: number | null; name: string } | null;
  run: RunView | null;
  /** Notify steps only: the target the step runs for. */
  target: Record<string, unknown> | null;
  message: string | null;
  subject: string | null;
  /** POST /notifications' payload; `{}` elsewhere. */
  payload: Record<string, unknown>;
  /** The run's page. */
  url: string | null;
}

const LENIENT: ProxyHandler<Record<string, unknown>> = {
  // Own keys as they are; any other name reads as null (blank) rather than undefined (an error in the strict engine).
  // Object.prototype's names keep their meaning so the object still prints and serialises like a plain one.
  get: (t, key) => (typeof key === 'string' && Object.hasOwn(t, key) ? lenient(t[key]) : typeof key === 'symbol' || key in Object.prototype ? Reflect.get(t, key) : null),
  getOwnPropertyDescriptor: (t, key) =>
    Reflect.getOwnPropertyDescriptor(t, key) ?? (typeof key === 'string' && !(key in Object.prototype) ? { value: null, writable: true, enumerable: false, configurable: true } : undefined),
};

/** `value` with lenient lookups at every depth: absent keys read as null. */
export function lenient(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(lenient);
  }
  return value !== null && typeof value === 'object' ? new Proxy(value as Record<string, unknown>, LENIENT) : value;
}

/** The render context of `parts`: every field present, missing parts null, payload and parameters lenient. */
export function contextOf(parts: Partial<NotificationContext> & { event: string }): Record<string, unknown> {
  const ctx: NotificationContext = { job: null, run: null, target: null, message: null, subject: null, payload: {}, url: parts.run?.url ?? null, ...parts };
  return { ...ctx, payload: lenient(ctx.payload), run: ctx.run && { ...ctx.run, parameters: lenient(ctx.run.parameters) } };
}

/** The context with every part filled, for checking templates when they are saved. */
const SAMPLE_CONTEXT = contextOf({
  event: 'job.failed',
  job: { id: 1, name: 'sample-job' },
  run: {
    id: 1,
    status: 'failed',
    trigger: 'manual',
    started_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:01:00.000Z',
    duration_ms: 60000,
    summary: { succeeded: 1, failed: 1, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0 },
    parameters: {},
    url: 'http://localhost:3000/job-runs/1',
  },
  target: { id: 1, name: 'sample-target', host: '192.0.2.1', port: 22, os_type: 'linux', protocol: 'ssh', tags: [] },
  message: 'sample message',
  subject: 'sample subject',
});

/** The context with nothing filled (a plain POST /notifications). */
const EMPTY_CONTEXT = contextOf({ event: 'notification' });

/** Throws a 400 naming `field` when `template` fails against the filled or the empty context. */
export function checkTemplate(engine: TemplateEngine, template: string, field: string): void {
  try {
    engine.render(template, SAMPLE_CONTEXT);
    engine.render(template, EMPTY_CONTEXT);
  } catch (e) {
    throw new ValidationError(`${field}: ${(e as Error).message}`, field);
  }
}

/** `template` rendered with `context` (plain text is returned as is). */
export function renderText(engine: TemplateEngine, template: string, context: Record<string, unknown>): string {
  return engine.isTemplate(template) ? engine.render(template, context) : template;
}
