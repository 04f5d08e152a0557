/**
 * Job runs: queue (targets resolved and frozen, one queue message per run-target, all in the
 * caller's transaction if it has one), read, cancel, retry. Execution itself is the worker's.
 */
import { CompiledQuery } from 'kysely';

import type { Db, JobRow, Queryable, RunDefinition } from '../../db/schema.ts';
import { ConflictError, InvalidStateError, NotFoundError, ServiceCommunicationError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import { type Keyring, open, seal } from '../../shared/crypto-box.ts';
import type { Actor } from '../../shared/roles.ts';
import { QUEUES, type Queue, queueDb, runTargetMessageId } from '../../worker/queue.ts';
import type { AuditService } from '../audit/index.ts';
import { checkRunPlatforms } from '../libraries/index.ts';
import { maskParameters, needsTargets, type ParameterDeclarations, type ParameterValues, resolveParameters, type Step } from '../jobs/index.ts';
import type { GroupsService, TargetsService } from '../targets/index.ts';
import type { RunEvents } from './runs.events.ts';
import type { RunsRepo } from './runs.repo.ts';

/** Channel that wakes workers when work was queued. */
export const WORK_CHANNEL = 'oc_work';
/** Channel telling workers a run was canceled (payload: run id). */
export const CANCEL_CHANNEL = 'oc_cancel';
const PARAMS_CONTEXT = 'run-parameters';

/** What starts a run. */
export interface QueueRunInput {
  jobId: number;
  targetIds?: number[];
  groupIds?: number[];
  parameters?: Record<string, unknown>;
  trigger: 'manual' | 'schedule' | 'api' | 'retry';
  actor: Actor | null;
  scheduleId?: number;
  retryOf?: number;
}

/** A run checked and resolved by `prepareRun`, ready to insert. */
export interface PreparedRun {
  input: QueueRunInput;
  job: JobRow;
  values: ParameterValues;
  runTargets: Array<{ id: number; name: string | null }>;
}

/** Builds the runs service. */
export function createRunsService(deps: {
  db: Db;
  repo: RunsRepo;
  findJob: (id: number) => Promise<JobRow | undefined>;
  targets: TargetsService;
  groups: GroupsService;
  keyring: Keyring;
  queue: Queue | undefined;
  events: RunEvents;
  audit: AuditService;
  clock: Clock;
  /** Told when a run of a job starts (once per process and run; the receiver dedupes across processes) and when a run finishes. */
  onRunEvent?: (runId: number, change: { started: true } | { finished: string }) => Promise<void>;
  /** A job's steps with library steps expanded from the installed versions (frozen into the run). */
  expandSteps: (steps: Array<Record<string, unknown>>) => Promise<Array<Record<string, unknown>>>;
}) {
  const { db, repo, findJob, targets, groups, keyring, queue, events, audit, clock } = deps;
  const announced = new Set<number>();

  async function getRun(id: number) {
    const run = await repo.findRun(id);
    if (!run) {
      throw new NotFoundError(`Job run ${id} not found`);
    }
    return run;
  }

  async function resolveTargets(input: QueueRunInput, steps: Step[]): Promise<Array<{ id: number; name: string | null }>> {
    await groups.assertExist(input.groupIds ?? []);
    const fromGroups = await groups.memberIds(input.groupIds ?? []);
    const ids = [...new Set([...(input.targetIds ?? []), ...fromGroups])];
    if (ids.length === 0) {
      if (needsTargets(steps)) {
        throw new ValidationError('target_ids: this job has command or sftp steps, so it needs at least one target (target_ids or group_ids)', 'target_ids');
      }
      return [{ id: 0, name: null }];
    }
    const rows = await targets.getMany(ids, 'target_ids');
    // Library steps declare their platforms: a Windows step never reaches a Linux target, and so on.
    checkRunPlatforms(steps, rows);
    return rows.map((t) => ({ id: t.id, name: t.name }));
  }

  /** One queue message per run-target, committed with the run, then a wake-up for workers. */
  async function enqueue(q: Queryable, runId: number, runTargets: Array<{ id: number }>): Promise<void> {
    await queue?.insert(
      runTargets.map((t) => ({ id: runTargetMessageId(runId, t.id), name: QUEUES.runTarget, data: { runId, targetId: t.id } })),
      { db: queueDb(q) },
    );
    await q.executeQuery(CompiledQuery.raw(`select pg_notify('${WORK_CHANNEL}', $1)`, [String(runId)]));
  }

  async function insert(q: Queryable, job: JobRow, input: QueueRunInput, values: ParameterValues, runTargets: Array<{ id: number; name: string | null }>): Promise<number> {
    if (!job.allow_concurrent_runs) {
      const running = await repo.activeRunOfJob(q, job.id);
      if (running !== undefined) {
        throw new ConflictError(`Job ${job.id} already has an active run (${running}); it does not allow concurrent runs`, undefined, { details: { running_run_id: running } });
      }
    }
    const definition: RunDefinition = { steps: job.steps, parameters: job.parameters, concurrency: job.concurrency, timeout_s: job.timeout_s };
    const declarations = job.parameters as ParameterDeclarations;
    const runId = await repo.insertRun(q, {
      jobId: job.id,
      jobName: job.name,
      definition,
      trigger: input.trigger,
      requestedBy: input.actor?.id ?? null,
      scheduleId: input.scheduleId ?? null,
      retryOf: input.retryOf ?? null,
      parameters: maskParameters(declarations, values),
      parametersSealed: seal(keyring, values, PARAMS_CONTEXT).envelope,
      targets: runTargets,
      stepNames: job.steps.map((s) => String(s.name)),
    });
    await enqueue(q, runId, runTargets);
    await audit.record(input.actor ?? 'system', 'job.run', { type: 'job', id: job.id }, { run_id: runId, trigger: input.trigger, targets: runTargets.length }, q);
    return runId;
  }

  const service = {
    /** Checks a run can start and resolves what it needs (job, parameter values, targets); reads only. */
    async prepareRun(input: QueueRunInput): Promise<PreparedRun> {
      const job = await findJob(input.jobId);
      if (!job) {
        throw new NotFoundError(`Job ${input.jobId} not found`);
      }
      if (job.status !== 'active') {
        throw new InvalidStateError(`Job ${job.id} is inactive and cannot run`, { details: { job_id: job.id } });
      }
      const values = resolveParameters(job.parameters as ParameterDeclarations, input.parameters ?? {});
      const steps = (await deps.expandSteps(job.steps)) as Step[];
      const runTargets = await resolveTargets(input, steps);
      if (!queue) {
        throw new ServiceCommunicationError('queue', 'The background queue is not running in this process');
      }
      return { input, job: { ...job, steps }, values, runTargets };
    },

    /** Writes a prepared run and its queue messages in `q` (writes only: safe inside a transaction on PGlite). */
    insertPrepared: (q: Queryable, run: PreparedRun) => insert(q, run.job, run.input, run.values, run.runTargets),

    /** Queues a run in its own transaction. */
    async queueRun(input: QueueRunInput): Promise<number> {
      const run = await service.prepareRun(input);
      return db.transaction().execute((tx) => service.insertPrepared(tx, run));
    },

    /** Queues an ad hoc execution (POST /execute): validated steps on one target, no job. */
    async queueAdhoc(input: { steps: Step[]; targetId: number; actor: Actor }): Promise<number> {
      const [target] = await targets.getMany([input.targetId], 'target_id');
      if (!queue) {
        throw new ServiceCommunicationError('queue', 'The background queue is not running in this process');
      }
      const runTargets = [{ id: input.targetId, name: target?.name ?? null }];
      return db.transaction().execute(async (tx) => {
        const runId = await repo.insertRun(tx, {
          jobId: null,
          jobName: 'ad hoc execution',
          definition: { steps: input.steps, parameters: {}, concurrency: 1, timeout_s: 3600 },
          trigger: 'api',
          requestedBy: input.actor.id,
          scheduleId: null,
          retryOf: null,
          parameters: {},
          parametersSealed: seal(keyring, {}, PARAMS_CONTEXT).envelope,
          targets: runTargets,
          stepNames: input.steps.map((step) => step.name),
        });
        await enqueue(tx, runId, runTargets);
        await audit.record(input.actor, 'execution.start', { type: 'job_run', id: runId }, { target_id: input.targetId, steps: input.steps.length }, tx);
        return runId;
      });
    },

    getRun,
    list: (q: { page: number; limit: number; jobId?: number; status?: string }) => repo.listRuns({ jobId: q.jobId, status: q.status, offset: (q.page - 1) * q.limit, limit: q.limit }),
    runTargets: (id: number) => repo.runTargets(id),
    runSteps: (id: number) => repo.runSteps(id),

    /** The run's real parameter values (for the executor; never for display). */
    parameterValues: (sealed: string) => open<ParameterValues>(keyring, sealed, PARAMS_CONTEXT),

    /** Stops a run: pending targets are canceled now, running ones are killed by their workers. */
    async cancel(actor: Actor, id: number): Promise<void> {
      await getRun(id);
      if (!(await repo.requestCancel(id))) {
        throw new InvalidStateError(`Job run ${id} has already finished`);
      }
      const now = clock.now();
      await repo.closePendingTargets(id, 'canceled', now);
      await db.executeQuery(CompiledQuery.raw(`select pg_notify('${CANCEL_CHANNEL}', $1)`, [String(id)]));
      await audit.record(actor, 'job_run.cancel', { type: 'job_run', id });
      await service.finalize(id);
    },

    /** Queues a new run of the same job on the targets that did not succeed (or all). */
    async retry(actor: Actor, id: number, onlyFailed: boolean): Promise<number> {
      const run = await getRun(id);
      if (['queued', 'running'].includes(run.status)) {
        throw new InvalidStateError(`Job run ${id} is still ${run.status}`);
      }
      if (run.job_id === null) {
        throw new InvalidStateError(`The job of run ${id} no longer exists`);
      }
      const runTargets = await repo.runTargets(id);
      const retryIds = runTargets.filter((t) => !onlyFailed || t.status !== 'succeeded').map((t) => t.target_id).filter((t) => t !== 0);
      if (onlyFailed && runTargets.every((t) => t.status === 'succeeded')) {
        throw new InvalidStateError(`Every target of run ${id} succeeded; nothing to retry`);
      }
      const parameters = service.parameterValues(run.parameters_sealed);
      return service.queueRun({ jobId: run.job_id, targetIds: retryIds, parameters, trigger: 'retry', actor, retryOf: id });
    },

    /** Output of one step from `offset` (characters), from the live event log; masked and capped like stored output. */
    async outputTail(id: number, targetId: number, stepIndex: number, stream: 'stdout' | 'stderr', offset: number) {
      await getRun(id);
      const step = await repo.step(id, targetId, stepIndex);
      if (!step) {
        throw new NotFoundError(`Run ${id} has no step ${stepIndex} for target ${targetId}`);
      }
      const chunks = await repo.outputChunks(id, targetId, stepIndex, stream);
      const text = chunks.join('');
      const complete = !['pending', 'running'].includes(step.status);
      const full = complete && text.length === 0 ? (stream === 'stdout' ? step.stdout : step.stderr) : text;
      return { data: full.slice(offset), next_offset: Math.max(offset, full.length), complete };
    },

    /** A worker started work on run `id` (its first target in this process). */
    async started(id: number, jobId: number | null): Promise<void> {
      if (jobId === null || announced.has(id)) {
        return;
      }
      announced.add(id);
      if (announced.size > 10_000) {
        announced.delete(announced.values().next().value as number);
      }
      await deps.onRunEvent?.(id, { started: true });
    },

    /** Finishes the run if nothing is left to do; emits run_finished once. True when it finished now. */
    async finalize(id: number): Promise<boolean> {
      const done = await repo.finalizeRun(id, clock.now());
      if (done) {
        events.emit({ runId: id, type: 'run_finished', data: { status: done.status, summary: done.summary } });
        await events.flush();
        await deps.onRunEvent?.(id, { finished: done.status });
      }
      return done !== undefined;
    },
  };
  return service;
}

/** The runs service. */
export type RunsService = ReturnType<typeof createRunsService>;
