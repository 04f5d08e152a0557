/**
 * One target of a run while its steps execute: the secrets to mask (growing as steps resolve
 * credentials), the one SSH connection its steps share, the results later templates read, and the
 * writes and events each step produces.
 */
import { StringDecoder } from 'node:string_decoder';

import type { JobRunRow } from '../db/schema.ts';
import type { SshConnection } from '../executor/ssh.ts';
import { type ResolvedCredential, secretsOf } from '../modules/credentials/index.ts';
import { type ParameterDeclarations, type ParameterValues, secretValues, type Step } from '../modules/jobs/index.ts';
import type { StepWrite } from '../modules/runs/index.ts';
import type { TargetWithGroups } from '../modules/targets/index.ts';
import { capOutput, createLiveOutput, createMasker, parseOutputs, storableText } from '../shared/output.ts';
import { renderStep, targetView } from './render.ts';
import type { RunTargetDeps } from './run-target.ts';
import { runStep, type StepEnv, type StepOutcome } from './steps/index.ts';

type StepResult = { stdout: string; stderr: string; exit_code: number | null; outputs: Record<string, string>; status: string };

/** How a target ended (or is ending): `error` set means no further step runs. */
export interface Verdict {
  status: string;
  error: string | null;
}

/** What a session starts from. */
export interface SessionInput {
  run: JobRunRow;
  targetId: number;
  target: TargetWithGroups | null;
  credential: ResolvedCredential | undefined;
  params: ParameterValues;
  /** Resolves (and caches per run) a credential a step names. */
  resolveCredential(id: number): Promise<ResolvedCredential>;
  signal: AbortSignal;
}

const FALSY = new Set(['', 'false', '0', 'no']);

/** The verdict after a step: a failure ends the target unless the step may fail. */
function verdictAfter(step: Step, outcome: StepOutcome): Verdict | undefined {
  if (outcome.unreachable) {
    return { status: 'unreachable', error: outcome.error };
  }
  if (outcome.status !== 'succeeded' && !(outcome.status === 'failed' && step.continue_on_error)) {
    return { status: outcome.status, error: outcome.error };
  }
  return undefined;
}

/** Builds the session of one claimed target. */
export function createTargetSession(deps: RunTargetDeps, input: SessionInput) {
  const { writer, events, templates, clock } = deps;
  const { run, targetId, target, credential, params, signal } = input;
  const runId = run.id;
  const secrets = secretValues(run.definition.parameters as ParameterDeclarations, params);
  if (credential) {
    secrets.push(...secretsOf(credential));
  }
  let masker = { size: -1, apply: (text: string) => text };
  let connection: Promise<SshConnection> | undefined;
  const results = [] as unknown as StepResult[] & Record<string, StepResult>;
  const context: Record<string, unknown> = { params, target: targetView(target), job: { id: run.job_id, name: run.job_name }, run: { id: runId, trigger: run.trigger }, steps: results };
  const written = new Set<number>();

  // Rebuilt when the list grows: a credential a step resolves while running is masked in its own output too.
  function mask(text: string): string {
    if (masker.size !== secrets.length) {
      masker = { size: secrets.length, apply: createMasker(secrets) };
    }
    return storableText(masker.apply(text));
  }

  function writeStep(index: number, values: Omit<StepWrite, 'run_id' | 'target_id' | 'step_index'>): void {
    writer.step({ run_id: runId, target_id: targetId, step_index: index, ...values });
    written.add(index);
  }

  /** The step rendered, or undefined when its `when` is false (then it is recorded as skipped). */
  function prepare(step: Step, index: number): Record<string, unknown> | undefined {
    if (step.when !== undefined && FALSY.has(templates.render(String(step.when), context).trim().toLowerCase())) {
      writeStep(index, { status: 'skipped', finished_at: clock.now() });
      events.emit({ runId, type: 'step_finished', targetId, stepIndex: index, data: { status: 'skipped', reason: 'when' } });
      return undefined;
    }
    const rendered = renderStep(templates, step, context);
    // A library step's secret parameters are masked like the job's own.
    for (const name of (step.secret_params as string[] | undefined) ?? []) {
      const value = (rendered.params as Record<string, unknown> | undefined)?.[name];
      if (value !== undefined && value !== '') {
        secrets.push(String(value));
      }
    }
    return rendered;
  }

  /** Live output of one step: decoded, masked and capped before anyone watching sees it. */
  function liveOutput(index: number) {
    const live = createLiveOutput({
      mask,
      longestSecret: () => Math.max(0, ...secrets.map((x) => x.length)),
      maxBytes: deps.maxOutputBytes,
      emit: (stream, text) => events.emit({ runId, type: 'output', targetId, stepIndex: index, data: { stream, text } }),
    });
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    return { push: (stream: 'stdout' | 'stderr', chunk: Buffer) => live.push(stream, decoders[stream].write(chunk)), finish: () => live.finish() };
  }

  function stepEnv(onOutput: StepEnv['onOutput']): StepEnv {
    return {
      target,
      connection: () => (connection ??= credential ? deps.connector.openSsh(target as TargetWithGroups, credential) : Promise.reject(new Error('the target has no credential'))),
      winrm: () => (target && credential ? deps.connector.winrmOptions(target, credential) : undefined),
      resolveCredential: async (id: number) => {
        const c = await input.resolveCredential(id);
        secrets.push(...secretsOf(c));
        return c;
      },
      filesRoot: deps.filesRoot,
      signal,
      maxOutputBytes: deps.maxOutputBytes,
      onOutput,
      notify: (n: Record<string, unknown>) => deps.notifications.fromStep(runId, n as never, context, mask),
    };
  }

  /** Runs a rendered step, again up to `retries` times while it fails (not when unreachable or stopped). */
  async function attempt(step: Step, rendered: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
    let outcome = await runStep(rendered, env);
    for (let n = 1; n <= step.retries && outcome.status === 'failed' && !outcome.unreachable && !signal.aborted; n++) {
      outcome = await runStep(rendered, env);
    }
    return outcome;
  }

  /** Writes a finished step (masked, capped) and keeps its result for later templates. */
  function record(step: Step, index: number, started: Date, outcome: StepOutcome): void {
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
  }

  /** One step from start to its written result; undefined when its `when` skipped it. */
  async function runOne(step: Step, index: number): Promise<StepOutcome | undefined> {
    const started = clock.now();
    let rendered: Record<string, unknown> | undefined;
    let outcome: StepOutcome | undefined;
    try {
      rendered = prepare(step, index);
      if (!rendered) {
        return undefined;
      }
    } catch (e) {
      outcome = { status: 'failed', exitCode: null, stdout: '', stderr: '', error: `template error: ${(e as Error).message.split('\n')[0]}` };
    }
    writer.step({ run_id: runId, target_id: targetId, step_index: index, status: 'running', started_at: started });
    events.emit({ runId, type: 'step_started', targetId, stepIndex: index, data: { name: step.name } });
    const live = liveOutput(index);
    if (rendered) {
      outcome = await attempt(step, rendered, stepEnv(live.push));
    }
    live.finish();
    outcome ??= { status: 'failed', exitCode: null, stdout: '', stderr: '', error: 'not run' };
    record(step, index, started, outcome);
    return outcome;
  }

  /** Runs the steps in order until one ends the target, it is stopped, or `initial` already has an error. */
  async function runSteps(steps: Step[], initial: Verdict): Promise<Verdict> {
    let verdict = initial;
    try {
      for (const [index, step] of steps.entries()) {
        if (verdict.error || signal.aborted) {
          break;
        }
        const outcome = await runOne(step, index);
        verdict = (outcome && verdictAfter(step, outcome)) ?? verdict;
        if (verdict.status !== 'succeeded') {
          break;
        }
      }
    } catch (e) {
      deps.logger.error({ err: e, runId, targetId }, 'run-target failed unexpectedly');
      verdict = { status: 'failed', error: 'internal error while executing' };
    } finally {
      void connection?.then((c) => c.close()).catch(() => {});
    }
    return verdict;
  }

  return {
    runSteps,
    /** True when step `index` ran to a result (not skipped, not left out). */
    ran: (index: number) => results[index] !== undefined,
    /** Records every step that has no row yet as skipped. */
    skipUnwritten(count: number): void {
      for (let index = 0; index < count; index++) {
        if (!written.has(index)) {
          writeStep(index, { status: 'skipped' });
        }
      }
    },
  };
}
