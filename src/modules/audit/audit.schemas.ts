/** Schemas of the audit log API. */
import { Type, type Static } from 'typebox';

import { PageQuery, Timestamp } from '../../http/schemas.ts';

export const AuditQuery = Type.Object(
  {
    ...PageQuery,
    actor_id: Type.Optional(Type.Integer({ minimum: 1, description: 'Only entries by this user' })),
    action: Type.Optional(Type.String({ maxLength: 100, description: 'Only this action, e.g. auth.login_failed' })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditEntry = Type.Object({
  id: Type.Integer(),
  at: Timestamp('When it happened'),
  actor_id: Type.Union([Type.Integer(), Type.Null()]),
  actor_username: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  resource_type: Type.Union([Type.String(), Type.Null()]),
  resource_id: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  request_id: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
});

export const AuditListResponse = Type.Object({
  entries: Type.Array(AuditEntry),
  total: Type.Integer(),
  page: Type.Integer(),
  limit: Type.Integer(),
});

