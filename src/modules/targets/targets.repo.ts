/** SQL for targets and their group memberships. */
import { type ExpressionBuilder, sql } from 'kysely';

import { rethrowConflict } from '../../db/errors.ts';
import { containsPattern } from '../../db/like.ts';
import type { Queryable, Schema, TargetRow } from '../../db/schema.ts';

const UNIQUE_FIELDS = { targets_name_key: 'name' };

/** A target with the ids of the groups it belongs to. */
export type TargetWithGroups = TargetRow & { group_ids: number[] };

/** Columns a create or update may write. */
export type TargetWrite = Pick<TargetRow, 'name' | 'host' | 'port' | 'os_type' | 'protocol' | 'use_tls' | 'tls_verify' | 'tls_fingerprint' | 'credential_id' | 'tags' | 'description'>;

/** List filters. */
export interface TargetFilter {
  groupId?: number;
  osType?: string;
  protocol?: string;
  status?: string;
  tag?: string;
  search?: string;
  offset: number;
  limit: number;
}


const groupIds = (eb: ExpressionBuilder<Schema, 'targets'>) =>
  sql<number[]>`array(select m.group_id from target_group_members m where m.target_id = ${eb.ref('targets.id')} order by m.group_id)`.as('group_ids');

/** Builds the targets repository over `db`. */
export function createTargetsRepo(db: Queryable) {
  const withGroups = (q: Queryable = db) => q.selectFrom('targets').selectAll('targets').select(groupIds);

  return {
    async list(filter: TargetFilter): Promise<{ rows: TargetWithGroups[]; total: number }> {
      let query = db.selectFrom('targets');
      if (filter.groupId !== undefined) {
        const groupId = filter.groupId;
        query = query.where((eb) => eb.exists(eb.selectFrom('target_group_members as m').select('m.target_id').whereRef('m.target_id', '=', 'targets.id').where('m.group_id', '=', groupId)));
      }
      for (const [column, value] of [['os_type', filter.osType], ['protocol', filter.protocol], ['status', filter.status]] as const) {
        if (value !== undefined) {
          query = query.where(column, '=', value);
        }
      }
      if (filter.tag !== undefined) {
        query = query.where(sql<boolean>`tags @> array[${filter.tag}]::text[]`);
      }
      if (filter.search) {
        const pattern = containsPattern(filter.search);
        query = query.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('host', 'ilike', pattern), eb('description', 'ilike', pattern)]));
      }
      const [rows, count] = await Promise.all([
        query.selectAll('targets').select(groupIds).orderBy('name').orderBy('id').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    async findById(id: number, q: Queryable = db): Promise<TargetWithGroups | undefined> {
      return withGroups(q).where('id', '=', id).executeTakeFirst();
    },

    async findByIds(ids: readonly number[]): Promise<TargetWithGroups[]> {
      return ids.length === 0 ? [] : withGroups().where('id', 'in', [...ids]).orderBy('id').execute();
    },

    async findIdByName(name: string, q: Queryable = db): Promise<number | undefined> {
      const row = await q.selectFrom('targets').select('id').where(sql`lower(name)`, '=', name.toLowerCase()).executeTakeFirst();
      return row?.id;
    },

    async insert(row: TargetWrite, createdBy: number, q: Queryable = db): Promise<number> {
      try {
        const created = await q.insertInto('targets').values({ ...row, created_by: createdBy }).returning('id').executeTakeFirstOrThrow();
        return created.id;
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'target');
      }
    },

    async update(id: number, row: Partial<TargetWrite> & { host_key_fingerprint?: null; status?: string }, at: Date, q: Queryable = db): Promise<boolean> {
      try {
        const result = await q.updateTable('targets').set({ ...row, updated_at: at }).where('id', '=', id).executeTakeFirst();
        return Number(result.numUpdatedRows) === 1;
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'target');
      }
    },

    async delete(id: number, q: Queryable = db): Promise<boolean> {
      const result = await q.deleteFrom('targets').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Records a connection check; pins the host key only if none is pinned yet. */
    async recordCheck(id: number, check: { status: string; at: Date; responseTimeMs: number; hostKey?: string }): Promise<void> {
      await db
        .updateTable('targets')
        .set((eb) => ({
          status: check.status,
          last_checked_at: check.at,
          response_time_ms: check.responseTimeMs,
          host_key_fingerprint: check.hostKey ? eb.fn.coalesce('host_key_fingerprint', eb.val(check.hostKey)) : eb.ref('host_key_fingerprint'),
        }))
        .where('id', '=', id)
        .execute();
    },

    async idsUsingCredential(credentialId: number, only?: { protocol: string; useTls: boolean }): Promise<number[]> {
      let query = db.selectFrom('targets').select('id').where('credential_id', '=', credentialId);
      if (only) {
        query = query.where('protocol', '=', only.protocol).where('use_tls', '=', only.useTls);
      }
      return (await query.orderBy('id').execute()).map((r) => r.id);
    },

    async detachCredential(credentialId: number, q: Queryable): Promise<void> {
      await q.updateTable('targets').set({ credential_id: null, updated_at: new Date() }).where('credential_id', '=', credentialId).execute();
    },
  };
}

/** The targets repository. */
export type TargetsRepo = ReturnType<typeof createTargetsRepo>;
