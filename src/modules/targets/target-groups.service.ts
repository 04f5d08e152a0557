/** Target groups and their membership; every change audited. */
import type { Db } from '../../db/schema.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import type { GroupsRepo, GroupWithMembers } from './target-groups.repo.ts';
import type { GroupBody, GroupUpdateBody } from './targets.schemas.ts';
import type { TargetsRepo } from './targets.repo.ts';

/** Builds the groups service. */
export function createGroupsService(deps: { db: Db; repo: GroupsRepo; targets: TargetsRepo; audit: AuditService; clock: Clock }) {
  const { db, repo, targets, audit, clock } = deps;

  async function getRow(id: number): Promise<GroupWithMembers> {
    const row = await repo.findById(id);
    if (!row) {
      throw new NotFoundError(`Target group ${id} not found`);
    }
    return row;
  }

  async function checkTarget(id: number): Promise<void> {
    if (!(await targets.findById(id))) {
      throw new NotFoundError(`Target ${id} not found`);
    }
  }

  return {
    list: (_actor: Actor, query: { page: number; limit: number; search?: string }) =>
      repo.list({ search: query.search, offset: (query.page - 1) * query.limit, limit: query.limit }),

    get: (_actor: Actor, id: number) => getRow(id),

    async create(actor: Actor, input: GroupBody): Promise<GroupWithMembers> {
      const id = await db.transaction().execute(async (tx) => {
        const created = await repo.insert({ name: input.name, description: input.description ?? '' }, tx);
        await audit.record(actor, 'target_group.create', { type: 'target_group', id: created }, { name: input.name }, tx);
        return created;
      });
      return getRow(id);
    },

    async update(actor: Actor, id: number, input: GroupUpdateBody): Promise<GroupWithMembers> {
      await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.update(id, input, clock.now(), tx);
        await audit.record(actor, 'target_group.update', { type: 'target_group', id }, { fields: Object.keys(input).sort() }, tx);
      });
      return getRow(id);
    },

    async remove(actor: Actor, id: number): Promise<void> {
      const group = await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.delete(id, tx);
        await audit.record(actor, 'target_group.delete', { type: 'target_group', id }, { name: group.name, target_ids: group.target_ids }, tx);
      });
    },

    /** Adds a target; adding it twice is a no-op. Returns whether it was added now. */
    async addTarget(actor: Actor, groupId: number, targetId: number): Promise<boolean> {
      await getRow(groupId);
      await checkTarget(targetId);
      const added = await repo.addMember(groupId, targetId);
      if (added) {
        await audit.record(actor, 'target_group.add_target', { type: 'target_group', id: groupId }, { target_id: targetId });
      }
      return added;
    },

    /** Removes a target; returns whether it was a member. */
    async removeTarget(actor: Actor, groupId: number, targetId: number): Promise<boolean> {
      await getRow(groupId);
      await checkTarget(targetId);
      const removed = await repo.removeMember(groupId, targetId);
      if (removed) {
        await audit.record(actor, 'target_group.remove_target', { type: 'target_group', id: groupId }, { target_id: targetId });
      }
      return removed;
    },

    /** Throws a 400 naming `group_ids` unless every id is a group. */
    async assertExist(groupIds: readonly number[]): Promise<void> {
      const missing = [];
      for (const id of new Set(groupIds)) {
        if (!(await repo.findById(id))) {
          missing.push(id);
        }
      }
      if (missing.length > 0) {
        throw new ValidationError(`group_ids: unknown group id(s) ${missing.join(', ')}`, 'group_ids', { details: { group_ids: missing } });
      }
    },

    /** Ids of the targets in any of `groupIds`. */
    memberIds: (groupIds: readonly number[]) => repo.memberIds(groupIds),
  };
}

/** The groups service. */
export type GroupsService = ReturnType<typeof createGroupsService>;
