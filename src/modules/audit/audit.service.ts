/**
 * The audit trail: every security-relevant action (logins, token reuse, user and credential
 * changes, …) is recorded with who, from where and on what. Details must never hold secrets.
 */
import type { AuditRow, Queryable } from '../../db/schema.ts';
import type { RequestContext } from '../../shared/roles.ts';
import type { AuditRepo } from './audit.repo.ts';

/** Who did it: an actor, a request context with what is known of the user, or the system. */
export type AuditSource = (RequestContext & { id?: number; username?: string }) | 'system';

/** What it was done to. */
export interface AuditResource {
  type: string;
  id?: string | number;
}

/** Query for listing entries. */
export interface AuditListQuery {
  page: number;
  limit: number;
  actorId?: number;
  action?: string;
}

/** Builds the audit service. */
export function createAuditService(deps: { repo: AuditRepo }) {
  const { repo } = deps;
  return {
    /** Records one entry; pass `q` to write inside the caller's transaction. */
    async record(
      source: AuditSource,
      action: string,
      resource?: AuditResource,
      details: Record<string, unknown> = {},
      q?: Queryable,
    ): Promise<void> {
      const ctx = source === 'system' ? undefined : source;
      await repo.insert(
        {
          actorId: ctx?.id ?? null,
          actorUsername: ctx?.username ?? null,
          action,
          resourceType: resource?.type ?? null,
          resourceId: resource?.id === undefined ? null : String(resource.id),
          ip: ctx?.ip ?? null,
          requestId: ctx?.requestId ?? null,
          details,
        },
        q,
      );
    },

    /** One page of entries, newest first. */
    async list(query: AuditListQuery): Promise<{ rows: AuditRow[]; total: number }> {
      return repo.list({
        actorId: query.actorId,
        action: query.action,
        offset: (query.page - 1) * query.limit,
        limit: query.limit,
      });
    },
  };
}

/** The audit service. */
export type AuditService = ReturnType<typeof createAuditService>;
