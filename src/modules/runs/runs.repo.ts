/** SQL for job runs, their targets, steps and events. */
import { sql } from 'kysely';

import type { Db, JobRunRow, JobRunStepRow, JobRunTargetRow, Queryable, RunDefinition, RunEventRow } from '../../db/schema.ts';

/** Statuses of a run-target that are final. */
export const FINAL_TARGET_STATUSES = ['succeeded', 'failed', 'unreachable', 'timed_out', 'canceled', 'skipped'] as const;

/** A new run. */
export interface NewRun {
  jobId: number | null;
  jobName: string;
  definition: RunDefinition;
  trigger: string;
  requestedBy: number | null;
  scheduleId: number | null;
  retryOf: number | null;
  parameters: Record<string, unknown>;
  parametersSealed: string;
  targets: Array<{ id: number; name: string | null }>;
  stepNames: string[];
}

/** New values of one run-target-step row; fields left out keep their value. */
export interface StepWrite {
  run_id: number;
  target_id: number;
  step_index: number;
  status: string;
  exit_code?: number | null;
  stdout?: string;
  stderr?: string;
  outputs?: Record<string, string>;
  truncated?: boolean;
  error?: string | null;
  attempts?: number;
  started_at?: Date;
  finished_at?: Date;
  duration_ms?: number;
}

/** A run-target a worker has finished. */
export interface TargetFinish {
  run_id: number;
  target_id: number;
  worker_id: string;
  status: string;
  error: string | null;
  finished_at: Date;
}

/** What a counted finish left behind on its run. */
export interface FinishResult {
  run_id: number;
  target_id: number;
  /** Targets of the run still in flight, on any worker. */
  running: number;
  /** Whether the run still has targets nobody has claimed. */
  pending: boolean;
}

/** One event to append. */
export interface NewEvent {
  runId: number;
  type: string;
  targetId?: number | null;
  stepIndex?: number | null;
  data: Record<string, unknown>;
}

/** Builds the runs repository over `db`. */
export function createRunsRepo(db: Db) {
  return {
    /** Inserts the run with its targets and pending steps; returns the run id. */
    async insertRun(q: Queryable, run: NewRun): Promise<number> {
      const { id } = await q
        .insertInto('job_runs')
        .values({
          job_id: run.jobId,
          job_name: run.jobName,
          definition: JSON.stringify(run.definition),
          trigger: run.trigger,
          requested_by: run.requestedBy,
          schedule_id: run.scheduleId,
          retry_of: run.retryOf,
          parameters: JSON.stringify(run.parameters),
          parameters_sealed: run.parametersSealed,
          target_ids: run.targets.map((t) => t.id).filter((t) => t !== 0),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await q.insertInto('job_run_targets').values(run.targets.map((t) => ({ run_id: id, target_id: t.id, target_name: t.name }))).execute();
      const steps = run.targets.flatMap((t) => run.stepNames.map((name, step_index) => ({ run_id: id, target_id: t.id, step_index, name })));
      for (let i = 0; i < steps.length; i += 1000) {
        await q.insertInto('job_run_steps').values(steps.slice(i, i + 1000)).execute();
      }
      return id;
    },

    /** The active (queued or running) run of a job, with the job row locked. */
    async activeRunOfJob(q: Queryable, jobId: number): Promise<number | undefined> {
      await q.selectFrom('jobs').select('id').where('id', '=', jobId).forUpdate().execute();
      const row = await q.selectFrom('job_runs').select('id').where('job_id', '=', jobId).where('status', 'in', ['queued', 'running']).executeTakeFirst();
      return row?.id;
    },

    findRun: (id: number, q: Queryable = db): Promise<JobRunRow | undefined> => q.selectFrom('job_runs').selectAll().where('id', '=', id).executeTakeFirst(),

    async listRuns(filter: { jobId?: number; status?: string; offset: number; limit: number }): Promise<{ rows: JobRunRow[]; total: number }> {
      let query = db.selectFrom('job_runs');
      if (filter.jobId !== undefined) {
        query = query.where('job_id', '=', filter.jobId);
      }
      if (filter.status) {
        query = query.where('status', '=', filter.status);
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    runTargets: (runId: number): Promise<JobRunTargetRow[]> => db.selectFrom('job_run_targets').selectAll().where('run_id', '=', runId).orderBy('target_id').execute(),

    runSteps: (runId: number): Promise<JobRunStepRow[]> =>
      db.selectFrom('job_run_steps').selectAll().where('run_id', '=', runId).orderBy('target_id').orderBy('step_index').execute(),

    async step(runId: number, targetId: number, stepIndex: number): Promise<JobRunStepRow | undefined> {
      return db.selectFrom('job_run_steps').selectAll().where('run_id', '=', runId).where('target_id', '=', targetId).where('step_index', '=', stepIndex).executeTakeFirst();
    },

    /**
     * Claims up to `limit` pending targets of a run for `workerId` (only those in `targetIds` when
     * given), within the run's free slots, in one autocommitted statement: the run row's update
     * serialises competing claims, and a claim that would overshoot the run's concurrency because
     * another worker got there first takes nothing (the run's next finishing target pulls again).
     */
    async claimTargets(runId: number, targetIds: number[] | null, limit: number, workerId: string, leaseS: number, now: Date): Promise<JobRunTargetRow[]> {
      const lease = new Date(now.getTime() + leaseS * 1000);
      const only = targetIds === null ? sql`` : sql`and p.target_id = any(${targetIds}::int[])`;
      const active = sql`status in ('queued', 'running') and not cancel_requested and (deadline_at is null or deadline_at > ${now})`;
      const { rows } = await sql<JobRunTargetRow>`
        with pick as (
          select p.target_id from job_run_targets p
           where p.run_id = ${runId} and p.status = 'pending' ${only}
           order by p.target_id
           limit least(${limit}::int, (select greatest((definition->>'concurrency')::int - running, 0) from job_runs where id = ${runId} and ${active}))
           for update skip locked
        ), slot as (
          update job_runs
             set running = running + (select count(*) from pick),
                 status = 'running',
                 started_at = coalesce(started_at, ${now}),
                 deadline_at = coalesce(deadline_at, ${now}::timestamptz + ((definition->>'timeout_s')::int * interval '1 second'))
           where id = ${runId} and exists (select 1 from pick) and ${active}
             and running + (select count(*) from pick) <= (definition->>'concurrency')::int
          returning id
        )
        update job_run_targets t
           set status = 'running', worker_id = ${workerId}, lease_until = ${lease}, started_at = ${now}
         where t.run_id = ${runId} and t.target_id in (select target_id from pick) and exists (select 1 from slot)
        returning t.*`.execute(db);
      return rows;
    },

    /**
     * Applies a batch of step writes and target finishes in one statement. A finish counts only
     * while `worker_id` still holds the target (the reaper may have declared it lost); it frees the
     * target's slot on the run. Returns, per finish that counted, the run's targets still in
     * flight and whether any are still pending.
     */
    async applyBatch(steps: StepWrite[], finishes: TargetFinish[]): Promise<FinishResult[]> {
      const { rows } = await sql<FinishResult>`
        with step_input as (
          select * from jsonb_to_recordset(${JSON.stringify(steps)}::jsonb) as x(
            run_id int, target_id int, step_index int, status text, exit_code int, stdout text, stderr text, outputs jsonb,
            truncated boolean, error text, attempts int, started_at timestamptz, finished_at timestamptz, duration_ms int)
        ), stepped as (
          update job_run_steps s
             set status = x.status, exit_code = coalesce(x.exit_code, s.exit_code), stdout = coalesce(x.stdout, s.stdout),
                 stderr = coalesce(x.stderr, s.stderr), outputs = coalesce(x.outputs, s.outputs), truncated = coalesce(x.truncated, s.truncated),
                 error = coalesce(x.error, s.error), attempts = coalesce(x.attempts, s.attempts), started_at = coalesce(x.started_at, s.started_at),
                 finished_at = coalesce(x.finished_at, s.finished_at), duration_ms = coalesce(x.duration_ms, s.duration_ms)
            from step_input x
           where s.run_id = x.run_id and s.target_id = x.target_id and s.step_index = x.step_index
          returning s.run_id
        ), finish_input as (
          select * from jsonb_to_recordset(${JSON.stringify(finishes)}::jsonb) as f(run_id int, target_id int, worker_id text, status text, error text, finished_at timestamptz)
        ), done as (
          update job_run_targets t
             set status = f.status, error = f.error, finished_at = f.finished_at, lease_until = null
            from finish_input f
           where t.run_id = f.run_id and t.target_id = f.target_id and t.status = 'running' and t.worker_id = f.worker_id
          returning t.run_id, t.target_id
        ), freed as (
          update job_runs r
             set running = greatest(r.running - d.n, 0)
            from (select run_id, count(*)::int as n from done group by run_id) d
           where r.id = d.run_id
          returning r.id, r.running
        )
        select d.run_id, d.target_id, fr.running,
               exists (select 1 from job_run_targets p where p.run_id = d.run_id and p.status = 'pending') as pending
          from done d join freed fr on fr.id = d.run_id`.execute(db);
      return rows;
    },

    /** Extends the leases of `workerId`; returns its runs that were canceled or passed their deadline. */
    async renewLeases(workerId: string, leaseS: number, now: Date): Promise<Array<{ id: number; cancel_requested: boolean }>> {
      // Rows locked right now are being finished by this worker's result writer: skip them rather
      // than lock a set of rows in an order that can deadlock with its batch.
      await sql`
        update job_run_targets t set lease_until = ${new Date(now.getTime() + leaseS * 1000)}
          from (select run_id, target_id from job_run_targets
                 where worker_id = ${workerId} and status = 'running'
                 for update skip locked) mine
         where t.run_id = mine.run_id and t.target_id = mine.target_id`.execute(db);
      const rows = await db
        .selectFrom('job_runs')
        .select(['id', 'cancel_requested'])
        .where('status', '=', 'running')
        .where((eb) => eb.or([eb('cancel_requested', '=', true), eb('deadline_at', '<', now)]))
        .where((eb) => eb.exists(eb.selectFrom('job_run_targets as t').select('t.run_id').whereRef('t.run_id', '=', 'job_runs.id').where('t.worker_id', '=', workerId).where('t.status', '=', 'running')))
        .execute();
      return rows;
    },

    /**
     * Run-targets whose worker stopped renewing: marked failed with `worker_lost`, their running
     * step failed the same way and the rest skipped. Returns them.
     */
    async expireLeases(now: Date): Promise<Array<{ run_id: number; target_id: number }>> {
      // Skipping locked rows: a row a worker is finishing right now is not lost.
      const { rows: lost } = await sql<{ run_id: number; target_id: number }>`
        update job_run_targets t set status = 'failed', error = 'worker_lost', finished_at = ${now}, lease_until = null
          from (select run_id, target_id from job_run_targets
                 where status = 'running' and lease_until < ${now}
                 for update skip locked) expired
         where t.run_id = expired.run_id and t.target_id = expired.target_id and t.status = 'running'
        returning t.run_id, t.target_id`.execute(db);
      for (const { run_id, target_id } of lost) {
        await db.updateTable('job_runs').set((eb) => ({ running: sql<number>`greatest(${eb.ref('running')} - 1, 0)` })).where('id', '=', run_id).execute();
        const steps = db.updateTable('job_run_steps').where('run_id', '=', run_id).where('target_id', '=', target_id);
        await steps.set({ status: 'failed', error: 'worker_lost', finished_at: now }).where('status', '=', 'running').execute();
        await steps.set({ status: 'skipped' }).where('status', '=', 'pending').execute();
      }
      return lost;
    },

    /** Marks a run's pending targets (and their steps) with `status` (cancel, deadline). */
    async closePendingTargets(runId: number, status: 'canceled' | 'timed_out', now: Date): Promise<number[]> {
      const rows = await db
        .updateTable('job_run_targets')
        .set({ status, finished_at: now })
        .where('run_id', '=', runId)
        .where('status', '=', 'pending')
        .returning('target_id')
        .execute();
      if (rows.length > 0) {
        await db
          .updateTable('job_run_steps')
          .set({ status: 'skipped' })
          .where('run_id', '=', runId)
          .where('target_id', 'in', rows.map((r) => r.target_id))
          .where('status', '=', 'pending')
          .execute();
      }
      return rows.map((r) => r.target_id);
    },

    async requestCancel(runId: number): Promise<boolean> {
      const result = await db.updateTable('job_runs').set({ cancel_requested: true }).where('id', '=', runId).where('status', 'in', ['queued', 'running']).executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Active runs with pending targets but nothing running since `before` (a lost wake-up): run id → pending count. */
    async stalledRuns(before: Date): Promise<Array<{ id: number; pending: number }>> {
      const rows = await db
        .selectFrom('job_run_targets as t')
        .innerJoin('job_runs as r', 'r.id', 't.run_id')
        .select(['t.run_id as id', (eb) => eb.fn.countAll<number>().as('pending')])
        .where('r.status', 'in', ['queued', 'running'])
        .where('r.cancel_requested', '=', false)
        .where('r.queued_at', '<', before)
        .where('t.status', '=', 'pending')
        .where((eb) => eb.not(eb.exists(eb.selectFrom('job_run_targets as x').select('x.run_id').whereRef('x.run_id', '=', 't.run_id').where('x.status', '=', 'running'))))
        .groupBy('t.run_id')
        .execute();
      return rows.map((r) => ({ id: r.id, pending: Number(r.pending) }));
    },

    /** Running runs past their deadline. */
    async overdueRuns(now: Date): Promise<number[]> {
      const rows = await db.selectFrom('job_runs').select('id').where('status', '=', 'running').where('deadline_at', '<', now).execute();
      return rows.map((r) => r.id);
    },

    /**
     * Finishes the run when no target is pending or running; returns the final status, or
     * undefined when the run is still going (or was already finished).
     */
    async finalizeRun(runId: number, now: Date): Promise<{ status: string; summary: Record<string, number> } | undefined> {
      // Cheap common case first: something is still pending or running.
      const active = await db.selectFrom('job_run_targets').select('target_id').where('run_id', '=', runId).where('status', 'in', ['pending', 'running']).limit(1).executeTakeFirst();
      if (active) {
        return undefined;
      }
      const counts = await db.selectFrom('job_run_targets').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('run_id', '=', runId).groupBy('status').execute();
      const summary: Record<string, number> = { succeeded: 0, failed: 0, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0 };
      for (const c of counts) {
        summary[c.status] = Number(c.n);
      }
      if ((summary.pending ?? 0) > 0 || (summary.running ?? 0) > 0) {
        return undefined;
      }
      const run = await db.selectFrom('job_runs').select(['cancel_requested', 'deadline_at']).where('id', '=', runId).executeTakeFirst();
      const total = counts.reduce((a, c) => a + Number(c.n), 0);
      const status = run?.cancel_requested
        ? 'canceled'
        : summary.timed_out && run?.deadline_at && run.deadline_at <= now
          ? 'timed_out'
          : summary.succeeded === total
            ? 'completed'
            : 'failed';
      const result = await db
        .updateTable('job_runs')
        .set({ status, summary: JSON.stringify(summary), finished_at: now })
        .where('id', '=', runId)
        .where('status', 'in', ['queued', 'running'])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1 ? { status, summary } : undefined;
    },

    /** Appends events in their order and notifies `channel` with the ids of their runs, in one statement. */
    async insertEvents(events: NewEvent[], channel: string): Promise<void> {
      if (events.length === 0) {
        return;
      }
      const rows = events.map((e) => ({ run_id: e.runId, type: e.type, target_id: e.targetId ?? null, step_index: e.stepIndex ?? null, data: e.data }));
      await sql`
        with added as (
          insert into run_events (run_id, type, target_id, step_index, data)
          select e.run_id, e.type, e.target_id, e.step_index, e.data
            from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as (run_id int, type text, target_id int, step_index int, data jsonb))
                 with ordinality as e(run_id, type, target_id, step_index, data, n)
           order by e.n
          returning run_id
        )
        select pg_notify(${channel}, string_agg(distinct run_id::text, ',')) from added`.execute(db);
    },

    /** The text of the `output` events of one step's stream, in order. */
    async outputChunks(runId: number, targetId: number, stepIndex: number, stream: string): Promise<string[]> {
      const rows = await db
        .selectFrom('run_events')
        .select('data')
        .where('run_id', '=', runId)
        .where('type', '=', 'output')
        .where('target_id', '=', targetId)
        .where('step_index', '=', stepIndex)
        .where(sql<boolean>`data->>'stream' = ${stream}`)
        .orderBy('id')
        .execute();
      return rows.map((r) => String((r.data as { text?: string }).text ?? ''));
    },

    eventsAfter: (runId: number, afterId: number, limit = 1000): Promise<RunEventRow[]> =>
      db.selectFrom('run_events').selectAll().where('run_id', '=', runId).where('id', '>', afterId).orderBy('id').limit(limit).execute(),
  };
}

/** The runs repository. */
export type RunsRepo = ReturnType<typeof createRunsRepo>;
