/** Routes of the scheduler service (guide: Scheduler Service, port 3008): schedules, previews, fires. */
import type { ScheduleRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import {
  FiresQuery,
  FiresResponse,
  PreviewBody,
  PreviewQuery,
  PreviewResponse,
  ScheduleCreateBody,
  ScheduleListQuery,
  ScheduleListResponse,
  ScheduleResponse,
  ScheduleUpdateBody,
  TriggerResponse,
} from './scheduler.schemas.ts';
import type { SchedulerService } from './scheduler.service.ts';

type Overlap = 'skip' | 'queue' | 'allow';
type Catchup = 'none' | 'latest' | 'all';

/** Registers /schedules* on `app`. */
export function schedulerRoutes(app: App, { scheduler }: { scheduler: SchedulerService }): void {
  const tags = ['schedules'];
  const one = { 200: ScheduleResponse };
  const toResponse = (row: ScheduleRow) => ({
    id: row.id,
    job_id: row.job_id,
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    description: scheduler.describe(row),
    enabled: row.enabled,
    target_ids: row.target_ids,
    group_ids: row.group_ids,
    parameters: row.parameters,
    overlap: row.overlap as Overlap,
    catchup: row.catchup as Catchup,
    next_run: iso(row.next_run_at),
    last_run: iso(row.last_run_at),
    last_run_id: row.last_run_id,
    created_by: row.created_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  });

  app.get('/schedules', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List schedules', querystring: ScheduleListQuery, response: { 200: ScheduleListResponse } },
    handler: async (request) => {
      const { job_id, enabled, search, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await scheduler.list({ ...page, jobId: job_id, enabled, search });
      return { schedules: rows.map(toResponse), total, ...page };
    },
  });

  app.post('/schedules', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create a schedule', body: ScheduleCreateBody, response: one },
    handler: async (request) => toResponse(await scheduler.create(actorOf(request), request.body)),
  });

  app.post('/schedules/preview', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Next fire times of a cron expression in a zone, and its description', body: PreviewBody, response: { 200: PreviewResponse } },
    handler: async (request) => scheduler.preview(request.body.cron, request.body.timezone ?? 'UTC', request.body.count ?? 5, request.body.from),
  });

  app.get('/schedules/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a schedule', params: IdParams, response: one },
    handler: async (request) => toResponse(await scheduler.get(request.params.id)),
  });

  app.put('/schedules/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Update a schedule', params: IdParams, body: ScheduleUpdateBody, response: one },
    handler: async (request) => toResponse(await scheduler.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/schedules/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a schedule', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await scheduler.remove(actorOf(request), request.params.id);
      return { message: 'Schedule deleted successfully' };
    },
  });

  app.post('/schedules/:id/trigger', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Run the schedule’s job now', params: IdParams, response: { 200: TriggerResponse } },
    handler: async (request) => ({ job_run_id: await scheduler.trigger(actorOf(request), request.params.id), message: 'Job triggered successfully' }),
  });

  app.get('/schedules/:id/preview', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Next fire times of a schedule', params: IdParams, querystring: PreviewQuery, response: { 200: PreviewResponse } },
    handler: async (request) => {
      const row = await scheduler.get(request.params.id);
      return scheduler.preview(row.cron, row.timezone, request.query.count ?? 5, request.query.from);
    },
  });

  app.get('/schedules/:id/fires', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Times the schedule fired, waited, skipped or missed, newest first', params: IdParams, querystring: FiresQuery, response: { 200: FiresResponse } },
    handler: async (request) => {
      const { outcome, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await scheduler.fires(request.params.id, { ...page, outcome });
      const fires = rows.map((f) => ({ scheduled_for: iso(f.scheduled_for), fired_at: iso(f.fired_at), outcome: f.outcome as 'queued', run_id: f.run_id, error: f.error }));
      return { fires, total, ...page };
    },
  });
}
