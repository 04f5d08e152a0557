/** Request and response schemas of the credentials service. Secrets are input-only. */
import { Type, type Static } from 'typebox';

import { PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';
import { CREDENTIAL_TYPES } from './credentials.material.ts';

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'Unique name' });
const Username = Type.String({ minLength: 1, maxLength: 256, description: 'Login name on the target' });
const Domain = Type.String({ minLength: 1, maxLength: 256, description: 'Windows domain (winrm)' });
const Auth = StringEnum(['ntlm', 'basic'] as const, { description: 'WinRM authentication (default ntlm)' });
const Description = Type.String({ maxLength: 1000 });
const secret = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description: `${description} (write-only)` });
const Secrets = {
  password: secret(1024, 'Password'),
  private_key: secret(65536, 'PEM/OpenSSH private key'),
  passphrase: secret(1024, 'Passphrase of the private key'),
  token: secret(8192, 'API token'),
  certificate: secret(65536, 'PEM certificate'),
};
const nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

export const CredentialCreateBody = Type.Object(
  {
    name: Name,
    type: StringEnum(CREDENTIAL_TYPES, { description: 'ssh, winrm, password, api_token or certificate' }),
    username: Type.Optional(Username),
    domain: Type.Optional(Domain),
    auth: Type.Optional(Auth),
    description: Type.Optional(Description),
    password: Type.Optional(Secrets.password),
    private_key: Type.Optional(Secrets.private_key),
    passphrase: Type.Optional(Secrets.passphrase),
    token: Type.Optional(Secrets.token),
    certificate: Type.Optional(Secrets.certificate),
  },
  { additionalProperties: false },
);
export type CredentialCreateBody = Static<typeof CredentialCreateBody>;

export const CredentialUpdateBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    username: nullable(Username),
    domain: nullable(Domain),
    auth: Type.Optional(Type.Union([Auth, Type.Null()])),
    password: nullable(Secrets.password),
    private_key: nullable(Secrets.private_key),
    passphrase: nullable(Secrets.passphrase),
    token: nullable(Secrets.token),
    certificate: nullable(Secrets.certificate),
  },
  { additionalProperties: false, description: 'Omitted fields keep their value; null clears an optional one' },
);
export type CredentialUpdateBody = Static<typeof CredentialUpdateBody>;

export const CredentialListQuery = Type.Object(
  {
    ...PageQuery,
    type: Type.Optional(StringEnum(CREDENTIAL_TYPES)),
    search: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of name, description or username' })),
  },
  { additionalProperties: false },
);
export type CredentialListQuery = Static<typeof CredentialListQuery>;

export const DeleteQuery = Type.Object(
  { force: Type.Optional(Type.Boolean({ description: 'Detach the credential from targets that use it' })) },
  { additionalProperties: false },
);

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const CredentialResponse = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  type: StringEnum(CREDENTIAL_TYPES),
  username: NullableString,
  domain: NullableString,
  auth: NullableString,
  description: Type.String(),
  has_password: Type.Boolean(),
  has_private_key: Type.Boolean(),
  has_passphrase: Type.Boolean(),
  has_token: Type.Boolean(),
  has_certificate: Type.Boolean(),
  public_key_fingerprint: Type.Union([Type.String({ description: 'SHA256 fingerprint of the SSH public key' }), Type.Null()]),
  certificate: Type.Union([
    Type.Object({ subject: Type.String(), issuer: Type.String(), valid_from: Type.String(), valid_to: Type.String(), fingerprint: Type.String() }),
    Type.Null(),
  ]),
  created_by: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

export const CredentialListResponse = Type.Object({
  credentials: Type.Array(CredentialResponse),
  total: Type.Integer(),
  page: Type.Integer(),
  limit: Type.Integer(),
});
