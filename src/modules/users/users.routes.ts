/** Routes of the user service (guide: User Service, port 3002). */
import type { UserRow } from '../../db/schema.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { IdParams, iso, MessageResponse, paging } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import type { Role } from '../../shared/roles.ts';
import { SelfUpdateBody, UserCreateBody, UserListQuery, UserListResponse, UserResponse, UserUpdateBody } from './users.schemas.ts';
import type { UsersService } from './users.service.ts';

/** Maps a row to the API shape (never the password hash). */
export function toUserResponse(row: UserRow) {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    role: row.role as Role,
    is_active: row.is_active,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    last_login_at: iso(row.last_login_at),
  };
}

/** Registers /users* on `app`. */
export function usersRoutes(app: App, { users }: { users: UsersService }): void {
  const tags = ['users'];
  const one = { 200: UserResponse };

  app.get('/users', {
    config: { access: 'admin' },
    schema: { tags, summary: 'List users', querystring: UserListQuery, response: { 200: UserListResponse } },
    handler: async (request) => {
      const page = paging(request.query);
      const { rows, total } = await users.list(actorOf(request), { ...page, search: request.query.search });
      return { users: rows.map(toUserResponse), total, ...page };
    },
  });

  app.post('/users', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Create a user', body: UserCreateBody, response: one },
    handler: async (request) => toUserResponse(await users.create(actorOf(request), request.body)),
  });

  app.get('/users/me', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'The calling user', response: one },
    handler: async (request) => toUserResponse(await users.me(actorOf(request))),
  });

  app.put('/users/me', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Change own email or password', body: SelfUpdateBody, response: one },
    handler: async (request) => toUserResponse(await users.updateMe(actorOf(request), request.body)),
  });

  app.get('/users/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Get a user (admins: anyone; others: themselves)', params: IdParams, response: one },
    handler: async (request) => toUserResponse(await users.get(actorOf(request), request.params.id)),
  });

  app.put('/users/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Update a user', params: IdParams, body: UserUpdateBody, response: one },
    handler: async (request) => toUserResponse(await users.update(actorOf(request), request.params.id, request.body)),
  });

  app.delete('/users/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Delete a user', params: IdParams, response: { 200: MessageResponse } },
    handler: async (request) => {
      await users.remove(actorOf(request), request.params.id);
      return { message: 'User deleted successfully' };
    },
  });
}
