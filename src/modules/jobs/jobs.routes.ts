/** Routes of the jobs service (guide: Jobs Service, port 3006): job definitions. */
import type { JobRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { JobCreateBody, JobListQuery, JobListResponse, JobResponse, JobUpdateBody } from './jobs.schemas.ts';
import type { JobsService } from './jobs.service.ts';

/** Maps a row to the API shape (definitions hold no secret, so steps are returned whole). */
export function toJobResponse(row: JobRow) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    status: row.status as 'active' | 'inactive',
    steps: row.steps,
    parameters: row.parameters,
    concurrency: row.concurrency,
    allow_concurrent_runs: row.allow_concurrent_runs,
    timeout_s: row.timeout_s,
    notify: (row.notify ?? null) as never,
    created_by: row.created_by,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Registers /jobs* on `app`. */
export function jobsRoutes(app: App, { jobs }: { jobs: JobsService }): void {
  const tags = ['jobs'];
  const one = { 200: JobResponse };

  app.get('/jobs', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List jobs', querystring: JobListQuery, response: { 200: JobListResponse } },
    handler: async (request) => {
      const { status, created_by, search, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await jobs.list(actorOf(request), { ...page, status, createdBy: created_by, search });
      return { jobs: rows.map(toJobResponse), total, ...page };
    },
  });

  app.post('/jobs', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create a job', body: JobCreateBody, response: one },
    handler: async (request) => toJobResponse(await jobs.create(actorOf(request), request.body)),
  });

  app.get('/jobs/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a job with its steps', params: IdParams, response: one },
    handler: async (request) => toJobResponse(await jobs.get(actorOf(request), request.params.id)),
  });

  app.put('/jobs/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Update a job', params: IdParams, body: JobUpdateBody, response: one },
    handler: async (request) => toJobResponse(await jobs.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/jobs/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a job (its past runs are kept)', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await jobs.remove(actorOf(request), request.params.id);
      return { message: 'Job deleted successfully' };
    },
  });
}
