/** SQL for target groups and memberships. */
import { type ExpressionBuilder, sql } from 'kysely';

import { rethrowConflict } from '../../db/errors.ts';
import { containsPattern } from '../../db/like.ts';
import type { Queryable, Schema, TargetGroupRow } from '../../db/schema.ts';

const UNIQUE_FIELDS = { target_groups_name_key: 'name' };

/** A group with its members' ids. */
export type GroupWithMembers = TargetGroupRow & { target_ids: number[] };

const memberIds = (eb: ExpressionBuilder<Schema, 'target_groups'>) =>
  sql<number[]>`array(select m.target_id from target_group_members m where m.group_id = ${eb.ref('target_groups.id')} order by m.target_id)`.as('target_ids');

/** Builds the groups repository over `db`. */
export function createGroupsRepo(db: Queryable) {
  const withMembers = (q: Queryable = db) => q.selectFrom('target_groups').selectAll('target_groups').select(memberIds);

  return {
    async list(filter: { search?: string; offset: number; limit: number }): Promise<{ rows: GroupWithMembers[]; total: number }> {
      let query = db.selectFrom('target_groups');
      if (filter.search) {
        query = query.where('name', 'ilike', containsPattern(filter.search));
      }
      const [rows, count] = await Promise.all([
        query.selectAll('target_groups').select(memberIds).orderBy('name').orderBy('id').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    async findById(id: number, q: Queryable = db): Promise<GroupWithMembers | undefined> {
      return withMembers(q).where('id', '=', id).executeTakeFirst();
    },

    async insert(row: { name: string; description: string }, q: Queryable = db): Promise<number> {
      try {
        return (await q.insertInto('target_groups').values(row).returning('id').executeTakeFirstOrThrow()).id;
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'target group');
      }
    },

    /** The id of the group called `name`, creating it if needed (bulk import). */
    async ensureByName(name: string, q: Queryable): Promise<number> {
      await q.insertInto('target_groups').values({ name, description: '' }).onConflict((oc) => oc.expression(sql`lower(name)`).doNothing()).execute();
      const row = await q.selectFrom('target_groups').select('id').where(sql`lower(name)`, '=', name.toLowerCase()).executeTakeFirstOrThrow();
      return row.id;
    },

    async update(id: number, row: { name?: string; description?: string }, at: Date, q: Queryable = db): Promise<boolean> {
      try {
        const result = await q.updateTable('target_groups').set({ ...row, updated_at: at }).where('id', '=', id).executeTakeFirst();
        return Number(result.numUpdatedRows) === 1;
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'target group');
      }
    },

    async delete(id: number, q: Queryable = db): Promise<boolean> {
      return Number((await q.deleteFrom('target_groups').where('id', '=', id).executeTakeFirst()).numDeletedRows) === 1;
    },

    /** Adds a member; false when it was already one. */
    async addMember(groupId: number, targetId: number, q: Queryable = db): Promise<boolean> {
      const result = await q
        .insertInto('target_group_members')
        .values({ group_id: groupId, target_id: targetId })
        .onConflict((oc) => oc.columns(['group_id', 'target_id']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },

    /** Removes a member; false when it was not one. */
    async removeMember(groupId: number, targetId: number, q: Queryable = db): Promise<boolean> {
      const result = await q.deleteFrom('target_group_members').where('group_id', '=', groupId).where('target_id', '=', targetId).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Ids of the targets in any of `groupIds`. */
    async memberIds(groupIds: readonly number[]): Promise<number[]> {
      if (groupIds.length === 0) {
        return [];
      }
      const rows = await db.selectFrom('target_group_members').select('target_id').distinct().where('group_id', 'in', [...groupIds]).orderBy('target_id').execute();
      return rows.map((r) => r.target_id);
    },
  };
}

/** The groups repository. */
export type GroupsRepo = ReturnType<typeof createGroupsRepo>;
