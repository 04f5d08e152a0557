/** Request and response schemas of the jobs service (job definitions). */
import { Type, type Static } from 'typebox';

import { PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';
import { ParameterDeclarations } from './jobs.params.ts';
import { StepInput } from './jobs.steps.ts';

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'Unique name' });
const Steps = Type.Array(StepInput, { minItems: 1, maxItems: 100, description: 'Ordered steps: command, sftp, http, webhook' });
const JOB_STATUSES = ['active', 'inactive'] as const;

const NotifyDestination = Type.Object(
  {
    channel: StringEnum(['email', 'slack', 'teams', 'webhook'] as const),
    destination: Type.String({ minLength: 1, maxLength: 2048, description: 'Email address or webhook URL' }),
    template_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })),
    secret_credential_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647, description: 'api_token credential signing webhooks' })),
  },
  { additionalProperties: false },
);
const Destinations = Type.Array(NotifyDestination, { maxItems: 20 });
/** Where a job's events are sent. */
export const JobNotify = Type.Object(
  { on_start: Type.Optional(Destinations), on_success: Type.Optional(Destinations), on_failure: Type.Optional(Destinations), on_cancel: Type.Optional(Destinations) },
  { additionalProperties: false, description: 'job.started → on_start, job.completed → on_success, job.failed (failed or timed out) → on_failure, job.canceled → on_cancel' },
);

const jobFields = {
  description: Type.Optional(Type.String({ maxLength: 4000 })),
  parameters: Type.Optional(ParameterDeclarations),
  concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Targets in flight per run (default 50)' })),
  allow_concurrent_runs: Type.Optional(Type.Boolean({ description: 'Allow a second run while one is active (default false)' })),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 604800, description: 'Whole-run deadline (default 3600)' })),
  status: Type.Optional(StringEnum(JOB_STATUSES, { description: 'inactive jobs cannot run' })),
  notify: Type.Optional(Type.Union([JobNotify, Type.Null()])),
};

export const JobCreateBody = Type.Object({ name: Name, steps: Steps, ...jobFields }, { additionalProperties: false });
export type JobCreateBody = Static<typeof JobCreateBody>;

export const JobUpdateBody = Type.Object({ name: Type.Optional(Name), steps: Type.Optional(Steps), ...jobFields }, { additionalProperties: false });
export type JobUpdateBody = Static<typeof JobUpdateBody>;

export const JobListQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(StringEnum(JOB_STATUSES)),
    created_by: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })),
    search: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of name or description' })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;

export const JobResponse = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  status: StringEnum(JOB_STATUSES),
  steps: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  parameters: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())),
  concurrency: Type.Integer(),
  allow_concurrent_runs: Type.Boolean(),
  timeout_s: Type.Integer(),
  notify: Type.Union([JobNotify, Type.Null()]),
  created_by: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

export const JobListResponse = Type.Object({ jobs: Type.Array(JobResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });
