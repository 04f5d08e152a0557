/** GET /audit: the audit trail, for admins (served by the auth service). */
import type { AuditRow } from '../../db/schema.ts';
import { iso, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { AuditListResponse, AuditQuery } from './audit.schemas.ts';
import type { AuditService } from './audit.service.ts';

function toAuditEntry(row: AuditRow) {
  return {
    id: row.id,
    at: iso(row.at),
    actor_id: row.actor_id,
    actor_username: row.actor_username,
    action: row.action,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    ip: row.ip,
    request_id: row.request_id,
    details: row.details,
  };
}

/** Registers /audit on `app`. */
export function auditRoutes(app: App, { audit }: { audit: AuditService }): void {
  app.get('/audit', {
    config: { access: 'admin' },
    schema: { tags: ['audit'], summary: 'List audit entries, newest first', querystring: AuditQuery, response: { 200: AuditListResponse } },
    handler: async (request) => {
      const page = paging(request.query);
      const { rows, total } = await audit.list({ ...page, actorId: request.query.actor_id, action: request.query.action });
      return { entries: rows.map(toAuditEntry), total, ...page };
    },
  });
}
