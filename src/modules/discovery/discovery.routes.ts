/** Routes of the discovery service (guide: Discovery Service, port 3010). */
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { DiscoveryJobWithCount } from './discovery.repo.ts';
import {
  CreatedResponse,
  ImportBody,
  ImportResponse,
  JobCreateBody,
  JobListQuery,
  JobListResponse,
  JobResponse,
  RangeBody,
  RangeCheckResponse,
  ResultsResponse,
  ScanBody,
  ScanResponse,
  StartResponse,
} from './discovery.schemas.ts';
import { humanDuration, type DiscoveryService } from './discovery.service.ts';

type Status = 'queued' | 'running' | 'completed' | 'failed' | 'canceled';

const toSummary = (row: DiscoveryJobWithCount) => ({ id: row.id, name: row.name, status: row.status as Status, progress: row.progress, discovered_targets: Number(row.discovered ?? 0) });
const toJob = (row: DiscoveryJobWithCount) => ({
  ...toSummary(row),
  network_range: row.network_range,
  ports: row.ports,
  scanner: row.scanner,
  started_at: iso(row.started_at),
  finished_at: iso(row.finished_at),
  summary: row.summary,
  error: row.error,
});

/** Registers /discovery* on `app`. */
export function discoveryRoutes(app: App, { discovery }: { discovery: DiscoveryService }): void {
  const tags = ['discovery'];

  app.post('/discovery/validate-range', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Check a network range: how many addresses, and what is wrong with it', body: RangeBody, response: { 200: RangeCheckResponse } },
    handler: async (request) => discovery.validateRange(request.body.network_range),
  });
  app.get('/discovery/jobs', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List discovery jobs, newest first', querystring: JobListQuery, response: { 200: JobListResponse } },
    handler: async (request) => {
      const page = paging(request.query);
      const { rows, total } = await discovery.list(page);
      return { jobs: rows.map(toSummary), total, ...page };
    },
  });
  app.post('/discovery/jobs', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create a discovery job (start it with …/start)', body: JobCreateBody, response: { 200: CreatedResponse } },
    handler: async (request) => {
      const row = await discovery.create(actorOf(request), request.body);
      return { id: row.id, name: row.name, status: 'queued' as const };
    },
  });
  app.get('/discovery/jobs/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'A discovery job with its progress and summary', params: IdParams, response: { 200: JobResponse } },
    handler: async (request) => toJob(await discovery.get(request.params.id)),
  });
  app.post('/discovery/jobs/:id/start', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Start scanning (a background task on a worker)', params: IdParams, response: { 200: StartResponse } },
    handler: async (request) => {
      const { message, estimatedMs } = await discovery.start(actorOf(request), request.params.id);
      return { message, estimated_duration: humanDuration(estimatedMs) };
    },
  });
  app.post('/discovery/jobs/:id/cancel', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Stop a queued or running scan (what was found is kept)', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => ({ message: await discovery.cancel(actorOf(request), request.params.id) }),
  });
  app.delete('/discovery/jobs/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a discovery job and its results', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await discovery.remove(actorOf(request), request.params.id);
      return { message: 'Discovery job deleted successfully' };
    },
  });
  app.get('/discovery/jobs/:id/results', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Hosts found, with their services and whether they are targets already', params: IdParams, response: { 200: ResultsResponse } },
    handler: async (request) => ({
      targets: (await discovery.hosts(request.params.id)).map((h) => ({
        id: h.id,
        host: h.host,
        hostname: h.hostname,
        os: h.os,
        os_hint: h.os_hint,
        services: h.services,
        ports: h.ports,
        existing_target_id: h.existing_target_id,
        import_status: h.import_status as 'new',
      })),
    }),
  });
  app.post('/discovery/import', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create targets from found hosts', body: ImportBody, response: { 200: ImportResponse } },
    handler: async (request) => discovery.import(actorOf(request), request.body),
  });
  app.post('/discovery/scan', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Scan now (an unnamed discovery job, pollable at /discovery/jobs/{id})', body: ScanBody, response: { 200: ScanResponse } },
    handler: async (request) => {
      const { id, estimatedMs } = await discovery.scanNow(actorOf(request), { network_range: request.body.network_range, scan_ports: request.body.ports, scanner: request.body.scanner });
      return { scan_id: `scan_${id}`, status: 'running' as const, estimated_completion: new Date(Date.now() + estimatedMs).toISOString() };
    },
  });
}
