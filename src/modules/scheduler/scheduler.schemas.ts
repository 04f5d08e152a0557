/** Request and response schemas of the scheduler service (guide: Scheduler Service, port 3008). */
import { Type, type Static } from 'typebox';

import { NullableTimestamp, PageQuery, StringEnum, Timestamp } from '../../http/schemas.ts';

export const OVERLAP = ['skip', 'queue', 'allow'] as const;
export const CATCHUP = ['none', 'latest', 'all'] as const;
export const FIRE_OUTCOMES = ['queued', 'waiting', 'skipped_overlap', 'skipped_inactive', 'missed', 'failed'] as const;

const Id = Type.Integer({ minimum: 1, maximum: 2147483647 });
const Cron = Type.String({ minLength: 1, maxLength: 200, description: '5 fields (minute hour day month weekday), 6 with leading seconds, or @hourly/@daily/@weekly/@monthly/@yearly' });
const Timezone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone (default UTC)' });
const Ids = Type.Array(Id, { maxItems: 10000, uniqueItems: true });
const Parameters = Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 65536 }), Type.Number(), Type.Boolean()]), { description: 'Values for the job’s declared parameters, checked on save' });

const scheduleFields = {
  name: Type.Optional(Type.String({ maxLength: 100 })),
  timezone: Type.Optional(Timezone),
  enabled: Type.Optional(Type.Boolean({ description: 'Default true' })),
  target_ids: Type.Optional(Ids),
  group_ids: Type.Optional(Ids),
  parameters: Type.Optional(Parameters),
  overlap: Type.Optional(StringEnum(OVERLAP, { description: 'While this schedule’s previous run is active: skip (default), queue behind it (one time waits; later ones are skipped), or allow a second run' })),
  catchup: Type.Optional(StringEnum(CATCHUP, { description: 'Times missed while no scheduler ran: none (default), latest (fire once), all (each, the newest 100 at most, one after another)' })),
};

export const ScheduleCreateBody = Type.Object({ job_id: Id, cron: Cron, ...scheduleFields }, { additionalProperties: false });
export type ScheduleCreateBody = Static<typeof ScheduleCreateBody>;

export const ScheduleUpdateBody = Type.Object({ cron: Type.Optional(Cron), ...scheduleFields }, { additionalProperties: false });
export type ScheduleUpdateBody = Static<typeof ScheduleUpdateBody>;

export const ScheduleListQuery = Type.Object(
  {
    ...PageQuery,
    job_id: Type.Optional(Id),
    enabled: Type.Optional(Type.Boolean()),
    search: Type.Optional(Type.String({ maxLength: 100, description: 'Substring of the name' })),
  },
  { additionalProperties: false },
);
export type ScheduleListQuery = Static<typeof ScheduleListQuery>;

export const ScheduleResponse = Type.Object({
  id: Type.Integer(),
  job_id: Type.Integer(),
  name: Type.String(),
  cron: Type.String(),
  timezone: Type.String(),
  description: Type.String({ description: 'The cron expression in words' }),
  enabled: Type.Boolean(),
  target_ids: Type.Array(Type.Integer()),
  group_ids: Type.Array(Type.Integer()),
  parameters: Type.Record(Type.String(), Type.Unknown(), { description: 'Secret values shown as ***' }),
  overlap: StringEnum(OVERLAP),
  catchup: StringEnum(CATCHUP),
  next_run: NullableTimestamp('Next fire time (UTC); null while disabled'),
  last_run: NullableTimestamp('Scheduled time of the last fire that queued a run'),
  last_run_id: Type.Union([Type.Integer(), Type.Null()]),
  created_by: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

export const ScheduleListResponse = Type.Object({ schedules: Type.Array(ScheduleResponse), total: Type.Integer(), page: Type.Integer(), limit: Type.Integer() });

export const TriggerResponse = Type.Object({ job_run_id: Type.Integer(), message: Type.String() });

const Count = Type.Integer({ minimum: 1, maximum: 100, description: 'How many (default 5)' });
const From = Type.String({ format: 'date-time', description: 'Times after this instant (default now)' });
export const PreviewQuery = Type.Object({ count: Type.Optional(Count), from: Type.Optional(From) }, { additionalProperties: false });
export const PreviewBody = Type.Object({ cron: Cron, timezone: Type.Optional(Timezone), count: Type.Optional(Count), from: Type.Optional(From) }, { additionalProperties: false });
export type PreviewBody = Static<typeof PreviewBody>;
export const PreviewResponse = Type.Object({
  cron: Type.String(),
  timezone: Type.String(),
  description: Type.String(),
  next_runs: Type.Array(Type.Object({ utc: Timestamp(), local: Type.String({ description: 'Local time in the zone, ISO 8601 with offset' }) })),
});

export const FiresQuery = Type.Object({ ...PageQuery, outcome: Type.Optional(StringEnum(FIRE_OUTCOMES)) }, { additionalProperties: false });
export type FiresQuery = Static<typeof FiresQuery>;
export const FiresResponse = Type.Object({
  fires: Type.Array(
    Type.Object({
      scheduled_for: Timestamp(),
      fired_at: Timestamp(),
      outcome: StringEnum(FIRE_OUTCOMES),
      run_id: Type.Union([Type.Integer(), Type.Null()]),
      error: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  total: Type.Integer(),
  page: Type.Integer(),
  limit: Type.Integer(),
});
