/**
 * Executes one claimed run-target: every step in order over one SSH connection, templates
 * rendered against params/target/job/run/earlier steps, output masked and capped, each result
 * written as it completes, events emitted for live viewers.
 */
import type { JobRunRow, JobRunTargetRow } from '../db/schema.ts';
import type { Logger } from '../logging.ts';
import type { CredentialsService, ResolvedCredential } from '../modules/credentials/index.ts';
import type { Step } from '../modules/jobs/index.ts';
import type { NotificationsService } from '../modules/notifications/index.ts';
import type { RunEvents, RunsRepo, RunsService } from '../modules/runs/index.ts';
import type { TargetConnector, TargetsService, TargetWithGroups } from '../modules/targets/index.ts';
import type { Clock } from '../shared/clock.ts';
import type { TemplateEngine } from '../shared/templating.ts';
import type { RunWriter } from './run-writer.ts';
import { createTargetSession, type Verdict } from './target-session.ts';

/** What the executor needs. */
export interface RunTargetDeps {
  notifications: Pick<NotificationsService, 'fromStep'>;
  repo: RunsRepo;
  writer: RunWriter;
  runs: RunsService;
  events: RunEvents;
  targets: TargetsService;
  connector: TargetConnector;
  credentials: CredentialsService;
  templates: TemplateEngine;
  clock: Clock;
  logger: Logger;
  filesRoot: string;
  maxOutputBytes: number;
}

/** Builds the executor; `execute` returns when the target is finished. */
export function createRunTargetExecutor(deps: RunTargetDeps) {
  const { repo, writer, runs, events, clock } = deps;

  /**
   * What every target of a run shares, loaded once per run per worker: the decrypted parameters,
   * the run's targets (one query for all of them) and each credential (decrypted once).
   */
  interface RunContext {
    params: ReturnType<RunsService['parameterValues']>;
    targets: Map<number, TargetWithGroups>;
    credentials: Map<number, Promise<ResolvedCredential>>;
  }
  const contexts = new Map<number, Promise<RunContext>>();
  const MAX_CACHED_RUNS = 50;

  function runContext(run: JobRunRow): Promise<RunContext> {
    let ctx = contexts.get(run.id);
    if (!ctx) {
      ctx = (async () => {
        const rows = await deps.targets.findMany(run.target_ids);
        return { params: runs.parameterValues(run.parameters_sealed), targets: new Map(rows.map((t) => [t.id, t])), credentials: new Map() };
      })();
      contexts.set(run.id, ctx);
      ctx.catch(() => contexts.delete(run.id));
      if (contexts.size > MAX_CACHED_RUNS) {
        contexts.delete(contexts.keys().next().value as number);
      }
    }
    return ctx;
  }

  function credentialOf(shared: RunContext, id: number): Promise<ResolvedCredential> {
    let found = shared.credentials.get(id);
    if (!found) {
      found = deps.credentials.resolve(id);
      shared.credentials.set(id, found);
      found.catch(() => shared.credentials.delete(id));
    }
    return found;
  }

  /** Runs the target's steps and records its finish; resolves with whether the run still has unclaimed targets. */
  async function execute(claimed: JobRunTargetRow, run: JobRunRow, workerId: string, signal: AbortSignal): Promise<{ pending: boolean }> {
    const targetId = claimed.target_id;
    const steps = run.definition.steps as Step[];
    const shared = await runContext(run);
    await runs.started(run.id, run.job_id);
    const target = targetId === 0 ? null : (shared.targets.get(targetId) ?? null);
    const credential = target?.credential_id ? await credentialOf(shared, target.credential_id) : undefined;
    const session = createTargetSession(deps, { run, targetId, target, credential, params: shared.params, resolveCredential: (id) => credentialOf(shared, id), signal });
    const missing = target === null && targetId !== 0 ? 'the target no longer exists' : null;
    const verdict = await session.runSteps(steps, { status: 'succeeded', error: missing });
    if (signal.aborted && verdict.status === 'succeeded' && steps.some((_, i) => !session.ran(i))) {
      verdict.status = signal.reason === 'timed_out' ? 'timed_out' : 'canceled';
    }
    if (verdict.error && verdict.status === 'succeeded') {
      verdict.status = 'failed';
    }
    session.skipUnwritten(steps.length);
    return finishTarget(run.id, targetId, workerId, verdict, signal);
  }

  /** Records the target's end; finalizes the run when it was the last one. */
  async function finishTarget(runId: number, targetId: number, workerId: string, verdict: Verdict, signal: AbortSignal): Promise<{ pending: boolean }> {
    if (signal.aborted && signal.reason === 'timed_out') {
      // The run's deadline passed: targets not started yet will never start.
      await repo.closePendingTargets(runId, 'timed_out', clock.now());
    }
    const finish = await writer.finishTarget({ run_id: runId, target_id: targetId, worker_id: workerId, status: verdict.status, error: verdict.error, finished_at: clock.now() });
    if (!finish) {
      return { pending: false }; // the reaper declared this target lost meanwhile; it finalizes the run
    }
    events.emit({ runId, type: 'target_finished', targetId, data: { status: verdict.status, error: verdict.error } });
    if (finish.running === 0 && !finish.pending && (await runs.finalize(runId))) {
      contexts.delete(runId);
    }
    return { pending: finish.pending };
  }

  return { execute };
}

/** The run-target executor. */
export type RunTargetExecutor = ReturnType<typeof createRunTargetExecutor>;
