/** Request and response schemas of the authentication service. */
import { Type, type Static } from 'typebox';

import { StringEnum } from '../../http/schemas.ts';
import { ROLE_LIST } from '../../shared/roles.ts';

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64, description: 'Username' }),
    password: Type.String({ minLength: 1, maxLength: 1024, description: 'Password' }),
  },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBody>;

export const RefreshBody = Type.Object(
  { refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'Refresh token (or send it as Authorization: Bearer)' })) },
  { additionalProperties: false },
);
export type RefreshBody = Static<typeof RefreshBody>;

const TokenUser = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  role: StringEnum(ROLE_LIST),
});

export const TokenResponse = Type.Object({
  access_token: Type.String({ description: 'JWT for the Authorization header (15 minutes)' }),
  token_type: Type.Literal('bearer'),
  refresh_token: Type.String({ description: 'Single-use token for POST /auth/refresh (7 days)' }),
  expires_in: Type.Integer({ description: 'Access token lifetime in seconds' }),
  user: TokenUser,
});

export const VerifyResponse = Type.Object({
  user_id: Type.Integer(),
  username: Type.String(),
  role: StringEnum(ROLE_LIST),
});
