/**
 * Executes one claimed run-target: every step in order over one SSH connection, templates
 * rendered against params/target/job/run/earlier steps, output masked and capped, each result
 * written as it completes, events emitted for live viewers.
 */
import { StringDecoder } from 'node:string_decoder';

import type { JobRunRow, JobRunTargetRow } from '../db/schema.ts';
import type { SshConnection } from '../executor/ssh.ts';
import type { Logger } from '../logging.ts';
import { type CredentialsService, type ResolvedCredential, secretsOf } from '../modules/credentials/index.ts';
import { type ParameterDeclarations, secretValues, type Step } from '../modules/jobs/index.ts';
import type { NotificationsService } from '../modules/notifications/index.ts';
import type { RunEvents, RunsRepo, RunsService, StepWrite } from '../modules/runs/index.ts';
import type { TargetConnector, TargetsService, TargetWithGroups } from '../modules/targets/index.ts';
import type { Clock } from '../shared/clock.ts';
import { capOutput, createLiveOutput, createMasker, parseOutputs, storableText } from '../shared/output.ts';
import type { TemplateEngine } from '../shared/templating.ts';
import type { RunWriter } from './run-writer.ts';
import { runStep, type StepOutcome } from './steps.ts';

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

type StepResult = { stdout: string; stderr: string; exit_code: number | null; outputs: Record<string, string>; status: string };

const FALSY = new Set(['', 'false', '0', 'no']);

/** Renders every string inside `value`. */
/**
 * A step rendered for running. A library step's implementation (it carries `template_params`)
 * sees only `params` — its own parameters, rendered against the run first — and `target`.
 */
export function renderStep(templates: TemplateEngine, step: Record<string, unknown>, context: Record<string, unknown>): Record<string, unknown> {
  if (step.template_params === undefined) {
    return renderDeep(templates, step, context) as Record<string, unknown>;
  }
  const { template_params: raw, ...rest } = step;
  const params = renderDeep(templates, raw, context) as Record<string, unknown>;
  return { ...(renderDeep(templates, rest, { params, target: context.target }) as Record<string, unknown>), params };
}

function renderDeep(templates: TemplateEngine, value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    return templates.isTemplate(value) ? templates.render(value, context) : value;
  }
  if (Array.isArray(value)) {
    return value.map((v) => renderDeep(templates, v, context));
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(templates, v, context)]));
  }
  return value;
}

/** What templates see of a target. */
export function targetView(target: TargetWithGroups | null) {
  return target && { id: target.id, name: target.name, host: target.host, port: target.port, os_type: target.os_type, protocol: target.protocol, tags: target.tags };
}

/** Builds the executor; `execute` returns when the target is finished. */
export function createRunTargetExecutor(deps: RunTargetDeps) {
  const { repo, writer, runs, events, templates, clock } = deps;

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
    const runId = run.id;
    const targetId = claimed.target_id;
    const steps = run.definition.steps as Step[];
    const shared = await runContext(run);
    await runs.started(runId, run.job_id);
    const params = shared.params;
    const secrets = secretValues(run.definition.parameters as ParameterDeclarations, params);
    const target = targetId === 0 ? null : (shared.targets.get(targetId) ?? null);
    const credential = target?.credential_id ? await credentialOf(shared, target.credential_id) : undefined;
    const addSecrets = (c: ResolvedCredential) => secrets.push(...secretsOf(c));
    if (credential) {
      addSecrets(credential);
    }
    let masker = { size: -1, apply: (text: string) => text };
    let connection: Promise<SshConnection> | undefined;
    const context: Record<string, unknown> = { params, target: targetView(target), job: { id: run.job_id, name: run.job_name }, run: { id: runId, trigger: run.trigger } };
    const results = [] as unknown as StepResult[] & Record<string, StepResult>;
    context.steps = results;
    let finalStatus = 'succeeded';
    let finalError: string | null = target === null && targetId !== 0 ? 'the target no longer exists' : null;
    const written = new Set<number>();
    const writeStep = (index: number, values: Omit<StepWrite, 'run_id' | 'target_id' | 'step_index'>) => {
      writer.step({ run_id: runId, target_id: targetId, step_index: index, ...values });
      written.add(index);
    };

    try {
      for (const [index, step] of steps.entries()) {
        if (finalError || signal.aborted) {
          break;
        }
        // Rebuilt when the list grows: a credential the step resolves while running is masked in its own output too.
        const mask = (text: string) => {
          if (masker.size !== secrets.length) {
            masker = { size: secrets.length, apply: createMasker(secrets) };
          }
          return storableText(masker.apply(text));
        };
        const started = clock.now();
        let outcome: StepOutcome;
        let rendered: Record<string, unknown> | undefined;
        try {
          if (step.when !== undefined && FALSY.has(templates.render(String(step.when), context).trim().toLowerCase())) {
            writeStep(index, { status: 'skipped', finished_at: started });
            events.emit({ runId, type: 'step_finished', targetId, stepIndex: index, data: { status: 'skipped', reason: 'when' } });
            continue;
          }
          rendered = renderStep(templates, step, context);
          // A library step's secret parameters are masked like the job's own.
          for (const name of (step.secret_params as string[] | undefined) ?? []) {
            const value = (rendered.params as Record<string, unknown> | undefined)?.[name];
            if (value !== undefined && value !== '') {
              secrets.push(String(value));
            }
          }
        } catch (e) {
          rendered = undefined;
          outcome = { status: 'failed', exitCode: null, stdout: '', stderr: '', error: `template error: ${(e as Error).message.split('\n')[0]}` };
        }
        writer.step({ run_id: runId, target_id: targetId, step_index: index, status: 'running', started_at: started });
        events.emit({ runId, type: 'step_started', targetId, stepIndex: index, data: { name: step.name } });
        const live = createLiveOutput({
          mask,
          longestSecret: () => Math.max(0, ...secrets.map((x) => x.length)),
          maxBytes: deps.maxOutputBytes,
          emit: (stream, text) => events.emit({ runId, type: 'output', targetId, stepIndex: index, data: { stream, text } }),
        });
        const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
        if (rendered) {
          const env = {
            target,
            connection: () => (connection ??= credential ? deps.connector.openSsh(target as TargetWithGroups, credential) : Promise.reject(new Error('the target has no credential'))),
            winrm: () => (target && credential ? deps.connector.winrmOptions(target, credential) : undefined),
            resolveCredential: async (id: number) => {
              const c = await credentialOf(shared, id);
              addSecrets(c);
              return c;
            },
            filesRoot: deps.filesRoot,
            signal,
            maxOutputBytes: deps.maxOutputBytes,
            onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => live.push(stream, decoders[stream].write(chunk)),
            notify: (n: Record<string, unknown>) => deps.notifications.fromStep(runId, n as never, context, mask),
          };
          outcome = await runStep(rendered, env);
          for (let attempt = 1; attempt <= step.retries && outcome.status === 'failed' && !outcome.unreachable && !signal.aborted; attempt++) {
            outcome = await runStep(rendered, env);
          }
        }
        live.finish();
        outcome ??= { status: 'failed', exitCode: null, stdout: '', stderr: '', error: 'not run' };
        const stdout = capOutput(mask(outcome.stdout), deps.maxOutputBytes);
        const stderr = capOutput(mask(outcome.stderr), deps.maxOutputBytes);
        const outputs = { ...parseOutputs(stdout.text), ...outcome.outputs };
        const finished = clock.now();
        writeStep(index, {
          status: outcome.status,
          exit_code: outcome.exitCode,
          stdout: stdout.text,
          stderr: stderr.text,
          outputs,
          truncated: stdout.truncated || stderr.truncated,
          error: outcome.error && mask(outcome.error),
          finished_at: finished,
          duration_ms: finished.getTime() - started.getTime(),
          attempts: 1,
        });
        events.emit({ runId, type: 'step_finished', targetId, stepIndex: index, data: { status: outcome.status, exit_code: outcome.exitCode } });
        const result: StepResult = { stdout: stdout.text, stderr: stderr.text, exit_code: outcome.exitCode, outputs, status: outcome.status };
        results[index] = result;
        results[step.name] = result;
        if (outcome.unreachable) {
          [finalStatus, finalError] = ['unreachable', outcome.error];
        } else if (outcome.status !== 'succeeded' && !(outcome.status === 'failed' && step.continue_on_error)) {
          [finalStatus, finalError] = [outcome.status, outcome.error];
        }
        if (finalStatus !== 'succeeded') {
          break;
        }
      }
    } catch (e) {
      deps.logger.error({ err: e, runId, targetId }, 'run-target failed unexpectedly');
      [finalStatus, finalError] = ['failed', 'internal error while executing'];
    } finally {
      void connection?.then((c) => c.close()).catch(() => {});
    }
    if (signal.aborted && finalStatus === 'succeeded' && steps.some((_, i) => results[i] === undefined)) {
      finalStatus = signal.reason === 'timed_out' ? 'timed_out' : 'canceled';
    }
    if (finalError && finalStatus === 'succeeded') {
      finalStatus = 'failed';
    }
    for (const index of steps.keys()) {
      if (!written.has(index)) {
        writeStep(index, { status: 'skipped' });
      }
    }
    if (signal.aborted && signal.reason === 'timed_out') {
      // The run's deadline passed: targets not started yet will never start.
      await repo.closePendingTargets(runId, 'timed_out', clock.now());
    }
    const finish = await writer.finishTarget({ run_id: runId, target_id: targetId, worker_id: workerId, status: finalStatus, error: finalError, finished_at: clock.now() });
    if (!finish) {
      return { pending: false }; // the reaper declared this target lost meanwhile; it finalizes the run
    }
    events.emit({ runId, type: 'target_finished', targetId, data: { status: finalStatus, error: finalError } });
    if (finish.running === 0 && !finish.pending && (await runs.finalize(runId))) {
      contexts.delete(runId);
    }
    return { pending: finish.pending };
  }

  return { execute };
}

/** The run-target executor. */
export type RunTargetExecutor = ReturnType<typeof createRunTargetExecutor>;
