/** Schemas of job runs (jobs service). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';

export const RUN_STATUSES = ['queued', 'running', 'completed', 'failed', 'canceled', 'timed_out'] as const;
const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });

export const RunBody = Type.Object(
  {
    target_ids: Type.Optional(Type.Array(Id, { maxItems: 10000 })),
    group_ids: Type.Optional(Type.Array(Id, { maxItems: 1000 })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type RunBody = Static<typeof RunBody>;

export const RunQueuedResponse = Type.Object({ job_run_id: Type.Integer(), status: Type.Literal('queued'), message: Type.String() });

export const RunListQuery = Type.Object(
  { ...PageQuery, job_id: Type.Optional(Id), status: Type.Optional(StringEnum(RUN_STATUSES)) },
  { additionalProperties: false },
);
export type RunListQuery = Static<typeof RunListQuery>;

const Summary = Type.Record(Type.String(), Type.Integer());
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);

const RunFields = {
  id: Type.Integer(),
  job_id: NullableInt,
  job_name: Type.String(),
  status: StringEnum(RUN_STATUSES),
  trigger: Type.String(),
  requested_by: NullableInt,
  schedule_id: NullableInt,
  retry_of: NullableInt,
  parameters: Type.Record(Type.String(), Type.Unknown(), { description: 'Secret parameters shown as ***' }),
  target_ids: Type.Array(Type.Integer()),
  summary: Summary,
  queued_at: Timestamp(),
  started_at: NullableTimestamp(),
  finished_at: NullableTimestamp(),
};

export const RunSummaryResponse = Type.Object(RunFields);
export const RunListResponse = Type.Object({ runs: Type.Array(RunSummaryResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });

export const RunDetailResponse = Type.Object({
  ...RunFields,
  targets: Type.Array(
    Type.Object({ target_id: NullableInt, name: Type.Union([Type.String(), Type.Null()]), status: Type.String(), error: Type.Union([Type.String(), Type.Null()]), started_at: NullableTimestamp(), finished_at: NullableTimestamp() }),
  ),
  steps: Type.Array(
    Type.Object({
      step_index: Type.Integer(),
      name: Type.String(),
      target_id: NullableInt,
      status: Type.String(),
      exit_code: NullableInt,
      stdout: Type.String(),
      stderr: Type.String(),
      outputs: Type.Record(Type.String(), Type.String()),
      truncated: Type.Boolean(),
      error: Type.Union([Type.String(), Type.Null()]),
      started_at: NullableTimestamp(),
      finished_at: NullableTimestamp(),
      duration_ms: NullableInt,
    }),
  ),
});

export const RetryBody = Type.Object({ only_failed: Type.Optional(Type.Boolean({ description: 'Only targets that did not succeed (default true)' })) }, { additionalProperties: false });

export const OutputQuery = Type.Object(
  {
    target_id: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'Omit (or 0) for target-less runs' })),
    step_index: Type.Integer({ minimum: 0, maximum: 1000 }),
    offset: Type.Optional(Type.Integer({ minimum: 0, description: 'Characters already read' })),
    stream: Type.Optional(StringEnum(['stdout', 'stderr'] as const)),
  },
  { additionalProperties: false },
);
export type OutputQuery = Static<typeof OutputQuery>;

export const OutputResponse = Type.Object({
  run_id: Type.Integer(),
  target_id: NullableInt,
  step_index: Type.Integer(),
  stream: Type.String(),
  offset: Type.Integer(),
  next_offset: Type.Integer(),
  data: Type.String(),
  complete: Type.Boolean({ description: 'The step has finished: nothing more will come' }),
});
