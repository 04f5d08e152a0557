/** Data access for schedules and their fires. */
import { CompiledQuery, sql } from 'kysely';

import type { Db, Queryable, ScheduleFireRow, ScheduleRow } from '../../db/schema.ts';
import { containsPattern } from '../../db/like.ts';

/** What a save writes. */
export type ScheduleWrite = Pick<
  ScheduleRow,
  'job_id' | 'name' | 'cron' | 'timezone' | 'enabled' | 'target_ids' | 'group_ids' | 'parameters' | 'parameters_sealed' | 'overlap' | 'catchup' | 'next_run_at'
>;

/** Outcome of one scheduled time. */
export type FireOutcome = 'queued' | 'waiting' | 'skipped_overlap' | 'skipped_inactive' | 'missed' | 'failed';

/** One fire to record. */
export interface FireWrite {
  scheduleId: number;
  scheduledFor: Date;
  firedAt: Date;
  outcome: FireOutcome;
  runId?: number | null;
  error?: string | null;
}

/** Channel that wakes schedulers when schedules change. */
export const SCHEDULES_CHANNEL = 'oc_schedules';

/** Builds the schedules repo. */
export function createSchedulerRepo(db: Db) {
  return {
    findById: (id: number, q: Queryable = db) => q.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst(),

    async list(filter: { jobId?: number; enabled?: boolean; search?: string; offset: number; limit: number }): Promise<{ rows: ScheduleRow[]; total: number }> {
      let query = db.selectFrom('schedules');
      if (filter.jobId !== undefined) {
        query = query.where('job_id', '=', filter.jobId);
      }
      if (filter.enabled !== undefined) {
        query = query.where('enabled', '=', filter.enabled);
      }
      if (filter.search) {
        query = query.where(sql<boolean>`name ilike ${containsPattern(filter.search)}`);
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    insert: (q: Queryable, row: ScheduleWrite & { created_by: number | null }, now: Date) =>
      q
        .insertInto('schedules')
        .values({ ...row, parameters: JSON.stringify(row.parameters), created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow(),

    update: (q: Queryable, id: number, row: Partial<ScheduleWrite>, now: Date) =>
      q
        .updateTable('schedules')
        .set({ ...row, ...(row.parameters ? { parameters: JSON.stringify(row.parameters) } : {}), updated_at: now })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst(),

    remove: (q: Queryable, id: number) => q.deleteFrom('schedules').where('id', '=', id).executeTakeFirst(),

    /** Tells every scheduler to look again. */
    notifyChanged: (q: Queryable) => q.executeQuery(CompiledQuery.raw(`select pg_notify('${SCHEDULES_CHANNEL}', '')`)),

    /** Enabled schedules due at `now`, earliest first (no lock: each is claimed before it fires). */
    dueSchedules: (now: Date, limit: number) =>
      db.selectFrom('schedules').selectAll().where('enabled', '=', true).where('next_run_at', '<=', now).orderBy('next_run_at').limit(limit).execute(),

    /** Locks schedule `id` for this transaction if it is still due; undefined when another scheduler holds it. */
    claimDue: (tx: Queryable, now: Date, id: number) =>
      tx.selectFrom('schedules').selectAll().where('id', '=', id).where('enabled', '=', true).where('next_run_at', '<=', now).forUpdate().skipLocked().executeTakeFirst(),

    /** Locks schedule `id` for this transaction; undefined when another scheduler holds it. */
    claimById: (tx: Queryable, id: number) => tx.selectFrom('schedules').selectAll().where('id', '=', id).forUpdate().skipLocked().executeTakeFirst(),

    /** Schedules with fires waiting whose own previous run has finished. */
    waitingSchedules: () =>
      db
        .selectFrom('schedules as s')
        .selectAll('s')
        .where((eb) =>
          eb.and([
            eb.exists(eb.selectFrom('schedule_fires as f').select('f.id').whereRef('f.schedule_id', '=', 's.id').where('f.outcome', '=', 'waiting')),
            eb.not(eb.exists(eb.selectFrom('job_runs as r').select('r.id').whereRef('r.schedule_id', '=', 's.id').where('r.status', 'in', ['queued', 'running']))),
          ]),
        )
        .orderBy('s.id')
        .execute(),

    /** The earliest time any enabled schedule is due, and whether fires are waiting. */
    async nextDue(): Promise<{ at: Date | null; waiting: boolean }> {
      const row = await db
        .selectFrom('schedules')
        .select((eb) => [eb.fn.min('next_run_at').as('at'), eb.exists(eb.selectFrom('schedule_fires').select('id').where('outcome', '=', 'waiting')).as('waiting')])
        .where('enabled', '=', true)
        .executeTakeFirst();
      return { at: row?.at ? new Date(row.at as unknown as string) : null, waiting: Boolean(row?.waiting) };
    },

    /** The newest queued or running run this schedule started, if any. */
    activeRun: async (q: Queryable, scheduleId: number) =>
      (await q.selectFrom('job_runs').select('id').where('schedule_id', '=', scheduleId).where('status', 'in', ['queued', 'running']).orderBy('id', 'desc').limit(1).executeTakeFirst())?.id,

    /** Records a fire; false when this time was already recorded (the caller rolls back). */
    async recordFire(q: Queryable, fire: FireWrite): Promise<boolean> {
      const row = await q
        .insertInto('schedule_fires')
        .values({ schedule_id: fire.scheduleId, scheduled_for: fire.scheduledFor, fired_at: fire.firedAt, outcome: fire.outcome, run_id: fire.runId ?? null, error: fire.error ?? null })
        .onConflict((oc) => oc.columns(['schedule_id', 'scheduled_for']).doNothing())
        .returning('id')
        .executeTakeFirst();
      return row !== undefined;
    },

    oldestWaiting: (q: Queryable, scheduleId: number) =>
      q.selectFrom('schedule_fires').selectAll().where('schedule_id', '=', scheduleId).where('outcome', '=', 'waiting').orderBy('scheduled_for').limit(1).executeTakeFirst(),

    /** Settles every waiting fire of a schedule at once (it was disabled while they waited). */
    settleWaiting: (q: Queryable, scheduleId: number, set: { outcome: FireOutcome; error: string; firedAt: Date }) =>
      q.updateTable('schedule_fires').set({ outcome: set.outcome, error: set.error, fired_at: set.firedAt }).where('schedule_id', '=', scheduleId).where('outcome', '=', 'waiting').execute(),

    settleFire: (q: Queryable, id: string, set: { outcome: FireOutcome; runId: number | null; error: string | null; firedAt: Date }) =>
      q.updateTable('schedule_fires').set({ outcome: set.outcome, run_id: set.runId, error: set.error, fired_at: set.firedAt }).where('id', '=', id).execute(),

    /** After a fire: when it runs next and what it last started. */
    advance: (q: Queryable, id: number, set: { nextRunAt: Date | null; lastRunAt?: Date; lastRunId?: number }) =>
      q
        .updateTable('schedules')
        .set({ next_run_at: set.nextRunAt, ...(set.lastRunAt ? { last_run_at: set.lastRunAt } : {}), ...(set.lastRunId !== undefined ? { last_run_id: set.lastRunId } : {}) })
        .where('id', '=', id)
        .execute(),

    async fires(scheduleId: number, filter: { outcome?: string; offset: number; limit: number }): Promise<{ rows: ScheduleFireRow[]; total: number }> {
      let query = db.selectFrom('schedule_fires').where('schedule_id', '=', scheduleId);
      if (filter.outcome) {
        query = query.where('outcome', '=', filter.outcome);
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('scheduled_for', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },
  };
}

/** The schedules repo. */
export type SchedulerRepo = ReturnType<typeof createSchedulerRepo>;
