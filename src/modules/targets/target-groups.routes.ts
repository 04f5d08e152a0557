/** Routes of the targets service (port 3005): target groups and membership. */
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { GroupsService } from './target-groups.service.ts';
import type { GroupWithMembers } from './target-groups.repo.ts';
import { GroupBody, GroupListQuery, GroupListResponse, GroupResponse, GroupUpdateBody, MembershipParams } from './targets.schemas.ts';

/** Maps a group row to the API shape. */
export function toGroupResponse(row: GroupWithMembers) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    target_count: row.target_ids.length,
    target_ids: row.target_ids,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Registers /target-groups* on `app`. */
export function targetGroupsRoutes(app: App, { groups }: { groups: GroupsService }): void {
  const tags = ['target-groups'];
  const one = { 200: GroupResponse };

  app.get('/target-groups', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'List target groups', querystring: GroupListQuery, response: { 200: GroupListResponse } },
    handler: async (request) => {
      const page = paging(request.query);
      const { rows, total } = await groups.list(actorOf(request), { ...page, search: request.query.search });
      return { groups: rows.map(toGroupResponse), total, ...page };
    },
  });

  app.post('/target-groups', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Create a target group', body: GroupBody, response: one },
    handler: async (request) => toGroupResponse(await groups.create(actorOf(request), request.body)),
  });

  app.get('/target-groups/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a target group with its members', params: IdParams, response: one },
    handler: async (request) => toGroupResponse(await groups.get(actorOf(request), request.params.id)),
  });

  app.put('/target-groups/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Rename or describe a target group', params: IdParams, body: GroupUpdateBody, response: one },
    handler: async (request) => toGroupResponse(await groups.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/target-groups/:id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Delete a target group (its targets stay)', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await groups.remove(actorOf(request), request.params.id);
      return { message: 'Target group deleted successfully' };
    },
  });

  app.post('/target-groups/:group_id/targets/:target_id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Add a target to a group (no-op if already there)', params: MembershipParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      const added = await groups.addTarget(actorOf(request), request.params.group_id, request.params.target_id);
      return { message: added ? 'Target added to group successfully' : 'Target is already in the group' };
    },
  });

  app.delete('/target-groups/:group_id/targets/:target_id', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Remove a target from a group', params: MembershipParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      const removed = await groups.removeTarget(actorOf(request), request.params.group_id, request.params.target_id);
      return { message: removed ? 'Target removed from group successfully' : 'Target was not in the group' };
    },
  });
}
