/** Request and response schemas of the user service. */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';
import { ROLE_LIST } from '../../shared/roles.ts';

const Username = Type.String({ pattern: '^[a-zA-Z0-9_.-]{3,64}$', description: '3–64 of letters, digits, _ . -' });
const Email = Type.String({ format: 'email', maxLength: 254, description: 'Email address' });
const Password = Type.String({ minLength: 12, maxLength: 1024, description: 'At least 12 characters' });
const Role = StringEnum(ROLE_LIST, { description: 'admin, operator or viewer' });

export const UserListQuery = Type.Object(
  { ...PageQuery, search: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of username or email' })) },
  { additionalProperties: false },
);
export type UserListQuery = Static<typeof UserListQuery>;

export const UserCreateBody = Type.Object({ username: Username, email: Email, password: Password, role: Role }, { additionalProperties: false });
export type UserCreateBody = Static<typeof UserCreateBody>;

export const UserUpdateBody = Type.Object(
  {
    email: Type.Optional(Email),
    role: Type.Optional(Role),
    is_active: Type.Optional(Type.Boolean({ description: 'false disables the user and ends their sessions' })),
    password: Type.Optional(Password),
  },
  { additionalProperties: false },
);
export type UserUpdateBody = Static<typeof UserUpdateBody>;

export const SelfUpdateBody = Type.Object(
  {
    email: Type.Optional(Email),
    current_password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Required with new_password' })),
    new_password: Type.Optional(Password),
  },
  { additionalProperties: false },
);
export type SelfUpdateBody = Static<typeof SelfUpdateBody>;

export const UserResponse = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Type.String(),
  role: Role,
  is_active: Type.Boolean(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  last_login_at: NullableTimestamp('Last successful login'),
});

export const UserListResponse = Type.Object({
  users: Type.Array(UserResponse),
  total: Type.Integer(),
  page: Type.Integer(),
  limit: Type.Integer(),
});
