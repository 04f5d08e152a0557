/** SQL for the audit log. */
import type { AuditRow, Queryable } from '../../db/schema.ts';

/** A new audit entry. */
export interface NewAuditEntry {
  actorId: number | null;
  actorUsername: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  ip: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

/** Filters for listing. */
export interface AuditFilter {
  actorId?: number;
  action?: string;
  offset: number;
  limit: number;
}

/** Builds the audit repository over `db`. */
export function createAuditRepo(db: Queryable) {
  return {
    async insert(entry: NewAuditEntry, q: Queryable = db): Promise<void> {
      await q
        .insertInto('audit_log')
        .values({
          actor_id: entry.actorId,
          actor_username: entry.actorUsername,
          action: entry.action,
          resource_type: entry.resourceType,
          resource_id: entry.resourceId,
          ip: entry.ip,
          request_id: entry.requestId,
          details: JSON.stringify(entry.details),
        })
        .execute();
    },

    async list(filter: AuditFilter): Promise<{ rows: AuditRow[]; total: number }> {
      let query = db.selectFrom('audit_log');
      if (filter.actorId !== undefined) {
        query = query.where('actor_id', '=', filter.actorId);
      }
      if (filter.action !== undefined) {
        query = query.where('action', '=', filter.action);
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('at', 'desc').orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },
  };
}

/** The audit repository. */
export type AuditRepo = ReturnType<typeof createAuditRepo>;
