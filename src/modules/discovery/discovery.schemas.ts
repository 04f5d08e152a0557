/** Request and response schemas of the discovery service (guide: Discovery Service, port 3010). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum } from '../../http/schemas.ts';

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'canceled'] as const;
const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });
const Range = Type.String({ minLength: 1, maxLength: 10_000, description: 'Comma-separated addresses, CIDR blocks, ranges (a.b.c.5-40, a.b.c.5-a.b.d.20) and host names' });
const Ports = Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), { minItems: 1, maxItems: 65535, description: 'Default 22, 80, 443, 3389, 5985, 5986' });

export const RangeBody = Type.Object({ network_range: Range }, { additionalProperties: false });
export const RangeCheckResponse = Type.Object({ valid: Type.Boolean(), count: Type.Integer(), errors: Type.Array(Type.Object({ part: Type.String(), message: Type.String() })) });

export const JobCreateBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), network_range: Range, scan_ports: Type.Optional(Ports), scanner: Type.Optional(StringEnum(['builtin', 'nmap'] as const, { description: 'Default builtin (TCP connect, no root)' })) },
  { additionalProperties: false },
);
export type JobCreateBody = Static<typeof JobCreateBody>;
export const ScanBody = Type.Object({ network_range: Range, ports: Type.Optional(Ports), scanner: Type.Optional(StringEnum(['builtin', 'nmap'] as const)) }, { additionalProperties: false });
export type ScanBody = Static<typeof ScanBody>;

const JobFields = {
  id: Type.Integer(),
  name: Type.String(),
  status: StringEnum(JOB_STATUSES),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  discovered_targets: Type.Integer(),
};
export const JobListResponse = Type.Object({ jobs: Type.Array(Type.Object(JobFields)), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });
export const JobResponse = Type.Object({
  ...JobFields,
  network_range: Type.String(),
  ports: Type.Array(Type.Integer()),
  scanner: Type.String(),
  started_at: NullableTimestamp(),
  finished_at: NullableTimestamp(),
  summary: Type.Record(Type.String(), Type.Unknown()),
  error: Type.Union([Type.String(), Type.Null()]),
});
export const CreatedResponse = Type.Object({ id: Type.Integer(), name: Type.String(), status: Type.Literal('queued') });
export const StartResponse = Type.Object({ message: Type.String(), estimated_duration: Type.String() });
export const ScanResponse = Type.Object({ scan_id: Type.String(), status: Type.Literal('running'), estimated_completion: Type.String({ format: 'date-time' }) });
export const JobListQuery = Type.Object({ ...PageQuery }, { additionalProperties: false });

export const ResultsResponse = Type.Object({
  targets: Type.Array(
    Type.Object({
      id: Type.Integer(),
      host: Type.String(),
      hostname: Type.Union([Type.String(), Type.Null()]),
      os: Type.String(),
      os_hint: Type.Union([Type.String(), Type.Null()]),
      services: Type.Array(Type.String()),
      ports: Type.Array(Type.Object({ port: Type.Integer(), service: Type.String(), banner: Type.Union([Type.String(), Type.Null()]) })),
      existing_target_id: Type.Union([Type.Integer(), Type.Null()]),
      import_status: StringEnum(['new', 'imported', 'skipped'] as const),
    }),
  ),
});

export const ImportBody = Type.Object(
  { discovery_job_id: Id, target_ids: Type.Array(Id, { minItems: 1, maxItems: 65536, uniqueItems: true, description: 'Result ids (GET …/results)' }), default_credential_id: Type.Optional(Id), group_id: Type.Optional(Id) },
  { additionalProperties: false },
);
export type ImportBody = Static<typeof ImportBody>;
export const ImportResponse = Type.Object({
  imported: Type.Integer(),
  skipped: Type.Integer(),
  message: Type.String(),
  targets: Type.Array(Type.Object({ id: Type.Integer(), host: Type.String(), import_status: StringEnum(['imported', 'skipped'] as const), target_id: Type.Union([Type.Integer(), Type.Null()]), reason: Type.Optional(Type.String()) })),
});
