/**
 * Schedules: saved only when they can fire (cron and zone parse, the job exists, parameters match
 * its declarations, targets exist), parameters sealed like a run's, every change audited and told
 * to the schedulers. Firing is the loop's (scheduler.loop.ts).
 */
import type { Db, JobRow, ScheduleRow } from '../../db/schema.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import { type Keyring, open, seal } from '../../shared/crypto-box.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import { maskParameters, needsTargets, type ParameterDeclarations, type ParameterValues, resolveParameters, type Step } from '../jobs/index.ts';
import type { RunsService } from '../runs/index.ts';
import type { GroupsService, TargetsService } from '../targets/index.ts';
import { localIso, parseCron } from './cron.ts';
import type { SchedulerRepo, ScheduleWrite } from './scheduler.repo.ts';
import type { ScheduleCreateBody, ScheduleUpdateBody } from './scheduler.schemas.ts';

const PARAMS_CONTEXT = 'schedule-parameters';

/** Builds the scheduler service. */
export function createSchedulerService(deps: {
  db: Db;
  repo: SchedulerRepo;
  findJob: (id: number) => Promise<JobRow | undefined>;
  targets: TargetsService;
  groups: GroupsService;
  runs: RunsService;
  keyring: Keyring;
  audit: AuditService;
  clock: Clock;
}) {
  const { db, repo, findJob, targets, groups, runs, keyring, audit, clock } = deps;

  async function getRow(id: number): Promise<ScheduleRow> {
    const row = await repo.findById(id);
    if (!row) {
      throw new NotFoundError(`Schedule ${id} not found`);
    }
    return row;
  }

  /** The real parameter values (for firing; never for display). */
  const parameterValues = (row: Pick<ScheduleRow, 'parameters_sealed'>) => open<ParameterValues>(keyring, row.parameters_sealed, PARAMS_CONTEXT);

  /** Checks a whole schedule as it would be saved; returns the columns to write. */
  async function check(input: Required<Pick<ScheduleCreateBody, 'job_id' | 'cron'>> & Omit<ScheduleCreateBody, 'job_id' | 'cron'>): Promise<ScheduleWrite> {
    const timezone = input.timezone ?? 'UTC';
    const cron = parseCron(input.cron, timezone);
    const job = await findJob(input.job_id);
    if (!job) {
      throw new ValidationError(`job_id: job ${input.job_id} does not exist`, 'job_id');
    }
    const declarations = job.parameters as ParameterDeclarations;
    const values = input.parameters ?? {};
    resolveParameters(declarations, values);
    const targetIds = input.target_ids ?? [];
    const groupIds = input.group_ids ?? [];
    await targets.getMany(targetIds, 'target_ids');
    await groups.assertExist(groupIds);
    if (targetIds.length === 0 && groupIds.length === 0 && needsTargets(job.steps as Step[])) {
      throw new ValidationError('target_ids: this job has command or sftp steps, so its schedule needs target_ids or group_ids', 'target_ids');
    }
    const enabled = input.enabled ?? true;
    return {
      job_id: job.id,
      name: input.name ?? '',
      cron: input.cron.trim(),
      timezone,
      enabled,
      target_ids: targetIds,
      group_ids: groupIds,
      parameters: maskParameters(declarations, values as ParameterValues),
      parameters_sealed: seal(keyring, values, PARAMS_CONTEXT).envelope,
      overlap: input.overlap ?? 'skip',
      catchup: input.catchup ?? 'none',
      next_run_at: enabled ? (cron.next(clock.now(), 1)[0] ?? null) : null,
    };
  }

  function preview(expression: string, timezone: string, count: number, from?: string) {
    const cron = parseCron(expression, timezone);
    return {
      cron: expression,
      timezone,
      description: cron.description,
      next_runs: cron.next(from ? new Date(from) : clock.now(), count).map((at) => ({ utc: at.toISOString(), local: localIso(at, timezone) })),
    };
  }

  return {
    parameterValues,
    get: getRow,
    preview,
    list: (q: { page: number; limit: number; jobId?: number; enabled?: boolean; search?: string }) =>
      repo.list({ jobId: q.jobId, enabled: q.enabled, search: q.search, offset: (q.page - 1) * q.limit, limit: q.limit }),

    async create(actor: Actor, input: ScheduleCreateBody): Promise<ScheduleRow> {
      const write = await check(input);
      return db.transaction().execute(async (tx) => {
        const row = await repo.insert(tx, { ...write, created_by: actor.id }, clock.now());
        await repo.notifyChanged(tx);
        await audit.record(actor, 'schedule.create', { type: 'schedule', id: row.id }, { job_id: row.job_id, cron: row.cron, timezone: row.timezone }, tx);
        return row;
      });
    },

    async update(actor: Actor, id: number, input: ScheduleUpdateBody): Promise<ScheduleRow> {
      const current = await getRow(id);
      const write = await check({
        job_id: current.job_id,
        cron: input.cron ?? current.cron,
        name: input.name ?? current.name,
        timezone: input.timezone ?? current.timezone,
        enabled: input.enabled ?? current.enabled,
        target_ids: input.target_ids ?? current.target_ids,
        group_ids: input.group_ids ?? current.group_ids,
        parameters: input.parameters ?? parameterValues(current),
        overlap: (input.overlap ?? current.overlap) as ScheduleWrite['overlap'],
        catchup: (input.catchup ?? current.catchup) as ScheduleWrite['catchup'],
      } as ScheduleCreateBody);
      const timing = input.cron !== undefined || input.timezone !== undefined || input.enabled !== undefined;
      return db.transaction().execute(async (tx) => {
        // The next run is recomputed only when the timing changed: an edit of anything else keeps it.
        const row = await repo.update(tx, id, { ...write, next_run_at: timing ? write.next_run_at : current.next_run_at }, clock.now());
        if (!row) {
          throw new NotFoundError(`Schedule ${id} not found`);
        }
        await repo.notifyChanged(tx);
        await audit.record(actor, 'schedule.update', { type: 'schedule', id }, { fields: Object.keys(input) }, tx);
        return row;
      });
    },

    async remove(actor: Actor, id: number): Promise<void> {
      await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.remove(tx, id);
        await repo.notifyChanged(tx);
        await audit.record(actor, 'schedule.delete', { type: 'schedule', id }, {}, tx);
      });
    },

    /** Runs the schedule's job now, with its targets and parameters (not a fire: no overlap policy). */
    async trigger(actor: Actor, id: number): Promise<number> {
      const row = await getRow(id);
      const runId = await runs.queueRun({ jobId: row.job_id, targetIds: row.target_ids, groupIds: row.group_ids, parameters: parameterValues(row), trigger: 'manual', actor, scheduleId: row.id });
      await audit.record(actor, 'schedule.trigger', { type: 'schedule', id }, { run_id: runId });
      return runId;
    },

    async fires(id: number, q: { page: number; limit: number; outcome?: string }) {
      await getRow(id);
      return repo.fires(id, { outcome: q.outcome, offset: (q.page - 1) * q.limit, limit: q.limit });
    },

    /**
     * A 400 on `parameters` when `declarations` (a job's, about to be saved) refuse what one of the
     * job's schedules would run it with: the schedule would otherwise fail at every fire.
     */
    async checkJobParameters(jobId: number, declarations: ParameterDeclarations): Promise<void> {
      const { rows } = await repo.list({ jobId, offset: 0, limit: 10_000 });
      const refused = rows.flatMap((row) => {
        try {
          resolveParameters(declarations, parameterValues(row));
          return [];
        } catch (e) {
          return [`schedule ${row.id}: ${(e as Error).message}`];
        }
      });
      if (refused.length > 0) {
        throw new ValidationError(`parameters: the job's schedules would no longer run (${refused.join('; ')}); change or delete them first`, 'parameters');
      }
    },

    /** Words for a stored schedule's expression. */
    describe: (row: ScheduleRow) => parseCron(row.cron, row.timezone).description,
  };
}

/** The scheduler service. */
export type SchedulerService = ReturnType<typeof createSchedulerService>;
