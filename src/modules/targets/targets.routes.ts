/** Routes of the targets service (guide: Targets Service, port 3005): targets. */
import { Type } from 'typebox';

import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { TargetConnector } from './targets.connect.ts';
import { importTargets } from './targets.import.ts';
import type { TargetWithGroups } from './targets.repo.ts';
import {
  ImportResponse,
  type OsType,
  type Protocol,
  TargetCreateBody,
  TargetListQuery,
  TargetListResponse,
  TargetResponse,
  type TargetStatus,
  TargetTestResponse,
  TargetUpdateBody,
} from './targets.schemas.ts';
import type { TargetsService } from './targets.service.ts';

/** Maps a row to the API shape. */
export function toTargetResponse(row: TargetWithGroups) {
  return {
    id: row.id,
    name: row.name,
    host: row.host,
    port: row.port,
    os_type: row.os_type as OsType,
    protocol: row.protocol as Protocol,
    use_tls: row.use_tls,
    tls_verify: row.tls_verify,
    tls_fingerprint: row.tls_fingerprint,
    credential_id: row.credential_id,
    tags: row.tags,
    description: row.description,
    status: row.status as TargetStatus,
    last_checked_at: iso(row.last_checked_at),
    response_time_ms: row.response_time_ms,
    host_key_fingerprint: row.host_key_fingerprint,
    group_ids: row.group_ids,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Bulk import bodies may be larger than ordinary requests. */
const IMPORT_BODY_LIMIT = 10 * 1024 * 1024;

/** Registers /targets* on `app`. */
export function targetsRoutes(app: App, { targets, targetConnector }: { targets: TargetsService; targetConnector: TargetConnector }): void {
  const tags = ['targets'];
  const one = { 200: TargetResponse };
  app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: IMPORT_BODY_LIMIT }, (_request, body, done) => done(null, body));

  app.get('/targets', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List targets', querystring: TargetListQuery, response: { 200: TargetListResponse } },
    handler: async (request) => {
      const { group_id, os_type, protocol, status, tag, search, ...rest } = request.query;
      const page = paging(rest);
      const { rows, total } = await targets.list(actorOf(request), { ...page, groupId: group_id, osType: os_type, protocol, status, tag, search });
      return { targets: rows.map(toTargetResponse), total, ...page };
    },
  });

  app.post('/targets', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create a target', body: TargetCreateBody, response: one },
    handler: async (request) => toTargetResponse(await targets.create(actorOf(request), request.body)),
  });

  app.post('/targets/import', {
    config: { access: 'operator' },
    bodyLimit: IMPORT_BODY_LIMIT,
    schema: {
      tags,
      summary: 'Bulk import from a JSON array or CSV (name,host,os_type,protocol,port,tags,group)',
      body: Type.Union([Type.Array(Type.Unknown()), Type.String()]),
      response: { 200: ImportResponse },
    },
    handler: async (request) => importTargets(targets, actorOf(request), request.body),
  });

  app.get('/targets/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a target', params: IdParams, response: one },
    handler: async (request) => toTargetResponse(await targets.get(actorOf(request), request.params.id)),
  });

  app.put('/targets/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Update a target', params: IdParams, body: TargetUpdateBody, response: one },
    handler: async (request) => toTargetResponse(await targets.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/targets/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a target', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await targets.remove(actorOf(request), request.params.id);
      return { message: 'Target deleted successfully' };
    },
  });

  app.post('/targets/:id/test', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Connect with the target credential and report', params: IdParams, response: { 200: TargetTestResponse } },
    handler: async (request) => {
      const actor = actorOf(request);
      return targetConnector.test(actor, await targets.get(actor, request.params.id));
    },
  });

  app.post('/targets/:id/host-key/reset', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Forget the pinned SSH host key (the next connection pins the new one)', params: IdParams, response: one },
    handler: async (request) => toTargetResponse(await targets.resetHostKey(actorOf(request), request.params.id)),
  });
}
