/** Routes for running jobs and reading runs (jobs service, port 3006). */
import type { JobRunRow, JobRunStepRow, JobRunTargetRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { streamRunEvents } from './runs.sse.ts';
import type { RunEvents } from './runs.events.ts';
import {
  OutputQuery,
  OutputResponse,
  RetryBody,
  RunBody,
  RunDetailResponse,
  RunListQuery,
  RunListResponse,
  RunQueuedResponse,
  type RUN_STATUSES,
} from './runs.schemas.ts';
import type { RunsService } from './runs.service.ts';

type RunStatus = (typeof RUN_STATUSES)[number];
const targetOrNull = (id: number) => (id === 0 ? null : id);

/** Maps a run row to the list shape. */
export function toRunResponse(run: JobRunRow) {
  return {
    id: run.id,
    job_id: run.job_id,
    job_name: run.job_name,
    status: run.status as RunStatus,
    trigger: run.trigger,
    requested_by: run.requested_by,
    schedule_id: run.schedule_id,
    retry_of: run.retry_of,
    parameters: run.parameters,
    target_ids: run.target_ids,
    summary: run.summary,
    queued_at: iso(run.queued_at),
    started_at: iso(run.started_at),
    finished_at: iso(run.finished_at),
  };
}

/** Per-status target counts; finished runs keep the stored summary, active ones are counted live. */
function liveSummary(run: JobRunRow, targets: JobRunTargetRow[]): Record<string, number> {
  if (Object.keys(run.summary).length > 0) {
    return run.summary;
  }
  const counts: Record<string, number> = { succeeded: 0, failed: 0, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0, pending: 0, running: 0 };
  for (const t of targets) {
    counts[t.status] = (counts[t.status] ?? 0) + 1;
  }
  return counts;
}

function toRunDetail(run: JobRunRow, targets: JobRunTargetRow[], steps: JobRunStepRow[]) {
  return {
    ...toRunResponse(run),
    summary: liveSummary(run, targets),
    targets: targets.map((t) => ({ target_id: targetOrNull(t.target_id), name: t.target_name, status: t.status, error: t.error, started_at: iso(t.started_at), finished_at: iso(t.finished_at) })),
    steps: steps.map((s) => ({
      step_index: s.step_index,
      name: s.name,
      target_id: targetOrNull(s.target_id),
      status: s.status,
      exit_code: s.exit_code,
      stdout: s.stdout,
      stderr: s.stderr,
      outputs: s.outputs,
      truncated: s.truncated,
      error: s.error,
      started_at: iso(s.started_at),
      finished_at: iso(s.finished_at),
      duration_ms: s.duration_ms,
    })),
  };
}

/** Registers /jobs/{id}/run and /job-runs* on `app`. */
export function runsRoutes(app: App, { runs, runEvents }: { runs: RunsService; runEvents: RunEvents }): void {
  const tags = ['job-runs'];

  app.post('/jobs/:id/run', {
    config: { access: 'operator' },
    schema: { tags: ['jobs'], summary: 'Queue a run of the job', params: IdParams, body: RunBody, response: { 200: RunQueuedResponse } },
    handler: async (request) => {
      const { target_ids, group_ids, parameters } = request.body;
      const id = await runs.queueRun({ jobId: request.params.id, targetIds: target_ids, groupIds: group_ids, parameters, trigger: 'manual', actor: actorOf(request) });
      return { job_run_id: id, status: 'queued' as const, message: 'Job queued for execution' };
    },
  });

  app.get('/job-runs', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List runs, newest first', querystring: RunListQuery, response: { 200: RunListResponse } },
    handler: async (request) => {
      const { job_id, status, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await runs.list({ ...page, jobId: job_id, status });
      return { runs: rows.map(toRunResponse), total, ...page };
    },
  });

  app.get('/job-runs/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'A run with per-target, per-step results', params: IdParams, response: { 200: RunDetailResponse } },
    handler: async (request) => {
      const run = await runs.getRun(request.params.id);
      const [targets, steps] = await Promise.all([runs.runTargets(run.id), runs.runSteps(run.id)]);
      return toRunDetail(run, targets, steps);
    },
  });

  app.post('/job-runs/:id/cancel', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Cancel a run: kills what is running, cancels the rest', params: IdParams, response: { 200: RunDetailResponse } },
    handler: async (request) => {
      await runs.cancel(actorOf(request), request.params.id);
      const run = await runs.getRun(request.params.id);
      return toRunDetail(run, await runs.runTargets(run.id), await runs.runSteps(run.id));
    },
  });

  app.post('/job-runs/:id/retry', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Queue a new run on the targets that did not succeed', params: IdParams, body: RetryBody, response: { 200: RunQueuedResponse } },
    handler: async (request) => {
      const id = await runs.retry(actorOf(request), request.params.id, request.body.only_failed ?? true);
      return { job_run_id: id, status: 'queued' as const, message: 'Retry queued for execution' };
    },
  });

  app.get('/job-runs/:id/output', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Resumable tail of one step\'s output', params: IdParams, querystring: OutputQuery, response: { 200: OutputResponse } },
    handler: async (request) => {
      const { target_id = 0, step_index, offset = 0, stream = 'stdout' } = request.query;
      const tail = await runs.outputTail(request.params.id, target_id, step_index, stream, offset);
      return { run_id: request.params.id, target_id: targetOrNull(target_id), step_index, stream, offset, ...tail };
    },
  });

  app.get('/job-runs/:id/events', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Server-Sent Events: step_started, output, step_finished, target_finished, run_finished (resume with Last-Event-ID)', params: IdParams },
    handler: async (request, reply) => {
      await runs.getRun(request.params.id);
      await streamRunEvents(request, reply, runEvents, request.params.id);
    },
  });
}
