/** Request and response schemas of the targets service (targets and target groups). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';

export const OS_TYPES = ['linux', 'windows', 'unix', 'macos', 'network', 'other'] as const;
export const PROTOCOLS = ['ssh', 'winrm', 'http'] as const;
export const TARGET_STATUSES = ['unknown', 'online', 'offline', 'auth_failed', 'host_key_mismatch'] as const;
export type OsType = (typeof OS_TYPES)[number];
export type Protocol = (typeof PROTOCOLS)[number];
export type TargetStatus = (typeof TARGET_STATUSES)[number];

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'Unique name' });
const Host = Type.String({ minLength: 1, maxLength: 253, description: 'IPv4/IPv6 address or DNS name' });
const Port = Type.Integer({ minimum: 1, maximum: 65535, description: 'Default: ssh 22, winrm 5985 (5986 with TLS), http 80 (443 with TLS)' });
const Tag = Type.String({ pattern: '^[A-Za-z0-9_.:=/-]{1,64}$', description: 'Letters, digits and _ . : = / -' });
const Tags = Type.Array(Tag, { maxItems: 50, uniqueItems: true });
const Description = Type.String({ maxLength: 1000 });
const CredentialId = Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Credential used to connect' });
const TlsVerify = Type.Boolean({ description: 'With use_tls: validate the server certificate against the system CAs (default true); false checks nothing' });
const TlsFingerprint = Type.Union([
  Type.String({ maxLength: 100, description: "With use_tls: SHA-256 fingerprint of the server's leaf certificate (AA:BB:… or 64 hex digits); only that certificate is accepted, chain and name unchecked" }),
  Type.Null(),
]);

const targetFields = {
  name: Name,
  host: Host,
  os_type: StringEnum(OS_TYPES),
  protocol: StringEnum(PROTOCOLS),
  port: Type.Optional(Port),
  use_tls: Type.Optional(Type.Boolean({ description: 'winrm/http over TLS' })),
  tls_verify: Type.Optional(TlsVerify),
  tls_fingerprint: Type.Optional(TlsFingerprint),
  credential_id: Type.Optional(Type.Union([CredentialId, Type.Null()])),
  tags: Type.Optional(Tags),
  description: Type.Optional(Description),
};

export const TargetCreateBody = Type.Object(targetFields, { additionalProperties: false });
export type TargetCreateBody = Static<typeof TargetCreateBody>;

export const TargetUpdateBody = Type.Object(
  {
    name: Type.Optional(Name),
    host: Type.Optional(Host),
    os_type: Type.Optional(StringEnum(OS_TYPES)),
    protocol: Type.Optional(StringEnum(PROTOCOLS)),
    port: Type.Optional(Port),
    use_tls: Type.Optional(Type.Boolean()),
    tls_verify: Type.Optional(TlsVerify),
    tls_fingerprint: Type.Optional(TlsFingerprint),
    credential_id: Type.Optional(Type.Union([CredentialId, Type.Null()])),
    tags: Type.Optional(Tags),
    description: Type.Optional(Description),
  },
  { additionalProperties: false },
);
export type TargetUpdateBody = Static<typeof TargetUpdateBody>;

/** One row of a bulk import (JSON element or CSV line); `group` adds it to that group. */
export const TargetImportRow = Type.Object(
  { ...targetFields, group: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Group name (created if missing)' })) },
  { additionalProperties: false },
);
export type TargetImportRow = Static<typeof TargetImportRow>;

export const TargetListQuery = Type.Object(
  {
    ...PageQuery,
    group_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })),
    os_type: Type.Optional(StringEnum(OS_TYPES)),
    protocol: Type.Optional(StringEnum(PROTOCOLS)),
    status: Type.Optional(StringEnum(TARGET_STATUSES)),
    tag: Type.Optional(Tag),
    search: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of name, host or description' })),
  },
  { additionalProperties: false },
);
export type TargetListQuery = Static<typeof TargetListQuery>;

export const TargetResponse = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  host: Type.String(),
  port: Type.Integer(),
  os_type: StringEnum(OS_TYPES),
  protocol: StringEnum(PROTOCOLS),
  use_tls: Type.Boolean(),
  tls_verify: Type.Boolean({ description: 'Validate the server certificate (when use_tls and no tls_fingerprint)' }),
  tls_fingerprint: Type.Union([Type.String({ description: 'Pinned SHA-256 certificate fingerprint (AA:BB:…)' }), Type.Null()]),
  credential_id: Type.Union([Type.Integer(), Type.Null()]),
  tags: Type.Array(Type.String()),
  description: Type.String(),
  status: StringEnum(TARGET_STATUSES),
  last_checked_at: NullableTimestamp(),
  response_time_ms: Type.Union([Type.Integer(), Type.Null()]),
  host_key_fingerprint: Type.Union([Type.String({ description: 'Pinned SSH host key (trust on first use)' }), Type.Null()]),
  group_ids: Type.Array(Type.Integer()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

export const TargetListResponse = Type.Object({ targets: Type.Array(TargetResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });

export const TargetTestResponse = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  response_time_ms: Type.Integer(),
  status: StringEnum(TARGET_STATUSES),
  details: Type.Record(Type.String(), Type.Unknown()),
});

export const ImportResponse = Type.Object({
  created: Type.Integer(),
  skipped: Type.Integer({ description: 'Rows whose target name already exists' }),
  errors: Type.Array(Type.Object({ line: Type.Integer(), message: Type.String(), field: Type.Optional(Type.String()) })),
  target_ids: Type.Array(Type.Integer({ description: 'Ids of the created targets' })),
});

export const GroupBody = Type.Object({ name: Name, description: Type.Optional(Description) }, { additionalProperties: false });
export type GroupBody = Static<typeof GroupBody>;
export const GroupUpdateBody = Type.Object({ name: Type.Optional(Name), description: Type.Optional(Description) }, { additionalProperties: false });
export type GroupUpdateBody = Static<typeof GroupUpdateBody>;

export const GroupResponse = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  target_count: Type.Integer(),
  target_ids: Type.Array(Type.Integer()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});
export const GroupListResponse = Type.Object({ groups: Type.Array(GroupResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });
export const GroupListQuery = Type.Object(
  { ...PageQuery, search: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);
export type GroupListQuery = Static<typeof GroupListQuery>;

export const MembershipParams = Type.Object({
  group_id: Type.Integer({ minimum: 1, maximum: 2147483647 }),
  target_id: Type.Integer({ minimum: 1, maximum: 2147483647 }),
});
