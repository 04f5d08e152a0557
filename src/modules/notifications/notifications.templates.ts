/**
 * Notification templates: the context a job event renders with, and checking a template at save
 * time by rendering it against a sample of that context in the strict engine job steps use. The
 * shipped defaults (one per channel and job event, editable) are rows of migration 0008.
 */
import { ValidationError } from '../../errors.ts';
import type { TemplateEngine } from '../../shared/templating.ts';

/** Job events that notify. */
export const JOB_EVENTS = ['job.started', 'job.completed', 'job.failed', 'job.canceled'] as const;
export type JobEvent = (typeof JOB_EVENTS)[number];

/** What a job event's templates can use. */
export interface EventContext {
  event: string;
  job: { id: number | null; name: string };
  run: { id: number; status: string; trigger: string; started_at: string | null; finished_at: string | null; duration_ms: number | null; summary: Record<string, number>; parameters: Record<string, unknown>; url: string };
  url: string;
}

/** A context with every field, for checking templates when they are saved. */
export const SAMPLE_CONTEXT: EventContext & { payload: Record<string, unknown>; message: string; subject: string } = {
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
  url: 'http://localhost:3000/job-runs/1',
  payload: {},
  message: '',
  subject: '',
};

/** Throws a 400 naming `field` when `template` does not render against the sample context. */
export function checkTemplate(engine: TemplateEngine, template: string, field: string): void {
  try {
    engine.render(template, SAMPLE_CONTEXT as unknown as Record<string, unknown>);
  } catch (e) {
    throw new ValidationError(`${field}: ${(e as Error).message}`, field);
  }
}
