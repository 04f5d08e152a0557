/**
 * The scheduler loop: fires due schedules exactly once however many schedulers share the
 * database. A due schedule is locked (FOR UPDATE SKIP LOCKED) in a transaction that records each
 * scheduled time in schedule_fires (unique per schedule and time), queues its run and advances
 * next_run_at, so a time is fired by one scheduler or, if that one dies first, by another. Runs are
 * prepared (reads) before the transaction, which then only locks and writes. The times a catch-up
 * fires are one batch (see overlapStart): they never skip each other; after the first run starts
 * the rest wait and are released one by one as runs finish, before new due times are looked at. The
 * loop sleeps until the earliest next run and wakes early when schedules change (LISTEN/NOTIFY).
 */
import type { Database } from '../../db/database.ts';
import type { Db, Queryable, ScheduleRow } from '../../db/schema.ts';
import { AppError, ConflictError, InvalidStateError } from '../../errors.ts';
import type { Logger } from '../../logging.ts';
import type { Clock } from '../../shared/clock.ts';
import type { PreparedRun, RunsService } from '../runs/index.ts';
import { parseCron } from './cron.ts';
import { type CatchupLimits, DEFAULT_LIMITS, type FirePlan, overlapStart, planFires } from './scheduler.fire.ts';
import { type FireOutcome, SCHEDULES_CHANNEL, type SchedulerRepo } from './scheduler.repo.ts';

/** Longest the loop sleeps without looking (covers a lost notification or a clock jump). */
const MAX_SLEEP_MS = 30_000;
/** How often fires waiting behind a running run are looked at. */
const WAITING_POLL_MS = 1_000;
/** Back-off after a failure. */
const RETRY_MS = 1_000;
/** Back-off when a due schedule is locked by another scheduler. */
const CONTENDED_MS = 50;

interface Decision {
  outcome: FireOutcome;
  run?: PreparedRun;
  error?: string;
}

/** The outcome recorded for one time, with the run it queued. */
type Fired = Decision & { runId?: number };

/** Builds the loop; `tick` fires what is due now (tests call it with a moved clock). */
export function createSchedulerLoop(deps: {
  db: Db;
  database: Pick<Database, 'listen'>;
  repo: SchedulerRepo;
  runs: RunsService;
  parameters: (row: ScheduleRow) => Record<string, unknown>;
  clock: Clock;
  logger: Logger;
  graceMs?: number;
  /** Catch-up limits (tests pass small ones). */
  limits?: CatchupLimits;
}) {
  const { db, repo, runs, clock, logger } = deps;
  const limits = deps.limits ?? DEFAULT_LIMITS;

  /** Resolves the run a fire would queue; an error that says it cannot run is the fire's outcome. */
  async function prepare(row: ScheduleRow): Promise<Decision> {
    try {
      const run = await runs.prepareRun({ jobId: row.job_id, targetIds: row.target_ids, groupIds: row.group_ids, parameters: deps.parameters(row), trigger: 'schedule', actor: null, scheduleId: row.id });
      return { outcome: 'queued', run };
    } catch (e) {
      if (e instanceof InvalidStateError) {
        return { outcome: 'skipped_inactive', error: e.message };
      }
      if (e instanceof AppError) {
        return { outcome: 'failed', error: e.message };
      }
      throw e;
    }
  }

  /**
   * Fires the times of one catch-up batch (usually one time) by the overlap policy; returns each
   * outcome. The batch does not skip itself: after its first run starts, the rest wait and start one
   * after another as runs finish (or, under `allow`, run alongside when the job allows it).
   */
  async function fireBatch(tx: Queryable, row: ScheduleRow, times: Date[], decision: Decision): Promise<Fired[]> {
    const run = decision.run;
    if (!run) {
      return times.map(() => decision);
    }
    const active = await repo.activeRun(tx, row.id);
    const waiting = (await repo.oldestWaiting(tx, row.id))?.scheduled_for;
    let mode = overlapStart(row.overlap, times.length > 1, active, waiting);
    const done: Fired[] = [];
    while (done.length < times.length) {
      if (mode !== 'go') {
        done.push(mode === 'wait' ? { outcome: 'waiting' } : mode);
        continue;
      }
      try {
        done.push({ outcome: 'queued', runId: await runs.insertPrepared(tx, run) });
        mode = row.overlap === 'allow' ? 'go' : 'wait';
      } catch (e) {
        if (!(e instanceof ConflictError)) {
          throw e;
        }
        // The job allows one run at a time: a first time is skipped as a single time would be; the
        // rest of a started batch waits its turn.
        mode = done.length === 0 ? { outcome: 'skipped_overlap', error: e.message } : 'wait';
      }
    }
    return done;
  }

  /** Records and logs the missed times of a plan, and how many older ones were not recorded. */
  async function recordMissed(tx: Queryable, row: ScheduleRow, plan: FirePlan, now: Date): Promise<void> {
    for (const at of plan.missed) {
      await record(tx, row.id, at, now, { outcome: 'missed' });
      logger.warn({ schedule_id: row.id, scheduled_for: at.toISOString(), catchup: row.catchup }, 'schedule time missed');
    }
    const older = plan.unrecorded;
    if (older) {
      const [from, to] = [older.first.toISOString(), older.last.toISOString()];
      logger.warn(
        { schedule_id: row.id, catchup: row.catchup, not_recorded: older.count, not_recorded_at_least: older.atLeast, from, to },
        `${older.atLeast ? 'more than ' : ''}${older.count} older missed times (${from} to ${to}) were not recorded: a catch-up records at most the newest ${limits.missed} missed times`,
      );
    }
  }

  /** Fires one due schedule seen as `seen`; false when another scheduler had it. */
  async function fireDue(seen: ScheduleRow, now: Date): Promise<boolean> {
    const cron = parseCron(seen.cron, seen.timezone);
    const plan = planFires(cron, seen.next_run_at as Date, seen.catchup, now, deps.graceMs, limits);
    const decision = plan.fire.length > 0 ? await prepare(seen) : undefined;
    return db.transaction().execute(async (tx) => {
      const row = await repo.claimDue(tx, now, seen.id);
      if (!row || row.next_run_at?.getTime() !== seen.next_run_at?.getTime() || row.updated_at.getTime() !== seen.updated_at.getTime()) {
        return false; // fired or changed meanwhile: look again next tick
      }
      await recordMissed(tx, row, plan, now);
      const done = decision ? await fireBatch(tx, row, plan.fire, decision) : [];
      let last: { at: Date; runId: number } | undefined;
      for (const [i, at] of plan.fire.entries()) {
        const fired = done[i] as Fired;
        await record(tx, row.id, at, now, fired);
        last = fired.runId === undefined ? last : { at, runId: fired.runId };
      }
      await repo.advance(tx, row.id, { nextRunAt: plan.nextRunAt, lastRunAt: last?.at, lastRunId: last?.runId });
      return true;
    });
  }

  async function record(tx: Queryable, scheduleId: number, at: Date, now: Date, done: { outcome: FireOutcome; runId?: number; error?: string }): Promise<void> {
    if (!(await repo.recordFire(tx, { scheduleId, scheduledFor: at, firedAt: now, outcome: done.outcome, runId: done.runId ?? null, error: done.error ?? null }))) {
      throw new Error(`schedule ${scheduleId} already fired for ${at.toISOString()}`); // rolls the transaction back
    }
  }

  /** Queues the oldest waiting fire of `candidate` if its previous run has finished; false when it could not go. */
  async function releaseWaiting(candidate: ScheduleRow, now: Date): Promise<boolean> {
    // A disabled schedule's waiting times are only settled: no run to prepare for them.
    const decision = candidate.enabled ? await prepare(candidate) : undefined;
    return db.transaction().execute(async (tx) => {
      const row = await repo.claimById(tx, candidate.id);
      const fire = row && (await repo.oldestWaiting(tx, row.id));
      if (!row || !fire || (row.enabled && !decision)) {
        return false; // (enabled meanwhile: prepared next tick)
      }
      if (!row.enabled || !decision) {
        // Disabled while these times waited: they do not run later, when it is enabled again.
        await repo.settleWaiting(tx, row.id, { outcome: 'skipped_inactive', error: 'the schedule was disabled while this time waited', firedAt: now });
        return true;
      }
      if ((await repo.activeRun(tx, row.id)) !== undefined) {
        return false;
      }
      if (!decision.run) {
        await repo.settleFire(tx, fire.id, { outcome: decision.outcome, runId: null, error: decision.error ?? null, firedAt: now });
        return true;
      }
      const runId = await runs.insertPrepared(tx, decision.run).catch((e: unknown) => (e instanceof ConflictError ? undefined : Promise.reject(e)));
      if (runId === undefined) {
        return false; // the job has a run of its own going (not this schedule's): wait on
      }
      await repo.settleFire(tx, fire.id, { outcome: 'queued', runId, error: null, firedAt: now });
      await repo.advance(tx, row.id, { nextRunAt: row.next_run_at, lastRunAt: fire.scheduled_for, lastRunId: runId });
      return true;
    });
  }

  /** Fires everything due as of the clock's now; `contended` when another scheduler held a due schedule. */
  async function tick(): Promise<{ fired: number; contended: boolean; failed: boolean }> {
    const now = clock.now();
    let fired = 0;
    let contended = false;
    let failed = false;
    // Waiting fires go first: a time due now then finds the released run, not a stale queue.
    for (const candidate of await repo.waitingSchedules()) {
      try {
        fired += (await releaseWaiting(candidate, now)) ? 1 : 0;
      } catch (e) {
        failed = true;
        logger.error({ err: e, schedule_id: candidate.id }, 'a waiting fire could not start; it is tried again');
      }
    }
    for (const seen of await repo.dueSchedules(now, 50)) {
      try {
        if (await fireDue(seen, now)) {
          fired += 1;
        } else {
          contended = true;
        }
      } catch (e) {
        failed = true;
        logger.error({ err: e, schedule_id: seen.id }, 'schedule could not fire; it is tried again');
      }
    }
    return { fired, contended, failed };
  }

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;

  /** Runs a tick, then sleeps until the next due time. */
  async function cycle(): Promise<void> {
    clearTimeout(timer);
    let delay = MAX_SLEEP_MS;
    try {
      const { contended, failed } = await tick();
      const { at, waiting } = await repo.nextDue();
      const until = at ? at.getTime() - clock.now().getTime() : MAX_SLEEP_MS;
      const floor = failed ? RETRY_MS : contended || until <= 0 ? CONTENDED_MS : 0;
      delay = Math.min(MAX_SLEEP_MS, waiting ? WAITING_POLL_MS : MAX_SLEEP_MS, Math.max(floor, until));
    } catch (e) {
      logger.error({ err: e }, 'scheduler tick failed; retrying');
      delay = RETRY_MS;
    }
    if (!stopped) {
      timer = setTimeout(wake, delay);
    }
  }

  function wake(): void {
    if (running) {
      again = true;
      return;
    }
    running = cycle().finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        wake();
      }
    });
  }

  return {
    tick,
    /** Starts looping: now, at each due time, and whenever schedules change. */
    async start(): Promise<() => Promise<void>> {
      const unlisten = await deps.database.listen(SCHEDULES_CHANNEL, wake);
      wake();
      return async () => {
        stopped = true;
        clearTimeout(timer);
        await unlisten();
        await running;
      };
    },
  };
}

/** The scheduler loop. */
export type SchedulerLoop = ReturnType<typeof createSchedulerLoop>;
